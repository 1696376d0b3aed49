"""Crash and resume: ``kill -9`` the CLI at about half of an import, run it again.

The second run must resume the same session, send only the chunks the server was missing
after the kill (plus at most the ones in flight when it died), and the bytes must match.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.reliability import (
    StartEmulator,
    cli_env,
    make_model_tar,
    run_cli,
    start_cli,
    wait_until,
)

MiB = 1024 * 1024
CONCURRENCY = 4


@dataclass
class CrashFigures:
    size: int
    chunks: int
    received_before_kill: int
    journaled_at_kill: int
    sent_after_restart: int
    resent: int
    first_run_seconds: float
    second_run_seconds: float

    def line(self) -> str:
        return (
            f"{self.size / MiB:.0f} MiB in {self.chunks} chunks: killed after "
            f"{self.received_before_kill} chunks reached the server "
            f"({self.journaled_at_kill} in the journal) at {self.first_run_seconds:.1f}s; "
            f"the re-run sent {self.sent_after_restart} chunks ({self.resent} of them again) "
            f"in {self.second_run_seconds:.1f}s"
        )


def crash_and_resume(
    start_emulator: StartEmulator, tmp_path: Path, *, weights: int, throughput: int
) -> CrashFigures:
    emulator = start_emulator("--throughput", str(throughput))
    source = tmp_path / "model.tar"
    expected = make_model_tar(source, weights, seed=weights)
    size = source.stat().st_size
    total = -(-size // (4 * MiB))
    state_dir = tmp_path / "state"
    env = cli_env(emulator.url, state_dir)
    args = ["import", str(source), "--chunk-size", "4MiB", "--concurrency", str(CONCURRENCY)]

    started = time.monotonic()
    first = start_cli(*args, "--json", env=env)
    try:
        wait_until(
            lambda: (
                emulator.counters()["chunks_received"] >= total // 2 or first.poll() is not None
            ),
            timeout=120,
            what="half of the chunks",
        )
        assert first.poll() is None, "the import ended before it could be killed"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)
        first.communicate(timeout=10)
    first_seconds = time.monotonic() - started
    assert first.returncode == -signal.SIGKILL

    # the server finishes (or drops) what was in flight; then it is a quiet snapshot
    wait_until(lambda: emulator.counters()["concurrent_chunk_uploads"] == 0, timeout=30)
    before = emulator.counters()
    (session_id,) = before["chunk_numbers_received"]
    received = set(before["chunk_numbers_received"][session_id])
    journals = list((state_dir / "journals").glob("*.json"))
    assert len(journals) == 1, journals
    journal = json.loads(journals[0].read_text())
    journaled = set(journal["acknowledged"])
    assert journal["session_id"] == session_id
    # the journal never claims a chunk the server did not get (nothing is lost)
    assert journaled <= received
    assert 0 < len(received) < total
    emulator.reset_counters()

    restarted = time.monotonic()
    second = run_cli(*args, "--json", env=env, timeout=300)
    second_seconds = time.monotonic() - restarted
    assert second.returncode == 0, second.stderr
    assert_no_noise(second.stderr)
    result = json.loads(second.stdout)
    assert result["resumed"] is True
    assert result["status"] == "SUCCESS"
    assert result["sessionId"] == session_id

    after = emulator.counters()
    sent = after["chunk_numbers_received"].get(session_id, [])
    everything = set(range(total))
    missing_after_kill = everything - received
    assert len(sent) == len(set(sent)), f"a chunk was sent twice: {sorted(sent)}"
    assert set(sent) >= missing_after_kill, "a missing chunk was not sent"
    assert set(sent) == everything - journaled, "only the unacknowledged chunks are sent"
    assert len(sent) <= len(missing_after_kill) + CONCURRENCY
    assert after["requests"]["start"] == 0, "the session was resumed, not restarted"
    assert result["chunksSent"] == len(sent)
    assert result["chunksResumed"] == len(journaled)
    assert result["chunks"] == total

    model = emulator.model(result["modelId"])
    assert model["size"] == size
    assert model["sha256"] == expected
    assert not list((state_dir / "journals").glob("*.json")), "the journal is removed at the end"
    return CrashFigures(
        size=size,
        chunks=total,
        received_before_kill=len(received),
        journaled_at_kill=len(journaled),
        sent_after_restart=len(sent),
        resent=len(set(sent) & received),
        first_run_seconds=first_seconds,
        second_run_seconds=second_seconds,
    )


def assert_no_noise(stderr: str) -> None:
    for bad in ("Traceback", "Unclosed", "Task was destroyed", "never awaited"):
        assert bad not in stderr, stderr
    assert "error:" not in stderr, stderr


@pytest.mark.timeout(180)
def test_kill_9_at_half_of_a_64_mib_import_resumes_with_only_the_missing_chunks(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    # 16 chunks of 4 MiB, 4 in flight at 4 MB/s each: about 4 s of upload
    figures = crash_and_resume(
        start_emulator, tmp_path, weights=64 * MiB - 16 * 1024, throughput=4_000_000
    )
    print(f"crash/resume (64 MiB): {figures.line()}")


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_kill_9_at_half_of_a_512_mib_import_resumes_with_only_the_missing_chunks(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    # 128 chunks of 4 MiB, 4 in flight at 24 MB/s each: about 6 s of upload
    figures = crash_and_resume(
        start_emulator, tmp_path, weights=512 * MiB - 16 * 1024, throughput=24_000_000
    )
    print(f"crash/resume (512 MiB): {figures.line()}")


def test_a_crashed_import_with_a_changed_file_starts_afresh(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    """After a kill -9, editing the file makes the journal stale: a fresh session, right bytes."""
    emulator = start_emulator("--throughput", "2000000")
    source = tmp_path / "model.tar"
    make_model_tar(source, 6 * MiB, seed=3)
    state_dir = tmp_path / "state"
    env = cli_env(emulator.url, state_dir)
    args = ["import", str(source), "--chunk-size", "1MiB", "--concurrency", "2", "--json"]
    first = start_cli(*args, env=env)
    try:
        wait_until(lambda: emulator.counters()["chunks_received"] >= 2, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
    assert list((state_dir / "journals").glob("*.json"))
    expected = make_model_tar(source, 6 * MiB, seed=4)  # same size, other bytes
    emulator.configure(throughput_bytes_per_second=None)
    emulator.reset_counters()
    second = run_cli(*args, env=env)
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["resumed"] is False
    assert result["chunksResumed"] == 0
    assert emulator.counters()["requests"]["start"] == 1
    assert emulator.model(result["modelId"])["sha256"] == expected
    assert_no_noise(second.stderr)
