"""The plot of case autotune: throughput against fixed concurrency per profile, with auto marked."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cases_autotune import Profile


def plot_profiles(out: Path, profiles: list[Profile], fixed: tuple[int, ...]) -> None:
    """One panel per profile: median MB/s of each fixed setting (min-max bars) and auto."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), dpi=110)
    for ax, profile in zip(axes.flat, profiles, strict=False):
        levels = [c for c in fixed if profile.mbps(str(c))]
        med = [profile.median(str(c)) for c in levels]
        low = [m - min(profile.mbps(str(c))) for m, c in zip(med, levels, strict=True)]
        high = [max(profile.mbps(str(c))) - m for m, c in zip(med, levels, strict=True)]
        ax.errorbar(levels, med, yerr=[low, high], marker="o", capsize=3, label="fixed")
        auto = profile.mbps("auto")
        if auto:
            finals = [r["final"] or 1 for r in profile.results["auto"]]
            where = statistics.median(finals)
            ax.axhline(statistics.median(auto), color="tab:green", linestyle="--", alpha=0.6)
            ax.plot([where], [statistics.median(auto)], marker="*", markersize=16,
                    color="tab:green", linestyle="none",
                    label=f"auto (ends near {where:g})")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(fixed), [str(c) for c in fixed])
        ax.set_xlabel("concurrency (requests in flight)")
        ax.set_ylabel("MB/s")
        ax.set_title(f"P{profile.key}: {profile.title}", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
