"""Reliability-suite helpers: the emulator process, a scriptable fake server, the CLI as a
subprocess, the emulator's control API, and test files."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import json
import os
import random
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from kore_models.emulator.process import EmulatorProcess as EmulatorProcess

API_KEY = "kg-reliability-test-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


StartEmulator = Callable[..., EmulatorProcess]
"""The ``start_emulator`` fixture: ``start_emulator(*cli_args, api_key=..., stderr_path=...)``."""


def control(url: str, method: str, path: str, body: Any = None) -> Any:
    """One request to the emulator's control API at ``url`` (a loopback http URL)."""
    host_port = url.removeprefix("http://")
    assert host_port.startswith(("127.0.0.1:", "localhost:", "[::1]:")), url
    conn = http.client.HTTPConnection(host_port, timeout=30)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, f"/_emulator{path}", body=payload, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode()
        assert resp.status == 200, f"{method} {path}: {resp.status} {text}"
        return json.loads(text)
    finally:
        conn.close()


def wait_until(
    condition: Callable[[], bool], *, timeout: float, interval: float = 0.05, what: str = ""
) -> None:
    """Poll ``condition`` (an external process's state, which has no event to await)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


# ---- files ----------------------------------------------------------------------------


def make_model_file(path: Path, size: int) -> Path:
    """A file of ``size`` random bytes (written in 1 MiB blocks)."""
    with open(path, "wb") as handle:
        left = size
        while left:
            block = os.urandom(min(left, 1 << 20))
            handle.write(block)
            left -= len(block)
    return path


class _RandomReader(io.RawIOBase):
    """``size`` seeded pseudo-random bytes, read like a file."""

    def __init__(self, size: int, seed: int):
        self.left = size
        self.rng = random.Random(seed)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return self.rng.randbytes(n)


def make_model_tar(path: Path, weights: int, *, seed: int = 0) -> str:
    """A valid model tar (a config and ``weights`` random bytes); returns its sha256."""
    with tarfile.open(path, "w") as tar:
        config = b'{"model_type": "llama"}'
        info = tarfile.TarInfo("model/config.json")
        info.size = len(config)
        tar.addfile(info, io.BytesIO(config))
        info = tarfile.TarInfo("model/model.safetensors")
        info.size = weights
        tar.addfile(info, _RandomReader(weights, seed))
    return sha256_of(path)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(4 << 20):
            digest.update(block)
    return digest.hexdigest()


def files_under(root: Path) -> Iterator[Path]:
    """Every regular file below ``root`` (not following symlinks)."""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path


# ---- the CLI as a subprocess ----------------------------------------------------------

KORE_MODELS = str(Path(sys.executable).with_name("kore-models"))


def cli_env(url: str, state_dir: Path, api_key: str = API_KEY, **extra: str) -> dict[str, str]:
    """A child environment without the caller's KORE_* variables, pointing at ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KORE_")}
    env.update(
        KORE_HOST=url,
        KORE_API_KEY=api_key,
        KORE_STATE_DIR=str(state_dir),
        KORE_POLL_INITIAL="0.1",
        KORE_POLL_MIN_INTERVAL="0.1",
        KORE_POLL_MAX="0.3",
        PYTHONWARNINGS="default",  # show ResourceWarning / "never awaited" if any
    )
    env.update(extra)
    return env


def run_cli(
    *args: str,
    env: dict[str, str],
    timeout: float = 60,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``kore-models ARGS`` to completion."""
    return subprocess.run(
        [KORE_MODELS, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=cwd,
    )


def start_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[str]:
    """``kore-models ARGS`` in the background (stdout and stderr piped)."""
    return subprocess.Popen(
        [KORE_MODELS, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


BAD_STDERR = ("Traceback", "Unclosed", "Task was destroyed", "never awaited", "ResourceWarning")


def assert_one_clean_error_line(stderr: str, *fragments: str) -> str:
    """stderr ends with exactly one ``error:`` line holding ``fragments``, and no traceback."""
    for bad in BAD_STDERR:
        assert bad not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# ---- a scriptable fake API server -----------------------------------------------------

Responder = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request the fake server received."""

    method: str
    raw_path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeServer:
    """A tiny aiohttp app on 127.0.0.1 in its own thread and loop.

    ``respond`` (an async function of the request) answers every request; ``seen``
    records each request with its raw (still percent-encoded) path.
    """

    respond: Responder
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.content.read(1 << 20)
        self.seen.append(
            Seen(
                request.method,
                request.raw_path,
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        return await self.respond(request)

    def __enter__(self) -> FakeServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = self._runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(serve())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            assert self._runner is not None
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-server", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the fake server did not start"
        if failure:
            raise failure[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def paths(self) -> list[str]:
        return [f"{s.method} {s.raw_path}" for s in self.seen]


def json_response(data: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data), content_type="application/json", headers=headers
    )
