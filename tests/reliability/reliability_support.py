"""Helpers for reliability tests: an emulator in its own process, and test files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

API_KEY = "kg-reliability-test-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmulatorProcess:
    """``python -m kore_models.emulator`` on a fixed loopback port and data dir."""

    def __init__(self, data_dir: Path, port: int, *extra: str):
        self.data_dir = data_dir
        self.port = port
        self.extra = extra
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kore_models.emulator",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--api-key",
                API_KEY,
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening on" in line, f"emulator did not start: {line!r}"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


def make_model_file(path: Path, size: int) -> Path:
    """A file of ``size`` random bytes (written in 1 MiB blocks)."""
    with open(path, "wb") as handle:
        left = size
        while left:
            block = os.urandom(min(left, 1 << 20))
            handle.write(block)
            left -= len(block)
    return path
