"""Ranged download figures (not a test): MB/s by range count, and the SHA-256 tail cost.

Run: ``.venv/bin/python -m tests.download.bench_ranged [--mib 128] [--runs 3]``. A file
server in a child process serves a file on loopback, unshaped and then paced at 20 MB/s
per connection (the WAN profile of issue 12); each case downloads it ``runs`` times and
prints the median and spread of MB/s, and of the time spent hashing after the last piece
arrived (the rest of the hash overlaps the transfer).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kore_models import KoreClient
from kore_models.transfer.download import download_file

_SERVER = r"""
import asyncio, sys
from aiohttp import web
path, rate = sys.argv[1], float(sys.argv[2])
data = open(path, "rb").read()

async def paced(request):
    start, stop, _ = request.http_range.indices(len(data))
    ranged = "Range" in request.headers
    resp = web.StreamResponse(status=206 if ranged else 200)
    if ranged:
        resp.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
    resp.content_length = stop - start
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    began, sent = loop.time(), 0
    while start < stop:
        block = data[start : min(stop, start + 65536)]
        await resp.write(block)
        start += len(block); sent += len(block)
        ahead = sent / rate - (loop.time() - began)
        if ahead > 0:
            await asyncio.sleep(ahead)
    return resp

async def whole(request):
    return web.FileResponse(path)

app = web.Application()
app.router.add_get("/f", paced if rate > 0 else whole)
ready = lambda *_: print("ready", flush=True)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[3]), print=ready)
"""


class _TailTimes(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r"took ([0-9.]+) s", record.getMessage())
        if found:
            self.seconds.append(float(found.group(1)))


async def _case(url: str, dest: Path, ranges: int, runs: int, size: int, tails: _TailTimes) -> str:
    rates: list[float] = []
    tails.seconds.clear()
    async with KoreClient(
        host=url, api_key="kg-bench-key-0123456789", state_dir=dest.parent
    ) as kore:
        for _ in range(runs):
            began = time.perf_counter()
            await download_file(
                kore.transport, url + "/f", dest, ranges=ranges, piece_size=16 << 20
            )
            rates.append(size / (time.perf_counter() - began) / 1e6)
            os.unlink(dest)
    spread = f"{min(rates):.0f}-{max(rates):.0f}"
    tail = (
        f"; hash after transfer median {statistics.median(tails.seconds):.3f} s"
        if tails.seconds
        else ""
    )
    return f"ranges={ranges}: median {statistics.median(rates):.0f} MB/s (range {spread}){tail}"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.mib << 20
    tails = _TailTimes()
    logging.getLogger("kore_models.download").addHandler(tails)
    logging.getLogger("kore_models.download").setLevel(logging.DEBUG)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "source.bin"
        with source.open("wb") as handle:
            for _ in range(args.mib):
                handle.write(os.urandom(1 << 20))
        for label, rate in (("loopback, unshaped", 0.0), ("20 MB/s per connection", 20e6)):
            port = 20000 + os.getpid() % 20000
            server = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _SERVER,
                str(source),
                str(rate),
                str(port),
                stdout=asyncio.subprocess.PIPE,
            )
            assert server.stdout is not None
            await server.stdout.readline()
            print(f"{args.mib} MiB, {label}:")
            try:
                for ranges in (1, 4, 8):
                    line = await _case(
                        f"http://127.0.0.1:{port}",
                        Path(folder) / "out.bin",
                        ranges,
                        args.runs,
                        size,
                        tails,
                    )
                    print("  " + line, flush=True)
            finally:
                server.terminate()
                await server.wait()


if __name__ == "__main__":
    asyncio.run(main())
