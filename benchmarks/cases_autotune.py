"""Case autotune: concurrency "auto" against fixed 1-32 on four network profiles, and the rate cap.

Each profile runs in its own emulator process; every import is a child process
(``benchmarks.import_once``) with the event-loop ticker on. Figures per profile: auto
over the best fixed setting (target >= 0.9) and over today's fixed 8 (target: not below
it, 5 % allowed for noise); for the guarded server the share of chunk requests answered
429; for every auto run the event-loop lag and peak RSS; on loopback auto over the
one-POST curl limit; and ``--limit-rate`` measured against its setting.

Slow settings get smaller files so the case stays within minutes; throughput (MB/s) is
compared, which does not depend on the size once a transfer is past its first round
trips. The sizes are in each figure's notes.
"""

from __future__ import annotations

import collections
import json
import statistics
from dataclasses import dataclass, field
from typing import Any

from .cases_autotune_download import run_downloads
from .cases_autotune_plot import plot_profiles
from .cases_throughput import curl_single, library_import
from .harness import (
    Context,
    Emulator,
    Figure,
    GiB,
    MiB,
    at_least,
    at_most,
    child_python,
    fmt_size,
    run_child,
)

CASE = "autotune"
FIXED = (1, 2, 4, 8, 16, 32)
SETTINGS = ("auto", *(str(c) for c in FIXED))
WAN = {"latency_ms": 50.0, "throughput_bytes_per_second": 20e6}


@dataclass
class Profile:
    """One network profile: emulator config, chunk size, and file size per setting."""

    key: str
    title: str
    config: dict[str, Any]
    chunk: int
    sizes: dict[str, int]
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def mbps(self, setting: str) -> list[float]:
        return [r["mbps"] for r in self.results.get(setting, [])]

    def median(self, setting: str) -> float:
        values = self.mbps(setting)
        return statistics.median(values) if values else float("nan")


def _profiles(quick: bool) -> list[Profile]:
    s = 4 if quick else 1  # quick mode: a quarter of every size

    def sizes(small: int, big: int, *, large: tuple[str, ...]) -> dict[str, int]:
        return {k: (big if k in large else small) // s for k in SETTINGS}

    return [
        Profile("1", "loopback", {}, 16 * MiB, sizes(1 * GiB, 1 * GiB, large=())),
        Profile(
            "2",
            "WAN: 50 ms, 20 MB/s per connection",
            WAN,
            4 * MiB,
            {
                "1": 128 * MiB // s,
                "2": 128 * MiB // s,
                "4": 512 * MiB // s,
                "8": 1 * GiB // s,
                "16": 4 * GiB // s,
                "32": 4 * GiB // s,
                "auto": 4 * GiB // s,
            },
        ),
        Profile(
            "3",
            "capped uplink: 50 ms, 20 MB/s per connection, 60 MB/s in total",
            {**WAN, "total_throughput_bytes_per_second": 60e6},
            4 * MiB,
            sizes(128 * MiB, 384 * MiB, large=("2", "4", "8", "16", "32", "auto")),
        ),
        Profile(
            "4",
            "guarded server: 4 chunks in flight (429, Retry-After 1 s), 20 MB/s each",
            {
                "throughput_bytes_per_second": 20e6,
                "max_chunks_in_flight": 4,
                "retry_after_seconds": 1.0,
            },
            4 * MiB,
            sizes(256 * MiB, 1 * GiB, large=("4", "auto")),
        ),
    ]


def _one(ctx: Context, emu: Emulator, profile: Profile, setting: str) -> dict[str, Any]:
    size = profile.sizes[setting]
    path = ctx.file(size)
    emu.reset_counters()
    try:
        child = library_import(
            ctx,
            emu,
            path,
            "--chunk-size",
            f"{profile.chunk // MiB}MiB",
            "--concurrency",
            setting,
            "--lag",
            "--stalls",
            timeout=900,
        )
    except RuntimeError as exc:  # the import failed (a fixed level against a guarded server)
        counters = emu.counters()
        return {
            "mbps": 0.0, "failed": str(exc)[-300:], "lag_p99": 0.0, "lag_max": 0.0, "rss": 0,
            "peak": None, "final": None, "decisions": [], "stall_sites": [],
            "rejected": int(counters.get("in_flight_limit_429s", 0)),
            "chunk_requests": int(counters.get("requests", {}).get("chunk", 0)),
        }  # fmt: skip
    out = child.output
    counters = emu.counters()
    rejected = int(counters.get("in_flight_limit_429s", 0))
    chunk_requests = int(counters.get("requests", {}).get("chunk", 0))
    return {
        "mbps": size / out["seconds"] / 1e6,
        "lag_p99": out["lag"]["p99_ms"],
        "lag_max": out["lag"]["max_ms"],
        "rss": child.peak_rss,
        "peak": out.get("peak_concurrency"),
        "final": out.get("final_concurrency"),
        "decisions": out.get("decisions", []),
        "stall_sites": out.get("stall_sites", []),
        "rejected": rejected,
        "chunk_requests": chunk_requests,
    }


def _profile_figures(profile: Profile) -> list[Figure]:
    best_setting = max((str(c) for c in FIXED), key=profile.median)
    reps = len(profile.mbps("auto"))
    best = statistics.median(profile.mbps(best_setting))
    vs_best = [a / best for a in profile.mbps("auto")] if best > 0 else []
    pairs = list(zip(profile.mbps("auto"), profile.mbps("8"), strict=False))[:reps]
    vs_8 = [a / f for a, f in pairs if f > 0]
    eight_failed = any(f == 0 for _, f in pairs)
    table = ", ".join(f"{k} {profile.median(k):.0f}" for k in SETTINGS)
    failed = sorted(
        {k for k in SETTINGS for r in profile.results.get(k, []) if r.get("failed")}, key=len
    )
    if failed:
        table += f" (failed, retries exhausted, counted as 0: {', '.join(failed)})"
    finals = sorted({r["final"] for r in profile.results["auto"]})
    sizes = ", ".join(f"{k}: {fmt_size(v)}" for k, v in profile.sizes.items())
    notes = (
        f"MB/s: {table}; best fixed {best_setting}; auto ended at {finals}; "
        f"{fmt_size(profile.chunk)} chunks; files {sizes}"
    )
    figures = [
        Figure(
            CASE, f"P{profile.key} {profile.title}: auto / best fixed", "x", vs_best,
            ">= 0.9", at_least(vs_best, 0.9), notes,
            extra={k: profile.mbps(k) for k in SETTINGS},
        ),
        Figure(
            CASE, f"P{profile.key}: auto / fixed 8", "x", vs_8, ">= 0.95 (never below fixed 8)",
            at_least(vs_8, 0.95) or (eight_failed and not vs_8),
            "same repetition; 5 % allowed for the noise of a shared machine"
            + ("; fixed 8 failed (retries exhausted) in some runs" if eight_failed else ""),
        ),
    ]  # fmt: skip
    if profile.key == "4":
        share = [100 * r["rejected"] / max(1, r["chunk_requests"]) for r in profile.results["auto"]]
        figures.append(
            Figure(
                CASE, "P4: chunk requests answered 429 (auto)", "%", share, "< 5%",
                at_most(share, 4.999),
                "fixed 8/16/32: " + ", ".join(
                    f"{k} {statistics.median(100 * r['rejected'] / max(1, r['chunk_requests']) for r in profile.results[k]):.0f}%"  # noqa: E501
                    for k in ("8", "16", "32")
                ),
            )
        )  # fmt: skip
    return figures


def _limit_rate(ctx: Context, emu: Emulator, reps: int) -> Figure:
    rate = 50e6
    size = (128 if ctx.quick else 512) * MiB
    path = ctx.file(size)
    measured: list[float] = []
    whole: list[float] = []
    for _ in range(reps):
        child = library_import(ctx, emu, path, "--limit-rate", "50MB/s", timeout=900)
        measured.append((child.output.get("upload_rate_after_2s") or 0.0) / rate)
        whole.append(size / child.output["seconds"] / rate)
    ok = bool(measured) and 0.95 <= statistics.median(measured) <= 1.05
    return Figure(
        CASE, "--limit-rate 50MB/s: measured / set (loopback)", "x", measured, "0.95-1.05", ok,
        f"{fmt_size(size)} imported; bytes per second of the upload after its first 2 s "
        f"(whole import incl. session, complete and job: {statistics.median(whole):.3f}x)",
    )  # fmt: skip


def run(ctx: Context) -> list[Figure]:
    reps = 1 if ctx.quick else min(ctx.reps, 3)
    profiles = _profiles(ctx.quick)
    figures: list[Figure] = []
    lag_p99: list[float] = []
    lag_max: list[float] = []
    stall_sites: collections.Counter[str] = collections.Counter()
    rss: list[float] = []
    curl_limit = 0.0
    for profile in profiles:
        with ctx.emulator(f"autotune-{profile.key}", storage="discard") as emu:
            emu.patch(max_chunk_bytes=2 * GiB)
            if profile.key == "1":
                path = ctx.file(profile.sizes["auto"])
                curl_limit = statistics.median(
                    [path.stat().st_size / curl_single(emu, path) / 1e6 for _ in range(2)]
                )
                figures.append(_limit_rate(ctx, emu, reps))
            if profile.config:
                emu.patch(**profile.config)
            for _ in range(reps):
                for setting in SETTINGS:
                    result = _one(ctx, emu, profile, setting)
                    profile.results.setdefault(setting, []).append(result)
                    if setting == "auto":
                        lag_p99.append(result["lag_p99"])
                        lag_max.append(result["lag_max"])
                        for site, ms in result["stall_sites"]:
                            stall_sites[site] += ms
                        rss.append(result["rss"] / MiB)
        raw = ctx.out_dir / ("quick-autotune-raw.json" if ctx.quick else "autotune-raw.json")
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        done = {p.key: p.results for p in profiles if p.results}
        raw.write_text(json.dumps(done, indent=1, default=str))
        figures.extend(_profile_figures(profile))
    loopback = profiles[0].mbps("auto")
    figures.append(
        Figure(
            CASE, "Loopback auto / one-POST curl limit", "x", [v / curl_limit for v in loopback],
            ">= 0.8", at_least([v / curl_limit for v in loopback], 0.8),
            f"curl limit {curl_limit:.0f} MB/s",
        )
    )  # fmt: skip
    idle = [run_child(child_python("benchmarks.idle_ticker"), timeout=60).output for _ in range(3)]
    control = (
        f"control, the same ticker in an idle process on this machine: p99 "
        f"{statistics.median(i['p99_ms'] for i in idle):.1f} ms, max "
        f"{statistics.median(i['max_ms'] for i in idle):.0f} ms (median of 3 runs of 5 s)"
    )
    figures += [
        Figure(CASE, "Event-loop lag p99 (auto, all profiles)", "ms", lag_p99, "<= 10 ms",
               at_most(lag_p99, 10.0), f"5 ms ticker in the importing loop; {control}"),
        Figure(CASE, "Event-loop lag max (auto, all profiles)", "ms", lag_max, "<= 50 ms",
               at_most(lag_max, 50.0), "the worst wake-up of each run; where the loop thread "
               "was during stalls over 15 ms (ms seen, all auto runs): " + "; ".join(
                   f"{site} {ms:.0f}" for site, ms in stall_sites.most_common(4))),
        Figure(CASE, "Peak RSS (auto, all profiles)", "MiB", rss, "<= 100 MiB",
               at_most(rss, 100.0), "VmHWM of the importing process"),
    ]  # fmt: skip
    figures += run_downloads(ctx, CASE, reps)
    name = "quick-autotune.png" if ctx.quick else "autotune.png"
    plot_profiles(ctx.out_dir / name, profiles, FIXED)
    ctx.shared["autotune_plot"] = name
    return figures
