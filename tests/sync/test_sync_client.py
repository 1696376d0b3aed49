"""SyncKoreClient in a plain script, inside a running event loop, on Ctrl-C; RichProgress."""

from __future__ import annotations

import inspect
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from rich.console import Console

from kore_models import RichProgress, SyncKoreClient
from kore_models.testing import KoreEmulator, client_options, model_archive
from kore_models.transfer.progress import Phase, ProgressEvent, ProgressTracker

SCRIPT = """
import json, sys
from kore_models import SyncKoreClient

host, key, state, source, dest = sys.argv[1:]
with SyncKoreClient(host=host, api_key=key, state_dir=state, poll_initial=0.05,
                    poll_min_interval=0.05) as kore:
    result = kore.models.import_file(source, chunk_size=65536)
    job = kore.dock_status.get(result.dock_status_id)
    exported = kore.models.export_to_file(result.model_id, dest)
    print(json.dumps({"status": job.status, "model": result.model_id,
                      "bytes": exported.bytes, "repr": repr(kore)}))
"""


def test_a_plain_script(kore_emulator: KoreEmulator, tmp_path: Path) -> None:
    source = model_archive(tmp_path / "m.tar", 300_000)
    dest = tmp_path / "out.tar"
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    args = [kore_emulator.url, kore_emulator.api_key, str(tmp_path / "state"), str(source)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KORE_")}
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(script), *args, str(dest)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "SUCCESS"
    assert data["bytes"] == source.stat().st_size
    assert dest.read_bytes() == source.read_bytes()
    assert data["repr"] == "SyncKoreClient(open)"


async def test_inside_a_running_event_loop_like_jupyter(
    kore_emulator: KoreEmulator, tmp_path: Path
) -> None:
    source = model_archive(tmp_path / "m.tar", 200_000)
    options = client_options(kore_emulator, state_dir=tmp_path / "state")
    # a loop is running in this thread (as in a notebook cell); asyncio.run would refuse
    with SyncKoreClient(**options) as kore:
        result = kore.models.import_file(source, chunk_size=65536)
        docs = list(kore.dock_status.watch(result.dock_status_id))
    assert result.status == "SUCCESS"
    assert docs[-1].status == "SUCCESS"
    assert threading.current_thread() is threading.main_thread()


def test_every_async_method_is_mirrored_as_a_blocking_one(
    kore_sync_client: SyncKoreClient,
) -> None:
    for namespace in ("files", "models", "dock_status"):
        sync_namespace = getattr(kore_sync_client, namespace)
        async_namespace = sync_namespace._target
        for name, member in inspect.getmembers(type(async_namespace)):
            if name.startswith("_") or not callable(member):
                continue
            blocking = getattr(sync_namespace, name)
            assert callable(blocking)
            assert not inspect.iscoroutinefunction(blocking), f"{namespace}.{name}"
    assert kore_sync_client.settings.host.startswith("http://127.0.0.1:")
    # tab completion in a notebook sees the namespaces and their methods
    assert {"files", "models", "dock_status", "close"} <= set(dir(kore_sync_client))
    assert "import_file" in dir(kore_sync_client.models)


def test_an_unknown_job_raises_the_same_error_as_the_async_client(
    kore_sync_client: SyncKoreClient,
) -> None:
    from kore_models import NotFoundError

    with pytest.raises(NotFoundError):
        kore_sync_client.dock_status.get("ds-missing")


def test_using_it_unopened_says_how(tmp_path: Path) -> None:
    client = SyncKoreClient(host="http://127.0.0.1:9", api_key="kg-x")
    with pytest.raises(RuntimeError, match="use it as `with SyncKoreClient"):
        _ = client.models


def test_ctrl_c_cancels_the_running_import_and_keeps_its_journal(
    kore_emulator: KoreEmulator, tmp_path: Path
) -> None:
    kore_emulator.configure(throughput_bytes_per_second=1_000_000)
    source = model_archive(tmp_path / "m.tar", 4_000_000)
    options = client_options(kore_emulator, state_dir=tmp_path / "state")
    interrupted = threading.Event()

    def on_progress(event: ProgressEvent) -> None:  # runs on the client's thread
        if event.chunks_done >= 2 and not interrupted.is_set():
            interrupted.set()
            # Ctrl-C, delivered (as the kernel may) to a thread other than the caller's
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt), SyncKoreClient(**options) as kore:
        kore.models.import_file(source, chunk_size=128 * 1024, on_progress=on_progress)
    assert interrupted.is_set()
    assert len(list((tmp_path / "state" / "journals").glob("*.json"))) == 1
    assert kore_emulator.counters()["requests"]["complete"] == 0

    with SyncKoreClient(**options) as kore:
        result = kore.models.import_file(source, chunk_size=128 * 1024)
    assert result.resumed
    assert result.chunks_resumed >= 2


def test_rich_progress_counts_only_the_bytes_of_this_run() -> None:
    console = Console(file=io.StringIO(), width=160, force_terminal=False, record=True)
    now = [0.0]
    bars = RichProgress(console, label="m.tar")
    gib = 1024**3
    tracker = ProgressTracker(bars, bytes_total=16 * gib, chunks_total=1024, clock=lambda: now[0])
    with bars:
        tracker.phase(Phase.UPLOADING, bytes_done=15 * gib, chunks_done=960)  # resumed
        for _ in range(20):
            now[0] += 0.5
            tracker.add_bytes(8 * 1024 * 1024)  # 16 MiB/s
        assert 15 * 1024**2 < tracker.event.throughput < 17 * 1024**2
        console.print(bars.progress.get_renderable())
        tracker.phase(Phase.DONE)
    text = console.export_text()
    assert "16.0 MiB/s" in text
    assert "GiB" in text
    assert "GB/s" not in text
