"""The console script as a real process: exit codes, Ctrl-C (130, resumable), and the demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from click.testing import Result

from tests.cli.cli_support import control, wait_for_event

RunCli = Callable[..., Result]
MakeTar = Callable[..., Path]
EMULATOR_KEY = "kg-emulator-local-key"


class Emulator(Protocol):
    url: str


MAIN = "from kore_models.cli import main; main()"


def child_env(emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KORE_")}
    env.update(
        KORE_HOST=emulator.url,
        KORE_STATE_DIR=str(tmp_path / "state"),
        PYTHONWARNINGS="default",  # show ResourceWarning / "never awaited" if any
    )
    return env


def test_console_script_exit_codes(emulator: Emulator, tmp_path: Path) -> None:
    env = child_env(emulator, tmp_path)

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", MAIN, *args],
            input=stdin, capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip

    assert run("--version").returncode == 0
    assert run("status").returncode == 2
    assert run("--nope").returncode == 2
    found = run("--api-key-stdin", "status", "ds-missing", stdin=EMULATOR_KEY + "\n")
    assert found.returncode == 4
    assert found.stdout == ""
    assert found.stderr.startswith("error: HTTP 404")
    assert EMULATOR_KEY not in found.stderr


def test_ctrl_c_exits_130_at_once_and_resumes(
    slow_emulator: Emulator, make_tar: MakeTar, tmp_path: Path
) -> None:
    path = make_tar("big.tar", size=6_000_000)
    env = {**child_env(slow_emulator, tmp_path), "KORE_API_KEY": EMULATOR_KEY}
    args = [sys.executable, "-c", MAIN, "import", str(path), "--chunk-size", "256KiB"]
    process = subprocess.Popen(
        [*args, "--concurrency", "2", "--progress", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    wait_for_event(process.stderr, lambda e: e.get("chunks", 0) >= 2)
    before = control(slow_emulator.url, "/counters")["chunks_received"]
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)  # a hang guard; promptness is shown below
    assert process.returncode == 130, err
    assert control(slow_emulator.url, "/counters")["chunks_received"] - before <= 2
    assert json.loads(err.splitlines()[-1]) == {
        "event": "error",
        "message": "interrupted; run the same command again to resume",
        "exitCode": 130,
    }
    for bad in ("Traceback", "Unclosed", "Task was destroyed", "never awaited"):
        assert bad not in err
    assert out == ""

    resumed = subprocess.run(
        [*args, "--concurrency", "8", "--json"], capture_output=True, text=True, env=env,
        timeout=60,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    data = json.loads(resumed.stdout)
    assert data["resumed"] is True
    assert data["chunksResumed"] > 0
    assert data["chunksSent"] + data["chunksResumed"] == data["chunks"]


def test_demo_runs_end_to_end(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(
        "demo", "--size", "3MiB", "--job-seconds", "0.1", "--dir", str(tmp_path), "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert [s["name"] for s in data["steps"]] == [
        "generate", "start emulator", "import", "export", "verify", "deploy", "undeploy",
    ]  # fmt: skip
    assert data["archiveBytes"] > 3 * 1024 * 1024
    assert "6/6 undeploying" in result.stderr
