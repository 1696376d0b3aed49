"""Bad state on disk and from the server, and two runs of one import (issue 16, 9-12, 14)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kore_models import (
    ConflictError,
    KoreClient,
    LocalStorageError,
    LockedError,
    ProgressEvent,
    ResponseValidationError,
)
from kore_models.transfer.journal import journal_path
from tests.support.transfer import CHUNK, ClientFactory, EmuControl, FileMaker

JOB = {"dockStatusId": "ds-1", "modelId": "m-1", "status": "SUCCESS"}


class ScriptedApi:
    """An API on loopback whose answers per route a test scripts (the rest succeed)."""

    def __init__(self, session_id: str = "fs-1") -> None:
        self.session_id = session_id
        self.completes: list[int] = []
        self.complete_answers: list[tuple[int, Any]] = []
        self.url = ""

    async def start(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"sessionId": self.session_id, "modelId": "m-1", "expirationDate": "2099-01-01T00:00Z"}
        )

    async def chunk(self, request: web.Request) -> web.Response:
        form = await request.post()
        return web.json_response({"chunkNumber": str(form["chunkNumber"])})

    async def complete(self, request: web.Request) -> web.Response:
        status, body = self.complete_answers.pop(0) if self.complete_answers else (200, JOB)
        self.completes.append(status)
        return web.json_response(body, status=status)

    async def dock_status(self, request: web.Request) -> web.Response:
        return web.json_response(JOB)


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedApi]:
    api = ScriptedApi()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api/public/files/session/start", api.start)
    app.router.add_post("/api/public/files/session/{sid}", api.chunk)
    app.router.add_post("/api/public/files/session/{sid}/complete", api.complete)
    app.router.add_get("/api/public/dock-status/{job}", api.dock_status)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    api.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield api
    await runner.cleanup()


def scripted_client(api: ScriptedApi, tmp_path: Path) -> KoreClient:
    return KoreClient(
        api.url,
        "kg-hostile-state-key-0123456789",
        state_dir=tmp_path / "state",
        retry_sleeps=False,
        chunk_size=CHUNK,
        poll_initial=0.01,
        poll_min_interval=0.01,
    )


COMPLETING = {
    "errors": [{"code": "SESSION_COMPLETING", "msg": "upload session is being completed"}]
}


async def test_a_complete_still_in_progress_is_waited_out_and_the_job_recovered(
    scripted: ScriptedApi, make_file: FileMaker, tmp_path: Path
) -> None:
    scripted.complete_answers = [(409, COMPLETING), (409, COMPLETING)]
    async with scripted_client(scripted, tmp_path) as kore:
        result = await kore.models.import_file(make_file(2 * CHUNK))
    assert result.status == "SUCCESS"
    assert result.dock_status_id == "ds-1"
    assert scripted.completes == [409, 409, 200]


async def test_a_conflict_that_is_not_a_completion_still_fails(
    scripted: ScriptedApi, make_file: FileMaker, tmp_path: Path
) -> None:
    other = {"errors": [{"code": "MODEL_LOCKED", "msg": "the model is locked"}]}
    scripted.complete_answers = [(409, other)]
    async with scripted_client(scripted, tmp_path) as kore:
        with pytest.raises(ConflictError, match="locked"):
            await kore.models.import_file(make_file(2 * CHUNK))
    assert scripted.completes == [409]


@pytest.mark.parametrize("session_id", ["../../etc", "a/b", "..", "x" * 300, "tab\there"])
async def test_a_session_id_that_is_no_path_segment_is_refused_and_not_kept(
    scripted: ScriptedApi, make_file: FileMaker, tmp_path: Path, session_id: str
) -> None:
    scripted.session_id = session_id
    async with scripted_client(scripted, tmp_path) as kore:
        with pytest.raises(ResponseValidationError, match=r"path segment|longer than"):
            await kore.models.import_file(make_file(2 * CHUNK))
    assert not list((tmp_path / "state" / "journals").glob("*.json"))


POISON = [
    pytest.param(b'{"version": 1, "chunk_size": Infinity}', id="infinity"),
    pytest.param(b'{"version": 1, "total_chunks": ' + b"9" * 5000 + b"}", id="huge-number"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-nesting"),
    pytest.param(b'{"version": 1, "chunk_size": 1e999}', id="overflow"),
    pytest.param(b"\xff\xfe not utf-8", id="not-utf8"),
]


@pytest.mark.parametrize("poison", POISON)
async def test_a_journal_python_cannot_read_is_set_aside_and_the_import_runs(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker, tmp_path: Path, poison: bytes
) -> None:
    kore = clients()
    path = make_file(3 * CHUNK)
    journal = journal_path(tmp_path / "state", kore.settings.host, path)
    journal.parent.mkdir(parents=True)
    journal.write_bytes(poison)
    result = await kore.models.import_file(path)
    await ctl.assert_stored(result.model_id, path)
    assert journal.with_suffix(".corrupt").exists()
    assert not journal.exists()


async def test_a_journal_holding_an_unsafe_session_id_is_set_aside(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker, tmp_path: Path
) -> None:
    kore = clients()
    path = make_file(3 * CHUNK)
    first = await kore.models.import_file(path, wait=False)
    journal = journal_path(tmp_path / "state", kore.settings.host, path)
    # an older version could have kept a hostile id: every later run used to fail on it
    stat = path.stat()
    record = {
        "version": 1, "host": kore.settings.host, "file_path": str(path.resolve()),
        "fingerprint": {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                        "sampled_sha256": "0" * 64},
        "chunk_size": CHUNK, "total_chunks": 3, "is_adapter": False,
        "session_id": "../sessions/evil", "acknowledged": [0],
    }  # fmt: skip
    journal.write_text(json.dumps(record))
    second = await kore.models.import_file(path)
    assert second.resumed is False
    assert second.model_id != first.model_id
    await ctl.assert_stored(second.model_id, path)


async def test_an_unwritable_state_folder_fails_before_any_request(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")
    kore = clients(state_dir=blocker / "state")
    await ctl.reset_counters()
    with pytest.raises(LocalStorageError, match=re.escape(str(blocker))):
        await kore.models.import_file(make_file(2 * CHUNK))
    assert (await ctl.counters())["requests"]["start"] == 0


async def test_a_second_run_of_the_same_import_is_refused_while_the_first_holds_it(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker
) -> None:
    await ctl.configure(throughput_bytes_per_second=256 * 1024)
    kore = clients(concurrency=1)
    path = make_file(8 * CHUNK)
    uploading = asyncio.Event()

    def watch(event: ProgressEvent) -> None:
        if event.chunks_done >= 1:
            uploading.set()

    first = asyncio.ensure_future(kore.models.import_file(path, on_progress=watch))
    await uploading.wait()
    with pytest.raises(LockedError, match="already importing"):
        await clients().models.import_file(path)
    result = await first
    await ctl.assert_stored(result.model_id, path)
    assert (await ctl.counters())["requests"]["start"] == 1
    # the lock is gone with the run: a later import of the same file may proceed
    await ctl.configure(throughput_bytes_per_second=None)
    again = await clients().models.import_file(path)
    assert again.model_id != result.model_id
