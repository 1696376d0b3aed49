"""Case 6: download of an export with `export_to_file` against `curl -o` of the same URL."""

from __future__ import annotations

from pathlib import Path

from .cases_throughput import library_import
from .harness import (
    KEY,
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
    timed,
)


def export_url(emu: Emulator, model_id: str) -> str:
    """A fresh export's download URL (the emulator answers SUCCESS at once with job_seconds=0)."""
    doc = emu.call("POST", f"/models/{model_id}/export")
    url = str(doc["response"]["downloadUrl"]).strip()
    assert url.startswith(emu.url), url
    return url


def run(ctx: Context) -> list[Figure]:
    size = 256 * MiB if ctx.quick else 1 * GiB
    reps = ctx.reps if ctx.quick else min(ctx.reps, 4)
    path = ctx.file(size)
    dest = ctx.scratch / "download-library.tar"
    curl_dest = ctx.scratch / "download-curl.tar"
    lib, curl, rss, growth = [], [], [], []
    with ctx.emulator("download", storage="disk") as emu:
        model_id = library_import(ctx, emu, path).output["model_id"]
        for rep in range(reps + 1):  # the first round warms up and is not counted
            for target in (dest, curl_dest):
                target.unlink(missing_ok=True)
            argv = child_python(
                "benchmarks.download_once",
                model_id,
                str(dest),
                "--host",
                emu.url,
                "--key",
                KEY,
                "--state-dir",
                str(ctx.scratch / "state"),
            )
            child = run_child(argv, timeout=600)
            assert child.output["bytes"] == size, child.output
            url = export_url(emu, model_id)
            seconds = timed(["curl", "-s", "-f", "-o", str(curl_dest), url], timeout=600)
            assert curl_dest.stat().st_size == size
            if rep == 0:
                continue
            lib.append(size / child.output["seconds"] / 1e6)
            curl.append(size / seconds / 1e6)
            peak = child.peak_rss
            rss.append(peak / MiB)
            growth.append((peak - child.output["rss_start"]) / MiB)
    for target in (dest, curl_dest):
        Path(target).unlink(missing_ok=True)
    ratio = [a / b for a, b in zip(lib, curl, strict=True)]
    where = f"{fmt_size(size)}; emulator storage=disk on {ctx.scratch}"
    return [
        Figure(
            "6",
            "download, export_to_file",
            "MB/s",
            lib,
            notes=f"{where}; includes export request, fsync and rename",
        ),
        Figure("6", "download, curl -o", "MB/s", curl, notes=where),
        Figure("6", "ratio export_to_file / curl -o", "x", ratio, ">= 0.8", at_least(ratio, 0.8)),
        Figure("6", "peak RSS of the downloading process", "MiB", rss, notes=where),
        Figure(
            "6",
            "RSS growth during the download",
            "MiB",
            growth,
            "flat (<= 32 MiB)",
            at_most(growth, 32.0),
            "peak RSS minus RSS just before export_to_file",
        ),
    ]
