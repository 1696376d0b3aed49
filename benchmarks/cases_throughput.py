"""Case 1: loopback throughput against one-POST curl (the limit) and the docs' curl recipe."""

from __future__ import annotations

import shutil
import statistics
import subprocess
from pathlib import Path

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
    timed,
)

RECIPE_CHUNK = 16 * MiB


def curl_post(emu: Emulator, sid: str, part: Path, number: int) -> list[str]:
    return [
        "curl",
        "-s",
        "-f",
        "-o",
        "/dev/null",
        "-H",
        f"x-api-key: {KEY}",
        "--form",
        f"file=@{part}",
        "--form",
        f"chunkNumber={number}",
        f"{emu.api}/files/session/{sid}",
    ]


def curl_single(emu: Emulator, path: Path) -> float:
    """Seconds for the whole file as one chunk in one multipart POST by curl."""
    size = path.stat().st_size
    sid = emu.start_session(1, size)
    seconds = timed(curl_post(emu, sid, path, 0), timeout=300)
    emu.call("POST", f"/files/session/{sid}/complete")
    return seconds


def split_file(path: Path, folder: Path) -> tuple[list[Path], float]:
    """The docs' first step: ``split -b 16M``; returns the parts and the seconds it took."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    seconds = timed(
        ["split", "-b", str(RECIPE_CHUNK), "-d", "-a", "5", str(path), f"{folder}/part."],
        timeout=300,
    )
    return sorted(folder.iterdir()), seconds


def curl_recipe(emu: Emulator, path: Path, parts: list[Path]) -> float:
    """Seconds for one curl per part, in order (the split step is timed separately)."""
    sid = emu.start_session(len(parts), path.stat().st_size)
    total = 0.0
    for number, part in enumerate(parts):
        total += timed(curl_post(emu, sid, part, number), timeout=300)
    emu.call("POST", f"/files/session/{sid}/complete")
    return total


def library_import(
    ctx: Context, emu: Emulator, path: Path, *extra: str, timeout: float = 600
) -> ChildRun:
    """One ``import_file`` in a child process (own interpreter, like the CLI)."""
    argv = child_python(
        "benchmarks.import_once",
        str(path),
        "--host",
        emu.url,
        "--key",
        KEY,
        "--state-dir",
        str(ctx.scratch / "state"),
        *extra,
    )
    run = run_child(argv, timeout=timeout)
    if run.output.get("status") != "SUCCESS":
        raise RuntimeError(f"import did not succeed: {run.output}")
    return run


def run(ctx: Context) -> list[Figure]:
    size = 256 * MiB if ctx.quick else 1 * GiB
    path = ctx.file(size)
    parts, split_seconds = split_file(path, ctx.scratch / "recipe-parts")
    limit, lib, recipe = [], [], []
    runs: list[ChildRun] = []
    with ctx.emulator("loopback", storage="discard") as emu:
        emu.patch(max_chunk_bytes=2**31)
        subprocess.run(["curl", "-s", "-o", "/dev/null", emu.url + "/_emulator/health"], check=True)
        library_import(ctx, emu, path)  # warm-up: page cache, imports, first connections
        for _ in range(ctx.reps):
            limit.append(size / curl_single(emu, path) / 1e6)
            child = library_import(ctx, emu, path)
            runs.append(child)
            lib.append(size / child.output["seconds"] / 1e6)
            recipe.append(size / curl_recipe(emu, path, parts) / 1e6)
    shutil.rmtree(parts[0].parent, ignore_errors=True)
    ctx.shared["loopback_limit_mb_s"] = sorted(limit)[len(limit) // 2]
    ctx.shared["loopback_library_runs"] = runs
    ctx.shared["loopback_size"] = size
    where = f"{fmt_size(size)}, default settings (16 MiB chunks, concurrency auto, SHA-256 on)"
    to_limit = ratios(lib, limit)
    to_recipe = ratios(lib, recipe)
    with_split = [size / 1e6 / (size / 1e6 / r + split_seconds) for r in recipe]
    return [
        Figure("1", "loopback throughput, library", "MB/s", lib, notes=where),
        Figure(
            "1",
            "loopback limit: curl, whole file as one POST",
            "MB/s",
            limit,
            notes="emulator storage=discard, separate process",
        ),
        Figure(
            "1",
            "ratio library / one-POST curl",
            "x",
            to_limit,
            ">= 0.8",
            at_least(to_limit, 0.8),
            where,
        ),
        Figure(
            "1",
            "docs' curl recipe (one curl per 16 MiB part, in order)",
            "MB/s",
            recipe,
            notes=f"split step not counted; {split_seconds:.2f}s more with it "
            f"({statistics.median(with_split):.0f} MB/s)",
        ),
        Figure(
            "1",
            "ratio library / curl recipe",
            "x",
            to_recipe,
            ">= 3",
            at_least(to_recipe, 3.0),
            "recipe timed without its split step",
        ),
    ]
