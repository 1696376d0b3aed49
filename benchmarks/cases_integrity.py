"""Case "integrity": what SHA-256 costs an import, and a verify against a plain download."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import psutil  # type: ignore[import-untyped,unused-ignore]

from .harness import (
    KEY,
    ChildRun,
    Context,
    Emulator,
    Figure,
    GiB,
    MiB,
    at_least,
    child_python,
    fmt_size,
    ratios,
    run_child,
)


def _child(ctx: Context, emu: Emulator, path: Path, *extra: str) -> ChildRun:
    argv = child_python(
        "benchmarks.integrity_once",
        str(path),
        "--host",
        emu.url,
        "--key",
        KEY,
        "--state-dir",
        str(ctx.scratch / "state"),
        *extra,
    )
    run = run_child(argv, timeout=600)
    if run.output.get("status") != "SUCCESS":
        raise RuntimeError(f"the child did not succeed: {run.output}")
    return run


def _import(ctx: Context, emu: Emulator, size: int, hashing: str) -> ChildRun:
    return _child(ctx, emu, ctx.file(size), "--hash", hashing)


def _emulator_cpu(emu: Emulator) -> float:
    times = psutil.Process(emu.pid).cpu_times()
    return float(times.user + times.system)


def _import_counted(ctx: Context, emu: Emulator, size: int, hashing: str) -> tuple[ChildRun, float]:
    """An import, and the CPU seconds the emulator spent meanwhile (it shares the cores)."""
    before = _emulator_cpu(emu)
    run = _import(ctx, emu, size, hashing)
    return run, _emulator_cpu(emu) - before


def _sha256(ctx: Context, size: int) -> str:
    digest = hashlib.sha256()
    with ctx.file(size).open("rb") as handle:
        while block := handle.read(16 * MiB):
            digest.update(block)
    return digest.hexdigest()


def run(ctx: Context) -> list[Figure]:
    """Imports with and without hashing, alternated so that both see the same machine."""
    size = 256 * MiB if ctx.quick else 1 * GiB
    expected = _sha256(ctx, size)
    on: list[ChildRun] = []
    off: list[ChildRun] = []
    emu_on: list[float] = []
    emu_off: list[float] = []
    with ctx.emulator("integrity", storage="discard") as emu:
        _import(ctx, emu, size, "on")  # warm-up: page cache, imports, first connections
        for _ in range(ctx.reps):
            run, emu_cpu = _import_counted(ctx, emu, size, "off")
            off.append(run)
            emu_off.append(emu_cpu)
            run, emu_cpu = _import_counted(ctx, emu, size, "on")
            on.append(run)
            emu_on.append(emu_cpu)
    if any(r.output["sha256"] != expected for r in on):
        raise RuntimeError("an import reported a SHA-256 that is not the file's")
    figures = _hashing_figures(size, on, off) + _cpu_bound_figures(size, on, off, emu_on, emu_off)
    return figures + _capped_figures(ctx, size) + _verify_figures(ctx, size, expected)


CAP_PER_CONNECTION = 25_000_000
"""Bytes/s per connection in the capped runs: 8 chunks in flight make 200 MB/s."""


def _capped_figures(ctx: Context, size: int) -> list[Figure]:
    """The same pairs when the network, not the CPU, is the limit (a fast WAN link)."""
    on: list[ChildRun] = []
    off: list[ChildRun] = []
    reps = ctx.reps if ctx.quick else min(ctx.reps, 3)
    with ctx.emulator(
        "integrity-capped", storage="discard", throughput_bytes_per_second=CAP_PER_CONNECTION
    ) as emu:
        for _ in range(reps):
            off.append(_import(ctx, emu, size, "off"))
            on.append(_import(ctx, emu, size, "on"))
    kept = ratios(
        [size / r.output["seconds"] for r in on], [size / r.output["seconds"] for r in off]
    )
    cap = f"emulator capped at {CAP_PER_CONNECTION / 1e6:g} MB/s per connection (8 in flight)"
    return [
        Figure(
            "integrity",
            "throughput kept with SHA-256, network-bound (on / off)",
            "x",
            kept,
            ">= 0.9",
            at_least(kept, 0.9),
            f"{fmt_size(size)}; {cap}",
        )
    ]


def _verify_figures(ctx: Context, size: int, expected: str) -> list[Figure]:
    """``verify`` (download hashed, not written; local file hashed meanwhile) against
    ``export_to_file`` of the same model, alternated."""
    path = ctx.file(size)
    dest = ctx.scratch / "integrity-export.tar"
    verify, export = [], []
    with ctx.emulator("integrity-disk", storage="disk") as emu:
        model_id = str(_import(ctx, emu, size, "on").output["model_id"])
        for rep in range(ctx.reps + 1):  # the first round warms up and is not counted
            dest.unlink(missing_ok=True)
            exported = _child(ctx, emu, dest, "--export", model_id)
            checked = _child(ctx, emu, path, "--verify", model_id)
            if checked.output["sha256"] != expected or exported.output["sha256"] != expected:
                raise RuntimeError("the model's SHA-256 is not the file's")
            if rep:
                export.append(size / exported.output["seconds"] / 1e6)
                verify.append(size / checked.output["seconds"] / 1e6)
    dest.unlink(missing_ok=True)
    ratio = ratios(verify, export)
    where = f"{fmt_size(size)}; emulator storage=disk on {ctx.scratch}; export job included"
    return [
        Figure("integrity", "verify (download hashed, not written)", "MB/s", verify, notes=where),
        Figure("integrity", "export_to_file (download written)", "MB/s", export, notes=where),
        Figure(
            "integrity", "ratio verify / export_to_file", "x", ratio, ">= 0.8", at_least(ratio, 0.8)
        ),
    ]


def _hashing_figures(size: int, on: list[ChildRun], off: list[ChildRun]) -> list[Figure]:
    gib = size / GiB
    rate_on = [size / r.output["seconds"] / 1e6 for r in on]
    rate_off = [size / r.output["seconds"] / 1e6 for r in off]
    kept = ratios(rate_on, rate_off)
    where = f"{fmt_size(size)}, default settings, runs alternated"
    return [
        Figure("integrity", "loopback import with SHA-256", "MB/s", rate_on, notes=where),
        Figure("integrity", "loopback import, hashing off", "MB/s", rate_off, notes=where),
        Figure(
            "integrity",
            "throughput kept with SHA-256 (on / off)",
            "x",
            kept,
            ">= 0.9",
            at_least(kept, 0.9),
            "each hashed run over the unhashed run before it",
        ),
        Figure(
            "integrity",
            "hashing thread CPU per GiB",
            "s/GiB",
            [r.output["hash_cpu_seconds"] / gib for r in on],
            notes="the hasher thread alone (reads + SHA-256)",
        ),
        Figure(
            "integrity",
            "import CPU per GiB, hashing on",
            "s/GiB",
            [r.output["cpu_seconds"] / gib for r in on],
            notes="all threads of the importing process, around import_file",
        ),
        Figure(
            "integrity",
            "import CPU per GiB, hashing off",
            "s/GiB",
            [r.output["cpu_seconds"] / gib for r in off],
            notes="all threads of the importing process, around import_file",
        ),
    ]


def _cpu_bound_figures(
    size: int, on: list[ChildRun], off: list[ChildRun], emu_on: list[float], emu_off: list[float]
) -> list[Figure]:
    """Whether the loopback import leaves a core free for the hash, and what follows if not.

    ``busy`` is the CPU the importing process and the emulator used together, over the wall
    time times the cores: near 1, the machine had no idle core to hide the hashing thread
    in, and the throughput can at best fall by the share of CPU that hashing adds, which is
    the ``ceiling`` figure (total CPU per GiB without hashing over total CPU with it).
    """
    cores = os.cpu_count() or 1
    gib = size / GiB
    busy_off = [
        (r.output["cpu_seconds"] + e) / (r.output["seconds"] * cores)
        for r, e in zip(off, emu_off, strict=True)
    ]
    total_on = [(r.output["cpu_seconds"] + e) / gib for r, e in zip(on, emu_on, strict=True)]
    total_off = [(r.output["cpu_seconds"] + e) / gib for r, e in zip(off, emu_off, strict=True)]
    return [
        Figure(
            "integrity",
            "emulator CPU per GiB (storage=discard)",
            "s/GiB",
            [e / gib for e in emu_off],
            notes="the receiving side, on the same cores as the client",
        ),
        Figure(
            "integrity",
            "cores busy during an unhashed import (client + emulator)",
            "x",
            busy_off,
            notes=f"CPU of both processes / (wall time x {cores} cores)",
        ),
        Figure(
            "integrity",
            "CPU-bound ceiling of the kept ratio (total CPU off / on)",
            "x",
            ratios(total_off, total_on),
            notes="what the kept ratio can reach when no core is idle",
        ),
    ]
