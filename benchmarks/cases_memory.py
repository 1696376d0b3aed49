"""Case 3: peak RSS of an import (64 MiB chunks, concurrency 16) beside the naive gather-all."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psutil  # type: ignore[import-untyped,unused-ignore]

from .harness import (
    KEY,
    PYTHON,
    ChildRun,
    Context,
    Emulator,
    Figure,
    GiB,
    MiB,
    at_most,
    child_python,
    fmt_size,
    run_child,
)

CHUNK = "64MiB"
CONCURRENCY = "16"


def cli_ready() -> bool:
    """True when `kore-models import --help` works (the CLI is being written concurrently)."""
    exe = Path(PYTHON).with_name("kore-models")
    if not exe.exists():
        return False
    probe = subprocess.run([str(exe), "import", "--help"], capture_output=True, timeout=60)
    return probe.returncode == 0 and b"--concurrency" in probe.stdout


def import_rss(ctx: Context, emu: Emulator, path: Path, use_cli: bool) -> ChildRun:
    """Peak RSS of one import process: the CLI when ready, else benchmarks.import_once."""
    state = str(ctx.scratch / "state")
    if use_cli:
        exe = str(Path(PYTHON).with_name("kore-models"))
        argv = [exe, "import", str(path), "--chunk-size", CHUNK, "--concurrency", CONCURRENCY]
        argv += ["--no-resume", "--json"]
        env = {**os.environ, "KORE_HOST": emu.url, "KORE_API_KEY": KEY, "KORE_STATE_DIR": state}
        return run_child(argv, timeout=900, env=env)
    argv = child_python(
        "benchmarks.import_once", str(path), "--host", emu.url, "--key", KEY,
        "--state-dir", state, "--chunk-size", CHUNK, "--concurrency", CONCURRENCY,
    )  # fmt: skip
    return run_child(argv, timeout=900)


def naive_rss(emu: Emulator, path: Path) -> ChildRun:
    argv = child_python(
        "benchmarks.import_once", str(path), "--host", emu.url, "--key", KEY,
        "--mode", "naive-gather", "--chunk-size", CHUNK,
    )  # fmt: skip
    return run_child(argv, timeout=900)


def enough_ram(need: int) -> bool:
    return bool(psutil.virtual_memory().available > need + 2 * GiB)


def peak(run: ChildRun) -> float:
    """Peak RSS in MiB (VmHWM sampled every 20 ms; see ChildRun.peak_rss)."""
    return run.peak_rss / MiB


def run(ctx: Context) -> list[Figure]:
    sizes = (1 * GiB, 2 * GiB) if ctx.quick else (1 * GiB, 4 * GiB)
    reps = 1 if ctx.quick else min(ctx.reps, 3)
    use_cli = cli_ready()
    how = "`kore-models import`" if use_cli else "benchmarks.import_once (CLI not ready)"
    lib: dict[int, list[float]] = {s: [] for s in sizes}
    naive: dict[int, list[float]] = {s: [] for s in sizes}
    skipped: list[str] = []
    with ctx.emulator("memory", storage="discard") as emu:
        for size in sizes:
            path = ctx.file(size)
            for _ in range(reps):
                lib[size].append(peak(import_rss(ctx, emu, path, use_cli)))
            # the naive run holds the whole file in memory: only when RAM clearly allows
            if (size == sizes[0] or not ctx.quick) and enough_ram(3 * size):
                naive[size].append(peak(naive_rss(emu, path)))
            else:
                skipped.append(fmt_size(size))
        shutil.rmtree(ctx.scratch / "state", ignore_errors=True)
    small, big = sizes
    figures = [
        Figure(
            "3",
            f"peak RSS, import of {fmt_size(s)}",
            "MiB",
            lib[s],
            "<= 100 MiB",
            at_most(lib[s], 100.0),
            f"64 MiB chunks, concurrency 16, via {how}",
        )
        for s in sizes
    ]
    growth = [(b / a - 1) * 100 for a, b in zip(lib[small], lib[big], strict=True)]
    figures.append(
        Figure(
            "3",
            f"RSS growth {fmt_size(small)} -> {fmt_size(big)}",
            "%",
            growth,
            "<= 10%",
            at_most(growth, 10.0),
            "flat in file size",
        )
    )
    for s in sizes:
        figures.append(
            Figure(
                "3",
                f"naive (read whole chunks, gather all), {fmt_size(s)}",
                "MiB",
                naive[s],
                notes="comparator" if naive[s] else "skipped (quick mode, or not enough free RAM)",
            )
        )
    return figures
