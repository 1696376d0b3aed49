"""The command line: listening line, ready file, banner, key masking, busy port, --help."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kore_models.emulator.command import SIZE, emulator_command
from kore_models.emulator.config import DEFAULT_API_KEY


def test_cli_starts_prints_one_line_and_stops(tmp_path: Path) -> None:
    ready = tmp_path / "ready.txt"
    key = "kg-secret-cli-key-123456"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kore_models.emulator", "--port", "0", "--api-key", key,
         "--data-dir", str(tmp_path / "d"), "--ready-file", str(ready), "--job-seconds", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("kore-models emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert ready.read_text().strip() == url
        with urllib.request.urlopen(f"{url}/_emulator/config") as resp:  # noqa: S310
            cfg = json.load(resp)
        assert cfg["job_seconds"] == 0
        assert key not in json.dumps(cfg)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert key not in out + err
    assert "export KORE_API_KEY=...  # the key you gave (kg-s…456)" in err
    assert out == ""  # exactly one stdout line, already read


def test_cli_rejects_bad_failure_kinds() -> None:
    result = CliRunner().invoke(emulator_command, ["--failure-kinds", "500,teapot"])
    assert result.exit_code != 0
    assert "failure-kinds" in result.output


def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kore_models.emulator", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def test_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _start("--port", str(port), "--data-dir", str(tmp_path))
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert out == ""
    assert err.splitlines() == [
        f"kore-models emulator: cannot listen on 127.0.0.1:{port}: address already in use"
        " (choose another --port, or --port 0 for any free one)"
    ]


def test_banner_gives_ready_to_paste_lines_for_the_dev_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KORE_EMULATOR_")}
    proc = _start("--port", "0", "--data-dir", str(tmp_path), env=env)
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        lines = [proc.stderr.readline().strip() for _ in range(4)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert f"export KORE_HOST={url}" in lines
    assert f"export KORE_API_KEY={DEFAULT_API_KEY}" in lines


def test_every_option_has_help_and_an_example() -> None:
    epilog = emulator_command.epilog or ""
    options = [p for p in emulator_command.params if isinstance(p, click.Option)]
    assert len(options) >= 25
    for option in options:
        assert option.help, option.name
        long_name = max(option.opts, key=len)
        assert f"kore-models emulator {long_name} " in epilog or f" {long_name} " in epilog, (
            long_name
        )
    shown = CliRunner().invoke(emulator_command, ["--help"], terminal_width=100).output
    assert "--total-throughput" in shown
    assert "Examples (one per option):" in shown


@pytest.mark.parametrize(
    "args",
    [["--max-data-size", "lots"], ["--throughput", "fast"], ["--port", "70000"],
     ["--max-chunks-in-flight", "0"], ["--control-token", "short"]],
)  # fmt: skip
def test_bad_options_are_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(emulator_command, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_sizes_accept_units() -> None:
    assert SIZE.convert("20MB/s", None, None) == 20_000_000
    assert SIZE.convert("16MiB", None, None) == 16 * 1024 * 1024
    assert SIZE.convert("1048576", None, None) == 1048576
