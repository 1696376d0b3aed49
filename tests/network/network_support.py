"""Real network parts for the network tests: proxy.py, mitmdump, a recording TCP relay, files."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kore_models import KoreClient
from kore_models.emulator import RunningEmulator

KEY = "kg-network-test-key-0123456789"
ClientFactory = Callable[..., KoreClient]
"""``clients(emu_or_url, **settings)``: a client bound to an emulator, closed at teardown."""
PROXY_PASSWORD = "pr0xy-Pa55word-xyz"
REPO = Path(__file__).resolve().parents[2]
NETWORK_ENV = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_model(folder: Path, size: int, *, seed: int = 1) -> Path:
    """A ``size``-byte file that starts like a tar archive (what the emulator validates)."""
    import io
    import tarfile

    info = tarfile.TarInfo("model/weights.bin")
    info.size = size - 1024
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    data = header + random.Random(seed).randbytes(size - len(header))
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert archive.next() is not None
    path = folder / f"model-{seed}-{size}.tar"
    path.write_bytes(data)
    return path


def closed_port() -> int:
    """A loopback port nothing listens on (it was bound a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, what: str, *, seconds: float = 30.0) -> Any:
    """Poll ``predicate()`` (a process coming up) until it returns something truthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class ProxyPy:
    """``proxy.py`` (a maintained forward proxy from PyPI) on a free loopback port.

    Its access log (one ``server.access_log`` line per request or tunnel) proves what went
    through it.
    """

    def __init__(self, folder: Path, *, basic_auth: str | None = None) -> None:
        self.folder = folder
        self.basic_auth = basic_auth
        self.port_file = folder / "proxy.port"
        self.log_file = folder / "proxy.log"
        self.request_log = folder / "requests.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> ProxyPy:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "proxy",
            "--hostname",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(self.port_file),
            "--num-workers",
            "1",
            "--num-acceptors",
            "1",
            "--log-level",
            "i",
            "--log-file",
            str(self.log_file),
            "--plugins",
            "proxy_request_log.RequestLog",
        ]
        if self.basic_auth:
            command += ["--basic-auth", self.basic_auth]
        env = {
            **os.environ,
            "PYTHONPATH": str(Path(__file__).parent),
            "KORE_PROXY_REQUEST_LOG": str(self.request_log),
        }
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.folder,
            env=env,
            start_new_session=True,  # its acceptor processes share this group: stop() ends all
        )

        def port() -> int:
            assert self.proc is not None
            assert self.proc.poll() is None, "proxy.py exited"
            text = self.port_file.read_text().strip() if self.port_file.exists() else ""
            return int(text) if text.isdigit() else 0

        self.port = wait_for(port, "proxy.py to listen")
        return self

    def url(self, credentials: str | None = None) -> str:
        auth = f"{credentials}@" if credentials else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def requests(self) -> list[str]:
        """``CONNECT host:port`` or ``METHOD host:port/path``, one per request it carried."""
        text = self.request_log.read_text() if self.request_log.exists() else ""
        return text.splitlines()

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


def find_tool(name: str) -> str:
    """A tool from the tools venv (``make .venv-tools``), $PATH, or skip/fail clearly."""
    for candidate in (REPO / ".venv-tools" / "bin" / name, Path(sys.prefix) / "bin" / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} not found: run `make tools` (it installs mitmproxy in .venv-tools)"
    if os.environ.get("KORE_REQUIRE_TOOLS"):
        pytest.fail(message + " (KORE_REQUIRE_TOOLS is set, so this is not skipped)")
    pytest.skip(message)


class Mitmdump:
    """mitmproxy's ``mitmdump``: a TLS-inspecting proxy with its own CA, on loopback."""

    def __init__(self, folder: Path, upstream_ca: Path) -> None:
        self.folder = folder
        self.upstream_ca = upstream_ca
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.output: list[str] = []

    @property
    def ca(self) -> Path:
        """The CA mitmdump signs its forged certificates with."""
        return self.folder / "conf" / "mitmproxy-ca-cert.pem"

    def start(self) -> Mitmdump:
        self.proc = subprocess.Popen(
            [
                find_tool("mitmdump"),
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                "0",
                "--set",
                f"confdir={self.folder / 'conf'}",
                "--set",
                f"ssl_verify_upstream_trusted_ca={self.upstream_ca}",
                "--set",
                "stream_large_bodies=256k",
                "--set",
                "flow_detail=1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            match = re.search(r"listening at 127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                return self
        self.stop()
        raise AssertionError("mitmdump did not start: " + "".join(self.output))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> str:
        """Stop it and return everything it printed (one line per flow)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
            out, _ = self.proc.communicate(timeout=20)
            self.output.append(out or "")
            self.proc = None
        return "".join(self.output)


class Relay:
    """A TCP relay on loopback that records the bytes clients send and counts connections.

    On exit it closes every connection it still holds and waits for its handlers, so no
    socket outlives the test.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sent = bytearray()
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Relay:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.add(up_writer)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, record: bool) -> None:
            try:
                while block := await src.read(65536):
                    if record:
                        self.sent += block
                    dst.write(block)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))
        finally:
            for end in (writer, up_writer):
                end.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await end.wait_closed()
                self._writers.discard(end)


class EmuControl:
    """The emulator's ``/_emulator`` control API, over HTTPS when the emulator has TLS."""

    def __init__(self, emu: RunningEmulator, ca: Path | None = None) -> None:
        self.emu = emu
        ca = ca or emu.ca_file
        context = ssl.create_default_context(cafile=str(ca)) if ca else None
        self.ssl: ssl.SSLContext | bool = context or True

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                method, f"{self.emu.url}/_emulator{path}", json=body, ssl=self.ssl
            ) as response,
        ):
            assert response.status == 200, await response.text()
            return await response.json()

    async def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/counters")
        return result

    async def configure(self, **changes: Any) -> None:
        await self.call("PATCH", "/config", changes)

    async def stored_sha256(self, model_id: str) -> str:
        doc = await self.call("GET", f"/models/{model_id}")
        return str(doc["sha256"])


class EmulatorProcess:
    """``python -m kore_models.emulator`` in its own process (for CLI tests), on a free port.

    Its one stdout line gives the URL; its stderr (the banner) is kept in ``stderr_path``.
    """

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.extra = extra
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.stderr_path = data_dir.with_name(data_dir.name + ".stderr")

    def start(self) -> EmulatorProcess:
        command = [sys.executable, "-m", "kore_models.emulator", "--port", "0"]
        command += ["--data-dir", str(self.data_dir), "--api-key", KEY, "--job-seconds", "0"]
        with open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen(
                [*command, *self.extra], stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (https?://127\.0\.0\.1:\d+)", line)
        if match is None:
            self.stop()
            raise AssertionError(f"the emulator did not start: {line!r}")
        self.url = match.group(1)
        return self

    def banner(self) -> str:
        """What it printed on stderr at start (waits for the paste block's host line)."""
        return str(
            wait_for(
                lambda: (text := self.stderr_path.read_text()) and "KORE_HOST" in text and text,
                "the emulator's banner",
            )
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.communicate(timeout=20)
            self.proc = None
