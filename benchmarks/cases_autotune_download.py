"""Case autotune, downloads: ranged downloads under ``auto`` against fixed range counts.

One emulator stores three exports (small, middle, large); each download is a child
process (``benchmarks.download_once``) on loopback, the WAN profile and the capped
uplink. Slow settings fetch the smaller exports (their MB/s does not depend on size).
"""

from __future__ import annotations

import statistics
from typing import Any

from .cases_throughput import library_import
from .harness import KEY, Context, Figure, GiB, MiB, at_least, at_most, child_python, run_child

SETTINGS = ("auto", "1", "2", "4", "8", "16", "32")
WAN = {"latency_ms": 50.0, "throughput_bytes_per_second": 20e6}
PROFILES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("loopback", {}, dict.fromkeys(SETTINGS, "large")),
    ("WAN", WAN, {"1": "small", "2": "small", "4": "middle", **dict.fromkeys(
        ("8", "16", "32", "auto"), "large")}),
    ("capped uplink", {**WAN, "total_throughput_bytes_per_second": 60e6},
     {"1": "small", **dict.fromkeys(("2", "4", "8", "16", "32", "auto"), "middle")}),
]  # fmt: skip


def run_downloads(ctx: Context, case: str, reps: int) -> list[Figure]:
    """The download figures of the case (see the module docstring)."""
    s = 4 if ctx.quick else 1
    sizes = {"small": 128 * MiB // s, "middle": 384 * MiB // s, "large": 1 * GiB // s}
    figures: list[Figure] = []
    rss: list[float] = []
    with ctx.emulator("autotune-download", storage="disk") as emu:
        models = {
            k: library_import(ctx, emu, ctx.file(v)).output["model_id"] for k, v in sizes.items()
        }
        dest = ctx.scratch / "autotune-download.tar"
        for name, config, which in PROFILES:
            unshaped = {
                "latency_ms": 0.0,
                "throughput_bytes_per_second": None,
                "total_throughput_bytes_per_second": None,
            }
            emu.patch(**{**unshaped, **config})
            mbps: dict[str, list[float]] = {k: [] for k in SETTINGS}
            for _ in range(reps):
                for setting in SETTINGS:
                    dest.unlink(missing_ok=True)
                    argv = child_python(
                        "benchmarks.download_once", models[which[setting]], str(dest),
                        "--host", emu.url, "--key", KEY, "--state-dir", str(ctx.scratch / "state"),
                        "--ranges", setting,
                    )  # fmt: skip
                    child = run_child(argv, timeout=900)
                    mbps[setting].append(child.output["bytes"] / child.output["seconds"] / 1e6)
                    if setting == "auto":
                        rss.append(child.peak_rss / MiB)
            dest.unlink(missing_ok=True)
            fixed = [k for k in SETTINGS if k != "auto"]
            best = max(fixed, key=lambda k: statistics.median(mbps[k]))
            ratio = [a / statistics.median(mbps[best]) for a in mbps["auto"]]
            table = ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in mbps.items())
            figures.append(
                Figure(
                    case, f"Download, {name}: auto / best fixed range count", "x", ratio,
                    ">= 0.9", at_least(ratio, 0.9),
                    f"MB/s: {table}; best {best}; exports " + ", ".join(
                        f"{k}: {sizes[v] // MiB} MiB" for k, v in which.items()),
                )
            )  # fmt: skip
            if name == "WAN":
                single = [a / statistics.median(mbps["1"]) for a in mbps["auto"]]
                figures.append(
                    Figure(case, "Download, WAN: auto / one stream", "x", single, ">= 4",
                           at_least(single, 4.0), "20 MB/s per connection: one stream's cap")
                )  # fmt: skip
    figures.append(
        Figure(case, "Download peak RSS (auto, all profiles)", "MiB", rss, "<= 100 MiB",
               at_most(rss, 100.0), "VmHWM of the downloading process")
    )  # fmt: skip
    return figures
