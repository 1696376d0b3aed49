"""Case 8: a model folder imported as a tar made on the fly, beside the same bytes as a file.

Two parts. Import: a 1 GiB folder of 20 files and the very same bytes written out as one
tar file are imported in turn (order alternating per repetition) by
``benchmarks.import_once`` in a child process with default settings; the figure is the
ratio of the two throughputs in each repetition, and the folder import's peak RSS.
Planning: ``list_folder`` + the tar's size + ``fingerprint_listing`` of a 10,000-file
folder, each run in a fresh child process; the page cache is warm, as it is when a user
imports a folder twice. Run alone with ``python -m benchmarks.cases_folder [--reps N]``
(``--plan-only`` for the planning part).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .harness import (
    KEY,
    PYTHON,
    ROOT,
    ChildRun,
    Context,
    Emulator,
    Figure,
    GiB,
    MiB,
    at_least,
    at_most,
    child_python,
    fmt_size,
    ratios,
    run_child,
    scratch_root,
)

FILES = 10_000
PLAN_CEILING_S = 1.0
SHARDS = 20
RATIO_FLOOR = 0.9
RSS_CEILING_MIB = 100
_CHILD = """
import json, sys, time
from kore_models.transfer.folder import list_folder
from kore_models.transfer.listing_changes import fingerprint_listing
from kore_models.transfer.tarstream import TarArchive
started = time.perf_counter()
listing = list_folder(sys.argv[1])
size = TarArchive(listing).size
digest = fingerprint_listing(listing)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "members": len(listing.entries), "size": size}))
"""


def make_folder(root: Path, files: int = FILES) -> Path:
    """``files`` files of 1-8 KiB spread over 100 folders (kept if already complete)."""
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == str(files):
        return root
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(8192)
    for index in range(files):
        folder = root / f"part-{index % 100:03d}"
        folder.mkdir(exist_ok=True)
        size = 1024 + (index * 7919) % 7168
        (folder / f"tensor-{index:05d}.bin").write_bytes(block[:size])
    marker.write_text(str(files))
    return root


def plan_in_child(folder: Path) -> dict[str, float]:
    """One plan of ``folder`` in a new interpreter; its seconds, members and archive size."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [PYTHON, "-c", _CHILD, str(folder)], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def run_planning(ctx: Context) -> list[Figure]:
    """The planning figure: seconds to plan a 10,000-file folder, target < 1 s."""
    folder = make_folder(ctx.scratch / f"folder-{FILES}-files")
    runs = [plan_in_child(folder) for _ in range(max(3, ctx.reps))]
    samples = [run["seconds"] for run in runs]
    return [
        Figure(
            "8",
            f"plan a {FILES:,}-file folder (list, check, size, fingerprint)",
            "s",
            samples,
            target=f"< {PLAN_CEILING_S:g} s",
            met=at_most(samples, PLAN_CEILING_S),
            notes=f"{int(runs[0]['members'])} members, archive {int(runs[0]['size'])} bytes",
        )
    ]


def make_shards(root: Path, total: int) -> Path:
    """``SHARDS`` files of random bytes adding up to ``total`` (kept if already there)."""
    each = total // SHARDS
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(16 * MiB)
    for index in range(SHARDS):
        path = root / f"model-{index + 1:05d}-of-{SHARDS:05d}.safetensors"
        if path.exists() and path.stat().st_size == each:
            continue
        with open(path, "wb") as out:
            left = each
            while left:
                count = min(left, len(block))
                out.write(block[:count])
                left -= count
    return root


def write_archive(folder: Path, dest: Path) -> Path:
    """The tar an import of ``folder`` sends, written to ``dest`` (the same bytes)."""
    from kore_models.transfer.folder import list_folder
    from kore_models.transfer.tarstream import TarArchive

    archive = TarArchive(list_folder(folder))
    buffer = bytearray(16 * MiB)
    with archive.open_reader() as reader, open(dest, "wb") as out:
        offset = 0
        while offset < archive.size:
            count = reader.readinto(offset, memoryview(buffer))
            out.write(memoryview(buffer)[:count])
            offset += count
    return dest


def import_child(ctx: Context, emu: Emulator, path: Path) -> ChildRun:
    argv = child_python(
        "benchmarks.import_once", str(path), "--host", emu.url, "--key", KEY,
        "--state-dir", str(ctx.scratch / "state"),
    )  # fmt: skip
    child = run_child(argv, timeout=900)
    if child.output.get("status") != "SUCCESS":
        raise RuntimeError(f"import did not succeed: {child.output}")
    return child


def run_import(ctx: Context) -> list[Figure]:
    """Throughput of the folder over the same bytes as one tar file; the folder's peak RSS."""
    size = 256 * MiB if ctx.quick else 1 * GiB
    folder = make_shards(ctx.scratch / f"folder-{size // MiB}MiB", size)
    tar_file = write_archive(folder, ctx.scratch / f"folder-{size // MiB}MiB.tar")
    folder_rates, tar_rates, rss, folder_cpu, tar_cpu = [], [], [], [], []
    try:
        with ctx.emulator("folder", storage="discard") as emu:
            import_child(ctx, emu, tar_file)  # warm-up: page cache, imports
            for rep in range(ctx.reps):
                order = (folder, tar_file) if rep % 2 else (tar_file, folder)
                for path in order:
                    child = import_child(ctx, emu, path)
                    rate = child.output["bytes"] / child.output["seconds"] / 1e6
                    cpu_per_gib = child.output["cpu_seconds"] / (child.output["bytes"] / GiB)
                    if path == folder:
                        folder_rates.append(rate)
                        folder_cpu.append(cpu_per_gib)
                        rss.append(child.peak_rss / MiB)
                    else:
                        tar_rates.append(rate)
                        tar_cpu.append(cpu_per_gib)
    finally:
        tar_file.unlink(missing_ok=True)
    to_file = ratios(folder_rates, tar_rates)
    where = (
        f"{fmt_size(size)} in {SHARDS} files, default settings "
        "(16 MiB chunks, concurrency auto, SHA-256 on)"
    )
    return [
        Figure("8", "folder import throughput", "MB/s", folder_rates, notes=where),
        Figure("8", "same bytes as one tar file", "MB/s", tar_rates, notes="same run"),
        Figure(
            "8",
            "ratio folder / tar file",
            "x",
            to_file,
            f">= {RATIO_FLOOR:g}",
            at_least(to_file, RATIO_FLOOR),
            "pairs from the same repetition, order alternating",
        ),
        Figure(
            "8",
            "client CPU ratio folder / tar file",
            "x",
            ratios(folder_cpu, tar_cpu),
            notes=f"CPU s per GiB: folder {statistics.median(folder_cpu):.2f}, "
            f"tar file {statistics.median(tar_cpu):.2f} (less sensitive to machine load)",
        ),
        Figure(
            "8",
            "peak RSS of a folder import",
            "MiB",
            rss,
            f"<= {RSS_CEILING_MIB}",
            at_most(rss, RSS_CEILING_MIB),
            "VmHWM of the importing process",
        ),
    ]


def run(ctx: Context) -> list[Figure]:
    """Case 8 in ``make bench``: the import comparison, then planning."""
    return run_import(ctx) + run_planning(ctx)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cases_folder")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a 256 MiB folder")
    parser.add_argument("--plan-only", action="store_true", help="only the planning figure")
    parser.add_argument("--keep-data", action="store_true", help="keep the generated folders")
    args = parser.parse_args(argv)
    need = 0 if args.plan_only else (512 * MiB if args.quick else 2 * GiB)
    ctx = Context(quick=args.quick, scratch=scratch_root(need), out_dir=ROOT, reps=args.reps)
    started = time.perf_counter()
    try:
        figures = run_planning(ctx) if args.plan_only else run(ctx)
    finally:
        if not args.keep_data:
            # Only this case's own data: the scratch folder is shared with other runs.
            for folder in (*ctx.scratch.glob("folder-*"), ctx.scratch / "emulator-folder"):
                shutil.rmtree(folder, ignore_errors=True)
    for figure in figures:
        samples = ", ".join(f"{s:.3f}" for s in figure.samples)
        print(
            f"{figure.name}: median {figure.median:.3f} {figure.unit} "
            f"(min {figure.low:.3f}, max {figure.high:.3f}; runs: {samples}) "
            + (
                f"target {figure.target}: {'met' if figure.met else 'NOT met'}; "
                if figure.target
                else ""
            )
            + figure.notes
        )
    print(f"took {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
