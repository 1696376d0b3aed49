"""Writing results: latest.json, the Markdown table, the machine description, the docs section."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]

from .harness import ROOT, Figure, GiB

CASES = {
    "1": "Loopback throughput vs curl",
    "2": "Emulated WAN (50 ms, 20 MB/s per connection)",
    "3": "Peak memory of an import",
    "4": "Client CPU per GiB",
    "5": "Event-loop lag during an import",
    "6": "Download of an export vs curl -o",
    "7": "Poller cost",
    "8": "Model folder as a tar made on the fly",
    "9": "Over TLS: import vs curl, CPU, lag, proxy cost",
    "integrity": "SHA-256 of every import: throughput and CPU",
    "autotune": "Self-tuning: auto vs fixed concurrency on four profiles, rate cap",
}

CASE_TEXT = """\
1. **Loopback throughput** — a 1 GiB file imported with default settings (16 MiB chunks,
   concurrency auto, SHA-256 on) into the emulator (storage=discard) running in a separate
   process. The limit is one `curl --form file=@F` POST of the whole file as a single chunk
   into the same emulator; the recipe is the docs' way: `split -b 16M`, then one curl per
   part, in order.
2. **Emulated WAN** — the emulator adds 50 ms per request and caps each connection at 20 MB/s;
   a 512 MiB file at concurrency 1, 2, 4, 8, 16 against the ideal min(c x 20 MB/s, loopback
   limit), and at 8 against a sequential uploader in plain aiohttp that reads each part whole
   and posts the parts in order (the openai-python / huggingface_hub pattern).
3. **Memory** — peak RSS (the child's VmHWM from /proc, read every 20 ms, and RSS samples) of
   an import of 1 GiB and 4 GiB at 64 MiB chunks and concurrency 16, beside the naive
   alternative that reads every chunk whole and `asyncio.gather`s all uploads.
4. **CPU** — user+sys seconds of the client process per GiB on loopback (measured inside the
   process around `import_file`, so interpreter start-up is not counted).
5. **Event-loop lag** — a ticker task in the importing loop sleeps 5 ms and records how late it
   wakes (p50/p99/max) during a 1 GiB import.
6. **Download** — `export_to_file` of a 1 GiB model (emulator storage=disk on /dev/shm) against
   `curl -o` of the same download URL; peak RSS of the downloading process.
7. **Poller cost** — requests made while waiting for jobs of 10 s, 60 s and 600 s, with the
   emulator's clock advanced by the poller's (fake) sleep, and the most requests in any 60 s
   window (Kore allows 60 a minute).
8. **Folder import** — a 1 GiB folder of 20 files imported as a tar generated while it uploads,
   against the very same bytes as one tar file, in turn in the same run (default settings,
   order alternating); the folder import's peak RSS; and planning a 10,000-file folder (listing,
   checks, archive size, fingerprint) in a fresh process.
9. **Over TLS** — the same 1 GiB import into an emulator serving HTTPS (`--tls`, TLS 1.3),
   against `curl --form` of the same file with `--cacert` in the same repetition; client CPU
   per GiB of both (curl's from wait4); event-loop lag p99 of the TLS import; the import again
   without SHA-256 (`checksum=False`, as curl); through a forward proxy (proxy.py, a CONNECT
   tunnel) and, if installed, on uvloop. Only case 9 runs over TLS; cases 1-8 use plain http
   on loopback.
integrity. **SHA-256 of every import** — 1 GiB imports with hashing on and off
   (`checksum=False`), alternated: both throughputs and their ratio, the hashing thread's CPU
   per GiB beside the whole import's, the emulator's CPU, how busy the two cores were and the
   ratio the CPU alone allows; the same pairs with the emulator capped at
   25 MB/s per connection (network-bound); `verify` (download hashed, not written) against
   `export_to_file` of the same model.
autotune. **Self-tuning** — `concurrency="auto"` against fixed 1, 2, 4, 8, 16, 32 on four emulator
   profiles: loopback; WAN (50 ms per request, 20 MB/s per connection); a capped uplink (the
   same plus 60 MB/s in total); a guarded server (4 chunk requests in flight, 429 with
   Retry-After: 1 beyond, 20 MB/s per connection). Slow settings use smaller files (listed in
   the notes); `--limit-rate 50MB/s` on loopback; lag and peak RSS of every auto run.

Every comparison is a ratio of two measurements taken in the same repetition; figures are the
median of the repetitions, with the spread (min-max). The machine below is shared with other
jobs, so single measurements are noisy; read the ratios, not the absolute MB/s. Quick mode uses
smaller files and fewer repetitions. The client runs in its own process for every case except
7 (an import via `benchmarks.import_once`, or `kore-models import` for the memory case).
"""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "ram_gib": round(psutil.virtual_memory().total / GiB, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "aiohttp": _version("aiohttp"),
        "aiofiles": _version("aiofiles"),
        "uvloop": _version("uvloop"),
        "curl": _curl_version(),
    }


def _curl_version() -> str:
    import subprocess

    try:
        out = subprocess.run(["curl", "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.split()[1]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def _num(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) >= 0.01 else f"{value:.2g}"


def table(figures: list[Figure]) -> str:
    """The Markdown table of a run."""
    rows = [
        "| case | figure | target | met? | median | spread (min-max) | n | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        met = {True: "yes", False: "**no**", None: ""}[f.met]
        unit = f" {f.unit}" if f.unit not in ("", "x") else ("x" if f.unit == "x" else "")
        median = f"{_num(f.median)}{unit}"
        spread = f"{_num(f.low)}-{_num(f.high)}" if f.samples else "-"
        notes = f.notes.replace("|", "/")
        rows.append(
            f"| {f.case} | {f.name} | {f.target} | {met} | {median} | {spread} "
            f"| {len(f.samples)} | {notes} |"
        )
    return "\n".join(rows)


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"{info['nproc']} CPUs ({info['cpu_model']}), {info['ram_gib']} GiB RAM, "
        f"Linux {info['kernel']}, Python {info['python']}, aiohttp {info['aiohttp']}, "
        f"aiofiles {info['aiofiles']}, uvloop {info['uvloop']}, curl {info['curl']}"
    )


def write(
    out_dir: Path, prefix: str, figures: list[Figure], meta: dict[str, Any], errors: list[str]
) -> tuple[Path, Path]:
    """Write ``<prefix>.json`` and ``<prefix>.md`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {**meta, "errors": errors, "figures": [f.as_dict() for f in figures]}
    json_path = out_dir / f"{prefix}.json"
    json_path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    lines = [
        f"# Benchmark results ({meta['mode']} run, {meta['generated']})",
        "",
        f"Machine: {machine_line(meta['machine'])}.",
        f"Run took {meta['duration_seconds']:.0f} s; cases {', '.join(meta['cases'])}.",
        "",
        table(figures),
        "",
    ]
    lines += [f"- error: {e}" for e in errors]
    md_path = out_dir / f"{prefix}.md"
    md_path.write_text("\n".join(lines).rstrip() + "\n")
    return json_path, md_path


README_START = "<!-- benchmarks:start (written by python -m benchmarks.run) -->"
README_END = "<!-- benchmarks:end -->"


def write_docs(figures: list[Figure], meta: dict[str, Any], plot: str | None) -> Path:
    """The generated part of docs/benchmarks.md: how to run, the cases, the machine, last table."""
    path = ROOT / "docs" / "benchmarks.md"
    parts = [
        "## How to run them",
        "",
        "`make bench` (about 30 minutes: 1791 s on 2026-12-02, the autotune case 19 minutes of it)",
        "runs every case; `make bench-quick` runs them with smaller files and fewer",
        "repetitions. One case or a few:",
        "`.venv/bin/python -m benchmarks.run --cases 1,4`. The runner starts the emulator on",
        "127.0.0.1 in its own process, writes test files to /dev/shm (or `benchmarks/data/`,",
        "never committed) and writes `benchmarks/results/latest.json`, `latest.md` and",
        "`throughput_vs_concurrency.png` (quick runs write `quick-*` files instead).",
        "",
        CASE_TEXT,
        f"### Last run ({meta['mode']}, {meta['generated']})",
        "",
        f"Machine: {machine_line(meta['machine'])}.",
        "",
        table(figures),
        "",
    ]
    if plot:
        # docs/hooks.py publishes benchmarks/results/<plot> as img/<plot> in the site
        parts += [f"![throughput against concurrency](img/{plot})", ""]
    page = path.read_text(encoding="utf-8")
    start, end = page.find(README_START), page.find(README_END)
    if start < 0 or end < start:
        raise RuntimeError(f"{path} lacks the {README_START!r} ... {README_END!r} markers")
    section = "\n".join(parts).rstrip() + "\n"
    updated = page[: start + len(README_START)] + "\n" + section + page[end:]
    path.write_text(updated, encoding="utf-8")
    return path


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
