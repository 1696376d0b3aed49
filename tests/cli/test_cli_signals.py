"""Real processes: SIGTERM (143, journal kept, JSON error), a resume that says so, closed pipes."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from tests.cli.cli_support import child_env, control, journals, run, spawn, wait_for_event

MakeTar = Callable[..., Path]


class Emulator(Protocol):
    url: str


def test_sigterm_stops_at_once_keeps_the_journal_and_the_rerun_says_it_resumes(
    slow_emulator: Emulator, make_tar: MakeTar, tmp_path: Path
) -> None:
    path = make_tar("big.tar", size=6_000_000)
    env = child_env(slow_emulator.url, tmp_path)
    args = ["import", str(path), "--chunk-size", "256KiB", "--concurrency", "2", "--json"]
    process = spawn(
        [*args, "--progress", "json"], env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    wait_for_event(process.stderr, lambda e: e.get("chunks", 0) >= 2)

    before = control(slow_emulator.url, "/counters")["chunks_received"]
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)  # a hang guard; promptness is shown below
    assert process.returncode == 143, err
    # it stopped at once: no chunk was started after the signal (at most the 2 in flight
    # were still counted), although the 1 MB/s upload had more than 20 chunks to go
    after = control(slow_emulator.url, "/counters")["chunks_received"]
    assert after - before <= 2
    assert json.loads(out)["error"] == {
        "type": "Terminated",
        "message": "terminated (SIGTERM)",
        "exitCode": 143,
    }
    events = [json.loads(line) for line in err.splitlines()]  # --progress json: JSON only
    assert events[-1] == {
        "event": "error",
        "message": "terminated (SIGTERM); run the same command again to resume",
        "exitCode": 143,
    }
    for bad in ("Traceback", "Unclosed", "Task was destroyed", "never awaited"):
        assert bad not in err
    assert len(journals(tmp_path)) == 1

    # a different chunk size: the journal's size is kept, with a notice; speed counts this run
    again = run(["import", str(path), "--chunk-size", "1MiB", "--json"], env)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["resumed"] is True
    assert data["chunks"] == -(-path.stat().st_size // (256 * 1024))
    assert data["chunksSent"] + data["chunksResumed"] == data["chunks"]
    assert 0 < data["bytesSent"] < data["bytes"]
    assert "chunk size 1 MiB ignored: the upload being resumed uses 256 KiB" in again.stderr
    resumed = data["chunksResumed"]
    assert f"resuming: {resumed} of {data['chunks']} chunks already on the server" in again.stderr
    assert "session expires" in again.stderr
    assert journals(tmp_path) == []


def test_a_closed_stdout_and_stderr_do_not_stop_the_import(
    slow_emulator: Emulator, make_tar: MakeTar, tmp_path: Path
) -> None:
    path = make_tar("piped.tar", size=2_000_000)
    env = child_env(slow_emulator.url, tmp_path)
    process = spawn(
        ["import", str(path), "--chunk-size", "128KiB", "--progress", "json", "--json"],
        env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    wait_for_event(process.stderr, lambda e: e.get("chunks", 0) >= 1)
    # the reader goes away (like `| head -1` ending) while chunks are still being sent
    process.stdout.close()
    process.stderr.close()

    assert process.wait(timeout=60) == 0
    # the import finished: no journal left, and the server completed it once, whole
    assert journals(tmp_path) == []
    counters = control(slow_emulator.url, "/counters")
    assert counters["requests"]["complete"] == 1
    assert counters["bytes_received"] >= path.stat().st_size


def test_sighup_from_a_closed_terminal_does_not_stop_the_import(
    slow_emulator: Emulator, make_tar: MakeTar, tmp_path: Path
) -> None:
    path = make_tar("hup.tar", size=1_500_000)
    env = child_env(slow_emulator.url, tmp_path)
    process = spawn(
        ["import", str(path), "--chunk-size", "128KiB", "--progress", "json", "--json"],
        env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    wait_for_event(process.stderr, lambda e: e.get("chunks", 0) >= 1)
    process.send_signal(signal.SIGHUP)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert json.loads(out)["status"] == "SUCCESS"
    assert control(slow_emulator.url, "/counters")["requests"]["complete"] == 1
