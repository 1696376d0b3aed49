"""Entry point: `python -m benchmarks.run [--quick] [--cases 1,2,...] [--out DIR]`."""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from . import report
from .harness import ROOT, Context, Figure, GiB, MiB, scratch_root

# case -> (module, function)
CASES: dict[str, tuple[str, str]] = {
    "1": ("benchmarks.cases_throughput", "run"),
    "2": ("benchmarks.cases_wan", "run"),
    "3": ("benchmarks.cases_memory", "run"),
    "4": ("benchmarks.cases_cpu_lag", "run_cpu"),
    "5": ("benchmarks.cases_cpu_lag", "run_lag"),
    "6": ("benchmarks.cases_download", "run"),
    "7": ("benchmarks.cases_poller", "run"),
    "8": ("benchmarks.cases_folder", "run"),
    "9": ("benchmarks.cases_tls", "run"),
    "integrity": ("benchmarks.cases_integrity", "run"),
    "autotune": ("benchmarks.cases_autotune", "run"),
}


def _case(number: str) -> Callable[[Context], list[Figure]]:
    module, name = CASES[number]
    func: Callable[[Context], list[Figure]] = getattr(importlib.import_module(module), name)
    return func


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller files, fewer repetitions")
    parser.add_argument("--cases", default=",".join(CASES), help="e.g. 1,4 (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per measurement")
    parser.add_argument("--keep-data", action="store_true", help="keep the generated files")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    chosen = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    need = (2 * GiB if args.quick else 8 * GiB) + 512 * MiB
    ctx = Context(
        quick=args.quick,
        scratch=scratch_root(need),
        out_dir=args.out,
        reps=args.reps or (2 if args.quick else 5),
    )
    prefix = "quick-latest" if args.quick else "latest"
    ctx.shared["plot_name"] = (
        "quick-throughput_vs_concurrency.png" if args.quick else "throughput_vs_concurrency.png"
    )
    started = time.perf_counter()
    figures: list[Figure] = []
    errors: list[str] = []
    try:
        for number in chosen:
            t0 = time.perf_counter()
            print(f"case {number}: {report.CASES[number]} ...", file=sys.stderr, flush=True)
            try:
                found = _case(number)(ctx)
            except Exception as exc:
                traceback.print_exc()
                errors.append(f"case {number} failed: {type(exc).__name__}: {exc}")
                found = [Figure(number, report.CASES[number], "", [], met=False, notes=str(exc))]
            figures.extend(found)
            print(report.table(found), file=sys.stderr)
            print(f"case {number} took {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    finally:
        if not args.keep_data:
            for path in ctx.files.values():
                path.unlink(missing_ok=True)
            shutil.rmtree(ctx.scratch / "state", ignore_errors=True)
            for folder in (*ctx.scratch.glob("emulator-*"), *ctx.scratch.glob("folder-*")):
                shutil.rmtree(folder, ignore_errors=True)
            (ctx.scratch / "poller.tar").unlink(missing_ok=True)
    meta = {
        "generated": report.now(),
        "mode": "quick" if args.quick else "full",
        "cases": chosen,
        "repetitions": ctx.reps,
        "duration_seconds": time.perf_counter() - started,
        "machine": report.machine(),
    }
    json_path, md_path = report.write(args.out, prefix, figures, meta, errors)
    if not args.quick and not args.no_docs and chosen == list(CASES):
        plot = ctx.shared.get("plot_written")
        report.write_docs(figures, meta, plot if isinstance(plot, str) else None)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path} in {meta['duration_seconds']:.0f}s", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
