"""Cases 4 and 5: client CPU seconds per GiB, and event-loop lag during an import."""

from __future__ import annotations

from .cases_throughput import library_import
from .harness import ChildRun, Context, Figure, GiB, MiB, at_most, fmt_size


def _size(ctx: Context) -> int:
    return 256 * MiB if ctx.quick else 1 * GiB


def run_cpu(ctx: Context) -> list[Figure]:
    """Reuse case 1's library runs when there are any; else run imports of our own."""
    runs: list[ChildRun] | None = ctx.shared.get("loopback_library_runs")
    size = int(ctx.shared.get("loopback_size", _size(ctx)))
    source = "case 1's library runs"
    if not runs:
        source = "own runs"
        path = ctx.file(size)
        with ctx.emulator("cpu", storage="discard") as emu:
            library_import(ctx, emu, path)  # warm-up
            runs = [library_import(ctx, emu, path) for _ in range(ctx.reps)]
    per_gib = [r.output["cpu_seconds"] / (size / GiB) for r in runs]
    whole = [r.cpu / (size / GiB) for r in runs]
    return [
        Figure(
            "4",
            "client CPU per GiB, loopback",
            "s/GiB",
            per_gib,
            "<= 1.0",
            at_most(per_gib, 1.0),
            f"user+sys of the importing process around import_file, all threads; "
            f"{fmt_size(size)}, default settings; {source}. With interpreter start-up: "
            f"{sorted(whole)[len(whole) // 2]:.2f} s/GiB",
        )
    ]


def run_lag(ctx: Context) -> list[Figure]:
    size = _size(ctx)
    path = ctx.file(size)
    reps = ctx.reps if ctx.quick else min(ctx.reps, 3)
    lags = []
    with ctx.emulator("lag", storage="discard") as emu:
        library_import(ctx, emu, path)  # warm-up
        for _ in range(reps):
            lags.append(library_import(ctx, emu, path, "--lag").output["lag"])
    where = f"{fmt_size(size)}, default settings, ticker sleeps 5 ms"
    p99 = [lag["p99_ms"] for lag in lags]
    return [
        Figure("5", "event-loop lag p50", "ms", [lag["p50_ms"] for lag in lags], notes=where),
        Figure("5", "event-loop lag p99", "ms", p99, "<= 10 ms", at_most(p99, 10.0), where),
        Figure("5", "event-loop lag max", "ms", [lag["max_ms"] for lag in lags], notes=where),
    ]
