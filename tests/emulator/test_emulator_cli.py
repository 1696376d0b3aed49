"""Contract tests: the command line (listening line, ready file, key masking, SIGTERM)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from kore_models.emulator.command import emulator_command


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
    assert out == ""  # exactly one stdout line, already read


def test_cli_rejects_bad_failure_kinds() -> None:
    result = CliRunner().invoke(emulator_command, ["--failure-kinds", "500,teapot"])
    assert result.exit_code != 0
    assert "failure-kinds" in result.output
