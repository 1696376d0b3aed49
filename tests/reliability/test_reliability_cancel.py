"""Ctrl-C (SIGINT) in each phase: exit 130 within 2 s, no asyncio/aiohttp warnings, and the
next run resumes from what the interrupted one left (journal or ``.part`` file).

tests/cli/test_cli_process.py::test_ctrl_c_exits_130_quickly_and_resumes covers SIGINT
during the upload (130 in < 2 s, no "Unclosed"/"Task was destroyed", a resumed re-run).
This module adds what it does not check: that the journal left by SIGINT never claims a
chunk the server did not receive and that the re-run sends exactly the rest, and SIGINT
while waiting for the server's job and while downloading an export.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from tests.support.reliability import (
    BAD_STDERR,
    EmulatorProcess,
    StartEmulator,
    cli_env,
    make_model_tar,
    run_cli,
    sha256_of,
    start_cli,
    wait_until,
)

MiB = 1024 * 1024


def interrupt(process: subprocess.Popen[str]) -> tuple[str, str, float]:
    """SIGINT, then (stdout, stderr, seconds until the process was gone)."""
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    return out, err, time.monotonic() - sent


def assert_clean_interrupt(process: subprocess.Popen[str], err: str, seconds: float) -> None:
    assert process.returncode == 130, err
    assert seconds < 2.0, f"took {seconds:.2f}s to stop"
    assert "error: interrupted" in err
    for bad in BAD_STDERR:
        assert bad not in err, err


def only_journal(state_dir: Path) -> dict[str, object]:
    (path,) = (state_dir / "journals").glob("*.json")
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def test_sigint_mid_upload_leaves_a_truthful_journal_and_the_rerun_sends_the_rest(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emu = start_emulator("--throughput", "1000000")
    source = tmp_path / "model.tar"
    expected = make_model_tar(source, 6 * MiB, seed=11)
    total = -(-source.stat().st_size // (256 * 1024))
    env = cli_env(emu.url, tmp_path / "state")
    args = ["import", str(source), "--chunk-size", "256KiB", "--concurrency", "3", "--json"]
    process = start_cli(*args, env=env)
    wait_until(lambda: emu.counters()["chunks_received"] >= 4, timeout=60)
    out, err, seconds = interrupt(process)
    assert_clean_interrupt(process, err, seconds)
    assert json.loads(out)["error"]["exitCode"] == 130

    wait_until(lambda: emu.counters()["concurrent_chunk_uploads"] == 0, timeout=30)
    counters = emu.counters()
    (session_id,) = counters["chunk_numbers_received"]
    received = set(counters["chunk_numbers_received"][session_id])
    journal = only_journal(tmp_path / "state")
    acknowledged = set(journal["acknowledged"])  # type: ignore[call-overload]
    assert journal["session_id"] == session_id
    assert acknowledged, "acknowledged chunks were saved on the way out"
    assert acknowledged <= received, "the journal never claims a chunk the server lacks"

    emu.configure(throughput_bytes_per_second=None)
    emu.reset_counters()
    rerun = run_cli(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["resumed"] is True
    sent = emu.counters()["chunk_numbers_received"][session_id]
    assert sorted(sent) == sorted(set(range(total)) - acknowledged)
    assert emu.model(result["modelId"])["sha256"] == expected


def test_sigint_while_waiting_for_the_server_job_resumes_the_wait(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emu = start_emulator("--job-seconds", "600")
    source = tmp_path / "model.tar"
    make_model_tar(source, 2 * MiB, seed=12)
    env = cli_env(emu.url, tmp_path / "state")
    args = ["import", str(source), "--chunk-size", "512KiB", "--json"]
    process = start_cli(*args, env=env)
    wait_until(lambda: emu.counters()["requests"]["dock_status"] >= 2, timeout=60)
    _, err, seconds = interrupt(process)
    assert_clean_interrupt(process, err, seconds)
    journal = only_journal(tmp_path / "state")
    assert journal["dock_status_id"], "the job id is kept for the re-run"

    emu.control("POST", "/clock", {"advance_seconds": 601})  # the job is done now
    emu.reset_counters()
    rerun = run_cli(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["status"] == "SUCCESS"
    assert result["dockStatusId"] == journal["dock_status_id"]
    assert result["chunksSent"] == 0
    requests = emu.counters()["requests"]
    assert requests["start"] == requests["chunk"] == requests["complete"] == 0
    assert not list((tmp_path / "state" / "journals").glob("*.json"))


def _imported(emu: EmulatorProcess, tmp_path: Path, size: int) -> tuple[str, str]:
    source = tmp_path / "model.tar"
    digest = make_model_tar(source, size, seed=13)
    result = run_cli("import", str(source), "--json", env=cli_env(emu.url, tmp_path / "state"))
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["modelId"]), digest


def test_sigint_during_an_export_download_keeps_the_part_file_for_the_rerun(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    emu = start_emulator()
    model_id, digest = _imported(emu, tmp_path, 4 * MiB)
    emu.configure(throughput_bytes_per_second=1_000_000)
    dest = tmp_path / "out" / "model.tar"
    part = dest.with_name("model.tar.part")
    env = cli_env(emu.url, tmp_path / "state")
    args = ["export", model_id, "-o", str(dest), "--json"]
    process = start_cli(*args, env=env)
    wait_until(lambda: part.exists() and part.stat().st_size >= MiB, timeout=60)
    _, err, seconds = interrupt(process)
    assert_clean_interrupt(process, err, seconds)
    assert not dest.exists()
    kept = part.stat().st_size
    assert kept > 0

    emu.configure(throughput_bytes_per_second=None)
    rerun = run_cli(*args, env=env)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["resumedFrom"] == kept
    assert sha256_of(dest) == digest
    assert not part.exists()
