"""Case 9: imports over TLS against curl, client CPU per GiB, event-loop lag, the proxy's cost.

Every measurement talks to one emulator started with ``--tls`` (its own process): the
library imports with ``--ca-bundle`` the emulator's CA; curl sends the same file as one
multipart POST (``curl --form``, which streams the file like ``curl -T``: the emulator takes
chunks as multipart POSTs, not PUTs) with ``--cacert``; then the library again through a
forward proxy (proxy.py, a CONNECT tunnel) and, when uvloop is installed, on uvloop.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped,unused-ignore]

from .harness import (
    KEY,
    ChildRun,
    Context,
    Emulator,
    Figure,
    GiB,
    MiB,
    at_least,
    at_most,
    child_python,
    fmt_size,
    ratios,
    run_child,
)


def curl_tls(emu: Emulator, path: Path) -> tuple[float, float]:
    """(wall seconds, user+sys CPU seconds) of curl POSTing the whole file over TLS."""
    assert emu.ca is not None
    size = path.stat().st_size
    sid = emu.start_session(1, size)
    argv = ["curl", "-s", "-f", "-o", "/dev/null", "--cacert", str(emu.ca)]
    argv += ["-H", f"x-api-key: {KEY}", "--form", f"file=@{path}", "--form", "chunkNumber=0"]
    started = time.perf_counter()
    proc = subprocess.Popen([*argv, f"{emu.api}/files/session/{sid}"])
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"curl over TLS failed: exit {os.waitstatus_to_exitcode(status)}")
    emu.call("POST", f"/files/session/{sid}/complete")
    return wall, usage.ru_utime + usage.ru_stime


def import_tls(ctx: Context, emu: Emulator, path: Path, *extra: str) -> ChildRun:
    """One ``import_file`` over TLS in a child process, with the 5 ms lag ticker."""
    assert emu.ca is not None
    argv = child_python(
        "benchmarks.import_once",
        str(path),
        *("--host", emu.url, "--key", KEY, "--ca-bundle", str(emu.ca), "--lag"),
        *("--state-dir", str(ctx.scratch / "state"), *extra),
    )
    run = run_child(argv, timeout=900)
    if run.output.get("status") != "SUCCESS":
        raise RuntimeError(f"import over TLS did not succeed: {run.output}")
    return run


class ForwardProxy:
    """proxy.py on a free loopback port, in its own process group; its CPU is measured."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> ForwardProxy:
        self.folder.mkdir(parents=True, exist_ok=True)
        port_file = self.folder / "port"
        port_file.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0"]
        argv += ["--port-file", str(port_file), "--num-workers", "1", "--num-acceptors", "1"]
        argv += ["--log-file", str(self.folder / "proxy.log")]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30

        def port() -> str:
            return port_file.read_text().strip() if port_file.exists() else ""

        while not port():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("proxy.py did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port()}"
        return self

    def cpu_seconds(self) -> float:
        """User+sys CPU of proxy.py and its worker processes so far."""
        assert self.proc is not None
        parent = psutil.Process(self.proc.pid)
        total = 0.0
        for process in [parent, *parent.children(recursive=True)]:
            times = process.cpu_times()
            total += times.user + times.system
        return float(total)

    def __exit__(self, *_: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                child.terminate()
            self.proc.terminate()
            self.proc.wait(timeout=10)


def run(ctx: Context) -> list[Figure]:
    size = 256 * MiB if ctx.quick else 1 * GiB
    path = ctx.file(size)
    gib = size / GiB
    lib, curl, lib_cpu, curl_cpu, lag = [], [], [], [], []
    proxied, proxied_cpu, proxy_cpu, uv_cpu, uv_lag = [], [], [], [], []
    plain, plain_cpu = [], []
    has_uvloop = importlib.util.find_spec("uvloop") is not None
    has_proxy = importlib.util.find_spec("proxy") is not None
    proxy_or_none = ForwardProxy(ctx.scratch / "proxy") if has_proxy else None
    with (
        ctx.emulator("tls", storage="discard", tls=True) as emu,
        proxy_or_none or contextlib.nullcontext() as proxy,
    ):
        emu.patch(max_chunk_bytes=2**31)
        import_tls(ctx, emu, path)  # warm-up: page cache, imports, session resumption
        for _ in range(ctx.reps):
            wall, cpu = curl_tls(emu, path)
            curl.append(size / wall / 1e6)
            curl_cpu.append(cpu / gib)
            child = import_tls(ctx, emu, path)
            lib.append(size / child.output["seconds"] / 1e6)
            lib_cpu.append(child.output["cpu_seconds"] / gib)
            lag.append(child.output["lag"]["p99_ms"])
            bare = import_tls(ctx, emu, path, "--no-checksum")  # no SHA-256, as curl
            plain.append(size / bare.output["seconds"] / 1e6)
            plain_cpu.append(bare.output["cpu_seconds"] / gib)
            if proxy is not None:
                before = proxy.cpu_seconds()
                through = import_tls(ctx, emu, path, "--proxy", proxy.url)
                proxy_cpu.append((proxy.cpu_seconds() - before) / gib)
                proxied.append(size / through.output["seconds"] / 1e6)
                proxied_cpu.append(through.output["cpu_seconds"] / gib)
            if has_uvloop:
                uv = import_tls(ctx, emu, path, "--uvloop")
                uv_cpu.append(uv.output["cpu_seconds"] / gib)
                uv_lag.append(uv.output["lag"]["p99_ms"])
    where = f"{fmt_size(size)} over TLS 1.3, default settings (16 MiB chunks, auto, SHA-256 on)"
    to_curl = ratios(lib, curl)
    cpu_ratio = ratios(lib_cpu, curl_cpu)
    plain_to_curl = ratios(plain, curl)
    plain_cpu_ratio = ratios(plain_cpu, curl_cpu)
    like_curl = "checksum=False: no SHA-256, like curl"
    figures = [
        Figure("9", "TLS import, library", "MB/s", lib, notes=where),
        Figure("9", "TLS: curl --form of the same file", "MB/s", curl, notes="one POST"),
        Figure("9", "TLS ratio library / curl", "x", to_curl, ">= 0.8", at_least(to_curl, 0.8)),
        Figure("9", "TLS client CPU per GiB, library", "s/GiB", lib_cpu, notes="in-process"),
        Figure("9", "TLS client CPU per GiB, curl", "s/GiB", curl_cpu, notes="wait4 rusage"),
        Figure(
            "9", "TLS CPU ratio library / curl", "x", cpu_ratio, "<= 1.5", at_most(cpu_ratio, 1.5)
        ),
        Figure("9", "TLS event-loop lag p99", "ms", lag, "<= 10 ms", at_most(lag, 10.0), where),
        Figure("9", "TLS import without SHA-256", "MB/s", plain, notes=like_curl),
        Figure(
            "9",
            "TLS ratio library without SHA-256 / curl",
            "x",
            plain_to_curl,
            ">= 0.8",
            at_least(plain_to_curl, 0.8),
        ),
        Figure("9", "TLS client CPU per GiB without SHA-256", "s/GiB", plain_cpu, notes=like_curl),
        Figure(
            "9",
            "TLS CPU ratio library without SHA-256 / curl",
            "x",
            plain_cpu_ratio,
            "<= 1.5",
            at_most(plain_cpu_ratio, 1.5),
        ),
    ]
    if proxied:
        cost = ratios(proxied, lib)
        figures += [
            Figure("9", "TLS through proxy.py (CONNECT)", "MB/s", proxied, notes="forward proxy"),
            Figure("9", "proxy cost: throughput via proxy / direct", "x", cost),
            Figure("9", "client CPU per GiB via proxy", "s/GiB", proxied_cpu),
            Figure("9", "proxy.py CPU per GiB", "s/GiB", proxy_cpu, notes="the proxy's own"),
        ]
    if uv_cpu:
        figures += [
            Figure("9", "TLS client CPU per GiB on uvloop", "s/GiB", uv_cpu, notes="optional"),
            Figure("9", "TLS event-loop lag p99 on uvloop", "ms", uv_lag, notes="optional"),
        ]
    return figures
