"""Case 2: emulated WAN (50 ms per request, 20 MB/s per connection): throughput vs concurrency."""

from __future__ import annotations

import statistics
from pathlib import Path

from .cases_throughput import curl_single, library_import
from .harness import KEY, Context, Figure, GiB, MiB, at_least, child_python, fmt_size, run_child

LEVELS = (1, 2, 4, 8, 16)
CAP = 20e6  # bytes per second per connection
LATENCY_MS = 50.0


def _plot(
    out: Path, levels: list[int], lib: dict[int, list[float]], ideal: list[float], naive: float
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    med = [statistics.median(lib[c]) for c in levels]
    low = [m - min(lib[c]) for m, c in zip(med, levels, strict=True)]
    high = [max(lib[c]) - m for m, c in zip(med, levels, strict=True)]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    ax.plot(levels, ideal, "--", color="grey", label="ideal min(c x 20 MB/s, loopback limit)")
    ax.errorbar(levels, med, yerr=[low, high], marker="o", capsize=3, label="kore_models")
    ax.axhline(naive, color="tab:red", linestyle=":", label="sequential aiohttp (whole parts)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.set_xlabel("concurrency (chunk uploads in flight)")
    ax.set_ylabel("throughput, MB/s")
    ax.set_title("Emulated WAN: 50 ms/request, 20 MB/s per connection")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def run(ctx: Context) -> list[Figure]:
    size = 128 * MiB if ctx.quick else 512 * MiB
    chunk = 8 * MiB if ctx.quick else 16 * MiB
    reps = 1 if ctx.quick else min(ctx.reps, 3)
    path = ctx.file(size)
    lib: dict[int, list[float]] = {c: [] for c in LEVELS}
    naive: list[float] = []
    chunk_arg = ("--chunk-size", f"{chunk // MiB}MiB")
    with ctx.emulator("wan", storage="discard") as emu:
        emu.patch(max_chunk_bytes=2 * GiB)
        limit = statistics.median([size / curl_single(emu, path) / 1e6 for _ in range(2)])
        emu.patch(latency_ms=LATENCY_MS, throughput_bytes_per_second=CAP)
        for _ in range(reps):
            for c in LEVELS:
                child = library_import(ctx, emu, path, *chunk_arg, "--concurrency", str(c))
                lib[c].append(size / child.output["seconds"] / 1e6)
            argv = child_python(
                "benchmarks.import_once", str(path), "--host", emu.url, "--key", KEY,
                "--mode", "naive-sequential", *chunk_arg,
            )  # fmt: skip
            naive.append(size / run_child(argv, timeout=600).output["seconds"] / 1e6)
    ideal = [min(c * CAP / 1e6, limit) for c in LEVELS]
    where = f"{fmt_size(size)} in {chunk // MiB} MiB chunks"
    if ctx.quick:
        where += " (quick: fewer, smaller chunks, so the 50 ms per request weighs more)"
    figures: list[Figure] = []
    for c, best in zip(LEVELS, ideal, strict=True):
        eff = [v / best for v in lib[c]]
        target = ">= 0.85" if c == 8 else ""
        met = at_least(eff, 0.85) if c == 8 else None
        figures.append(
            Figure(
                "2",
                f"WAN concurrency {c}: throughput / ideal",
                "x",
                eff,
                target,
                met,
                f"{statistics.median(lib[c]):.0f} MB/s of ideal {best:.0f} MB/s; {where}",
            )
        )
    vs_naive = [a / b for a, b in zip(lib[8], naive, strict=True)]
    figures.append(
        Figure(
            "2",
            "WAN concurrency 8 / sequential aiohttp uploader",
            "x",
            vs_naive,
            ">= 6",
            at_least(vs_naive, 6.0),
            f"sequential: {statistics.median(naive):.1f} MB/s (reads each part whole, posts in "
            f"order); loopback limit here {limit:.0f} MB/s",
        )
    )
    plot = ctx.out_dir / str(ctx.shared.get("plot_name", "throughput_vs_concurrency.png"))
    _plot(plot, list(LEVELS), lib, ideal, statistics.median(naive))
    ctx.shared["plot_written"] = plot.name
    ctx.shared["wan"] = {"levels": LEVELS, "throughput": lib, "ideal": ideal, "naive": naive}
    return figures
