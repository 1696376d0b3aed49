"""The emulator in a child process on a free loopback port: start, control, restart, stop.

Tests, benchmarks and users' own tooling share this launcher. The child binds port 0
itself (no free-port race), and the launcher learns the URL from the ready file the
child writes once it listens, waiting on the child's first output line rather than a
timer. A restart reuses the port the first start was given.
"""

from __future__ import annotations

import http.client
import json
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = ["EmulatorProcess", "EmulatorStartError"]

DEFAULT_TEST_KEY = "kg-emulator-process-key-0123456789"


class EmulatorStartError(RuntimeError):
    """The emulator process exited or stayed silent instead of listening."""


class EmulatorProcess:
    """``python -m kore_models.emulator`` on 127.0.0.1 in its own process.

    ``args`` are extra command-line flags (``"--throughput", "1000000"``). ``stderr_path``
    keeps the child's stderr (else discarded); ``stdout_text`` collects its stdout.
    """

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        api_key: str = DEFAULT_TEST_KEY,
        stderr_path: Path | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.args = args
        self.api_key = api_key
        self.stderr_path = stderr_path
        self.start_timeout = start_timeout
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.stdout_text = ""

    def __repr__(self) -> str:
        return f"EmulatorProcess(url={self.url!r}, pid={self.proc.pid if self.proc else None})"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The child's process id."""
        if self.proc is None:
            raise EmulatorStartError("the emulator is not running")
        return self.proc.pid

    @property
    def api(self) -> str:
        """``{url}/api/public``."""
        return f"{self.url}/api/public"

    def start(self) -> None:
        """Start the child (on the port of an earlier start, if any) and wait until it listens."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ready = Path(tempfile.mkdtemp(prefix="ready-", dir=self.data_dir)) / "url"
        argv = [sys.executable, "-m", "kore_models.emulator", "--bind", "127.0.0.1"]
        argv += ["--port", str(self.port), "--ready-file", str(ready)]
        argv += ["--data-dir", str(self.data_dir), "--api-key", self.api_key, *self.args]
        stderr: IO[str] | int = subprocess.DEVNULL
        if self.stderr_path is not None:
            stderr = open(self.stderr_path, "a")  # noqa: SIM115  # closed right after Popen
        try:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True)
        finally:
            if not isinstance(stderr, int):
                stderr.close()
        self._await_ready(ready)

    def _await_ready(self, ready: Path) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        # The child prints its first line only after it wrote the ready file.
        readable, _, _ = select.select([self.proc.stdout], [], [], self.start_timeout)
        line = self.proc.stdout.readline() if readable else ""
        self.stdout_text += line
        if not ready.exists():
            self.kill()
            raise EmulatorStartError(f"the emulator did not start: {line.strip()!r}")
        self.url = ready.read_text(encoding="utf-8").strip()
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended within 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._collect()

    def kill(self) -> None:
        """SIGKILL at once (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._collect()

    def restart(self) -> None:
        """Kill the child and start a new one on the same port and data dir."""
        self.kill()
        self.start()

    def _collect(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.stdout_text += self.proc.stdout.read()
            self.proc.stdout.close()
        self.proc = None

    # the control API (loopback, no key) -------------------------------------------------
    def control(self, method: str, path: str, body: Any = None) -> Any:
        """``/_emulator{path}``: the JSON reply; anything but 200 raises RuntimeError."""
        host_port = self.url.split("://", 1)[1]
        conn = http.client.HTTPConnection(host_port, timeout=30)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            conn.request(method, f"/_emulator{path}", body=payload, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"{method} /_emulator{path}: {response.status} {text}")
        return json.loads(text) if text else None

    def configure(self, **fields: Any) -> Any:
        """Change run-time options (PATCH /_emulator/config)."""
        return self.control("PATCH", "/config", fields)

    def counters(self) -> dict[str, Any]:
        """The request and byte counters."""
        return dict(self.control("GET", "/counters"))

    def reset_counters(self) -> None:
        """Zero the counters."""
        self.control("POST", "/counters/reset", {})

    def script(self, *faults: dict[str, Any]) -> None:
        """Queue scripted faults."""
        self.control("POST", "/script", {"faults": list(faults)})

    def model(self, model_id: str) -> dict[str, Any]:
        """The stored model's record (size, sha256, ...)."""
        return dict(self.control("GET", f"/models/{model_id}"))
