"""Measure how fast the emulator ingests 16 MiB chunks on loopback, and its CPU per GB.

Usage: .venv/bin/python benchmarks/emulator_ingest.py [--chunks 32] [--storage discard|disk]
       [--runs 3]

Each case reports GB/s and the emulator process's CPU seconds per GB (user + system, from psutil);
with several runs the last lines give the median and the range of each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import psutil  # type: ignore[import-untyped,unused-ignore]

KEY = "kg-bench-key"
CHUNK = 16 * 1024 * 1024


def start_emulator(storage: str, data_dir: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kore_models.emulator",
            "--port",
            "0",
            "--api-key",
            KEY,
            "--storage",
            storage,
            "--data-dir",
            data_dir,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("kore-models emulator listening on "):
        proc.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1]


def new_session(url: str, chunks: int) -> str:
    body = {
        "fileContext": "model",
        "totalChunks": chunks,
        "fileExtension": "tar",
        "fileName": "bench.tar",
        "fileSize": chunks * CHUNK,
    }
    req = urllib.request.Request(  # noqa: S310 - loopback only
        f"{url}/api/public/files/session/start",
        data=json.dumps(body).encode(),
        headers={"x-api-key": KEY, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as resp:  # noqa: S310 - loopback only
        return str(json.load(resp)["sessionId"])


def bench_curl(url: str, chunk_file: Path, chunks: int) -> float:
    sid = new_session(url, chunks)
    t0 = time.perf_counter()
    for i in range(chunks):
        subprocess.run(
            [
                "curl",
                "-sf",
                "-o",
                "/dev/null",
                "-H",
                f"x-api-key: {KEY}",
                "--form",
                f"file=@{chunk_file}",
                "--form",
                f"chunkNumber={i}",
                f"{url}/api/public/files/session/{sid}",
            ],
            check=True,
        )
    return chunks * CHUNK / (time.perf_counter() - t0) / 1e9


async def bench_aiohttp(url: str, data: bytes, chunks: int, parallel: int) -> float:
    sid = new_session(url, chunks)
    boundary = "benchboundary7d1f0c"
    bodies = []
    for i in range(chunks):
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="chunkNumber"\r\n\r\n{i}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        bodies.append(head + data + f"\r\n--{boundary}--\r\n".encode())
    headers = {"x-api-key": KEY, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    sem = asyncio.Semaphore(parallel)
    async with aiohttp.ClientSession() as http:

        async def one(i: int) -> None:
            async with (
                sem,
                http.post(
                    f"{url}/api/public/files/session/{sid}", data=bodies[i], headers=headers
                ) as resp,
            ):
                resp.raise_for_status()
                await resp.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(chunks)))
        return chunks * CHUNK / (time.perf_counter() - t0) / 1e9


def _raw_upload(host: str, port: int, sid: str, chunk_file: Path, i: int) -> None:
    """One upload over a plain blocking socket, body bytes sent with os.sendfile."""
    boundary = "rawboundary5e2a"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="chunkNumber"\r\n\r\n{i}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c"\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = chunk_file.stat().st_size
    req = (
        f"POST /api/public/files/session/{sid} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"x-api-key: {KEY}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + size + len(tail)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port)) as sock, open(chunk_file, "rb") as fh:
        sock.sendall(req + head)
        sent = 0
        while sent < size:
            sent += os.sendfile(sock.fileno(), fh.fileno(), sent, size - sent)
        sock.sendall(tail)
        reply = sock.recv(4096)
        if not reply.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(reply[:200])


def bench_raw(url: str, chunk_file: Path, chunks: int, parallel: int) -> float:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sid = new_session(url, chunks)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda i: _raw_upload(host, int(port), sid, chunk_file, i), range(chunks)))
    return chunks * CHUNK / (time.perf_counter() - t0) / 1e9


CASES: dict[str, Callable[[str, Path, bytes, int], float]] = {
    "curl seq": lambda url, path, data, n: bench_curl(url, path, n),
    "aiohttp seq": lambda url, path, data, n: asyncio.run(bench_aiohttp(url, data, n, 1)),
    "aiohttp x4": lambda url, path, data, n: asyncio.run(bench_aiohttp(url, data, n, 4)),
    "raw socket+sendfile seq": lambda url, path, data, n: bench_raw(url, path, n, 1),
    "raw x2": lambda url, path, data, n: bench_raw(url, path, n, 2),
}


Figures = dict[str, tuple[float, float]]


def run_cases(storage: str, chunk_file: Path, data: bytes, chunks: int) -> Figures:
    """{case: (GB/s, emulator CPU seconds per GB)} for one fresh emulator."""
    figures: Figures = {}
    with tempfile.TemporaryDirectory(prefix="kore-bench-") as data_dir:
        proc, url = start_emulator(storage, data_dir)
        emulator = psutil.Process(proc.pid)
        try:
            for name, case in CASES.items():
                before = emulator.cpu_times()
                rate = case(url, chunk_file, data, chunks)
                after = emulator.cpu_times()
                cpu = (after.user - before.user) + (after.system - before.system)
                figures[name] = (rate, cpu / (chunks * CHUNK / 1e9))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return figures


def _line(label: str, figures: Figures) -> str:
    cases = ", ".join(f"{name} {gbs:.2f} ({cpu:.2f} s)" for name, (gbs, cpu) in figures.items())
    return f"{label} (GB/s, emulator CPU s/GB): {cases}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=32)
    parser.add_argument("--storage", choices=["discard", "disk", "both"], default="both")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    chunk_file = Path("/dev/shm/kore-bench-chunk" if Path("/dev/shm").is_dir() else "/tmp/chunk")
    data = os.urandom(CHUNK)
    chunk_file.write_bytes(data)
    storages = ["discard", "disk"] if args.storage == "both" else [args.storage]
    try:
        for storage in storages:
            label = f"storage={storage} {args.chunks} x 16 MiB"
            runs = []
            for run in range(args.runs):
                runs.append(run_cases(storage, chunk_file, data, args.chunks))
                print(_line(f"{label} run {run + 1}", runs[-1]), flush=True)
            if args.runs > 1:
                parts = []
                for name in CASES:
                    rates = [r[name][0] for r in runs]
                    cpus = [r[name][1] for r in runs]
                    parts.append(
                        f"{name} {statistics.median(rates):.2f} [{min(rates):.2f}-{max(rates):.2f}]"
                        f" ({statistics.median(cpus):.2f} s [{min(cpus):.2f}-{max(cpus):.2f}])"
                    )
                print(f"{label} median of {args.runs} [range]: " + ", ".join(parts), flush=True)
    finally:
        chunk_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
