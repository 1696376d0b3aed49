"""Case 8 (planning part): list, check, size and fingerprint a 10,000-file folder.

Run alone with ``python -m benchmarks.cases_folder [--files N] [--reps N]``: it builds the
folder once under the scratch root, then times each plan (``list_folder`` + the tar's
size + ``fingerprint_listing``) in a fresh child process, so no run reuses another's
Python objects; the page cache is warm, as it is when a user imports a folder twice.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .harness import PYTHON, ROOT, Context, Figure, at_most, scratch_root

FILES = 10_000
PLAN_CEILING_S = 1.0
_CHILD = """
import json, sys, time
from kore_models.transfer.folder import fingerprint_listing, list_folder
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cases_folder")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    ctx = Context(quick=False, scratch=scratch_root(0), out_dir=ROOT, reps=args.reps)
    started = time.perf_counter()
    for figure in run_planning(ctx):
        samples = ", ".join(f"{s:.3f}" for s in figure.samples)
        print(
            f"{figure.name}: median {figure.median:.3f} {figure.unit} "
            f"(min {figure.low:.3f}, max {figure.high:.3f}; runs: {samples}) "
            f"target {figure.target}: {'met' if figure.met else 'NOT met'}; {figure.notes}"
        )
    print(f"took {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
