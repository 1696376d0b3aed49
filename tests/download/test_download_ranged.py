"""Ranged downloads (issue 12, download side): concurrent pieces into one file, byte-exact and
hashed; a process killed mid-way resumes each piece where it stopped; a server that ignores
Range gets one stream; memory stays bounded."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from kore_models.transfer.download import download_file
from tests.download.download_support import KEY, payload, serve_ranges, start_server

if TYPE_CHECKING:
    from tests.download.conftest import ClientFor
    from tests.download.download_support import HostileServer

PIECE = 64 * 1024


async def test_pieces_are_fetched_at_once_into_one_file_byte_exact(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(16 * PIECE + 123)
    files = serve_ranges(data, etag='"e1"')
    in_flight, most = 0, 0
    four_at_once = asyncio.Event()

    async def gated(request: web.Request) -> web.StreamResponse:
        nonlocal in_flight, most
        if request.headers.get("Range") == f"bytes=0-{PIECE - 1}":
            return await files(request)  # the probe: piece 0, answered at once
        in_flight += 1
        most = max(most, in_flight)
        if in_flight >= 4:
            four_at_once.set()
        try:
            await four_at_once.wait()  # nothing more is sent until four pieces are asked
            return await files(request)
        finally:
            in_flight -= 1

    hostile.handler = gated
    dest = tmp_path / "model.tar"
    kore = client_for(hostile.url)

    result = await download_file(
        kore.transport, f"{hostile.url}/f", dest, ranges=4, piece_size=PIECE
    )

    assert dest.read_bytes() == data
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.ranges == 4
    assert most == 4
    asked = sorted(r for r in hostile.ranges() if r is not None)
    expected = [f"bytes={i * PIECE}-{min(len(data), (i + 1) * PIECE) - 1}" for i in range(17)]
    assert asked == sorted(expected)
    assert all(s.headers.get("if-range") == '"e1"' for s in hostile.seen[1:])
    assert sorted(os.listdir(tmp_path)) == ["model.tar"]


async def test_a_server_that_ignores_range_gets_one_stream(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(10 * PIECE)

    async def whole(request: web.Request) -> web.StreamResponse:
        return web.Response(body=data)

    hostile.handler = whole
    dest = tmp_path / "model.tar"

    result = await download_file(
        client_for(hostile.url).transport, f"{hostile.url}/f", dest, ranges=4, piece_size=PIECE
    )

    assert dest.read_bytes() == data
    assert result.ranges == 1
    assert len(hostile.seen) == 1
    assert result.sha256 == hashlib.sha256(data).hexdigest()


async def test_a_piece_cut_off_is_resumed_and_the_others_finish(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(12 * 4 * PIECE)
    files = serve_ranges(data)
    cut_once = True

    async def cutting(request: web.Request) -> web.StreamResponse:
        nonlocal cut_once
        if request.headers.get("Range", "").startswith(f"bytes={5 * 4 * PIECE}-") and cut_once:
            cut_once = False
            resp = web.StreamResponse(status=206)
            resp.headers["Content-Range"] = f"bytes {5 * 4 * PIECE}-{6 * 4 * PIECE - 1}/{len(data)}"
            resp.content_length = 4 * PIECE
            await resp.prepare(request)
            await resp.write(data[5 * 4 * PIECE : 5 * 4 * PIECE + 1000])
            assert request.transport is not None
            request.transport.abort()
            return resp
        return await files(request)

    hostile.handler = cutting
    dest = tmp_path / "model.tar"

    result = await download_file(
        client_for(hostile.url).transport, f"{hostile.url}/f", dest, ranges=3, piece_size=4 * PIECE
    )

    assert dest.read_bytes() == data
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert not cut_once


_CHILD = """
import asyncio, sys
from pathlib import Path
from kore_models import KoreClient
from kore_models.transfer.download import download_file

async def main() -> None:
    url, dest, state = sys.argv[1], sys.argv[2], sys.argv[3]
    async with KoreClient(host=url, api_key={key!r}, state_dir=state) as kore:
        await download_file(kore.transport, url + "/f", Path(dest), model_id="cm-1",
                            ranges=4, piece_size={piece}, block_size=16 * 1024)

asyncio.run(main())
"""


async def _sidecar_shows(sidecar: Path, done: int) -> dict[str, object]:
    """The sidecar once it records ``done`` finished pieces and progress inside another."""
    while True:  # written by another process: nothing to await but the file itself
        try:
            record: dict[str, object] = json.loads(await asyncio.to_thread(sidecar.read_text))
        except (OSError, ValueError):
            record = {}
        if len(record.get("done", [])) >= done and record.get("progress"):  # type: ignore[arg-type]
            return record
        await asyncio.sleep(0.05)


async def test_a_killed_ranged_download_resumes_each_piece_where_it_stopped(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    piece = 4 * PIECE
    data = payload(16 * piece)
    files = serve_ranges(data, etag='"same"')
    never = asyncio.Event()

    async def stalls_after_three_pieces(request: web.Request) -> web.StreamResponse:
        first = int(request.headers.get("Range", "bytes=0-").split("=")[1].split("-")[0])
        if first < 3 * piece:
            return await files(request)
        resp = web.StreamResponse(status=206, headers={"ETag": '"same"'})
        resp.headers["Content-Range"] = f"bytes {first}-{first + piece - 1}/{len(data)}"
        resp.content_length = piece
        await resp.prepare(request)
        await resp.write(data[first : first + piece // 2])  # half the piece, then nothing
        await never.wait()
        return resp

    hostile.handler = stalls_after_three_pieces
    dest = tmp_path / "model.tar"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD.format(key=KEY, piece=piece),
        hostile.url,
        str(dest),
        str(tmp_path / "state"),
    )
    try:
        record = await asyncio.wait_for(
            _sidecar_shows(dest.with_name("model.tar.part.json"), done=3), timeout=60
        )
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
        never.set()  # the stalled answers end (their client is gone)
    assert record["done"] == [0, 1, 2]
    progress = {int(k): v for k, v in record["progress"].items()}  # type: ignore[attr-defined]
    hostile.handler = files
    hostile.seen.clear()

    result = await download_file(
        client_for(hostile.url).transport,
        f"{hostile.url}/f",
        dest,
        model_id="cm-1",
        ranges=4,
        piece_size=piece,
    )

    assert dest.read_bytes() == data
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.resumed_from >= 3 * piece
    starts = sorted(int(r.split("=")[1].split("-")[0]) for r in hostile.ranges() if r)
    assert all(s >= 3 * piece for s in starts), "finished pieces are not fetched again"
    for index, done in progress.items():  # each piece resumes a little before where it was
        assert index * piece + done - 64 * 1024 in starts
    assert not dest.with_name("model.tar.part.json").exists()


@pytest.mark.parametrize("ranges", [1, 8])
async def test_memory_stays_bounded_while_downloading_128_mib(
    hostile_factory: object, tmp_path: Path, ranges: int
) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        block = payload(1 << 20)
        for _ in range(128):
            handle.write(block)

    async def serve_file(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(big)

    runner, url = await start_server(serve_file)
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from kore_models import KoreClient\n"
        "from kore_models.transfer.download import download_file\n"
        "async def main():\n"
        f"    async with KoreClient(host={url!r}, api_key={KEY!r}, state_dir=sys.argv[2]) as k:\n"
        f"        r = await download_file(k.transport, {url!r} + '/big', Path(sys.argv[1]),"
        f" ranges={ranges}, piece_size=16 * 1024 * 1024)\n"
        # VmHWM is this process's own peak (ru_maxrss would carry the forking parent's)
        "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "    print(r.sha256, hwm.split()[1])\n"
        "asyncio.run(main())\n"
    )
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            str(tmp_path / "out.bin"),
            str(tmp_path / "state"),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await child.communicate()
    finally:
        await runner.cleanup()
    digest, peak_kib = out.decode().split()
    assert child.returncode == 0
    with big.open("rb") as source:
        assert digest == hashlib.file_digest(source, "sha256").hexdigest()
    assert int(peak_kib) < 100 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB"


async def test_a_ranged_part_with_every_piece_done_is_only_hashed_and_renamed(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(8 * PIECE)
    hostile.handler = serve_ranges(data)
    dest = tmp_path / "model.tar"
    dest.with_name("model.tar.part").write_bytes(data)  # a run that died before the rename
    sidecar = {
        "source": f"{hostile.url}/f",
        "model_id": "cm-1",
        "total": len(data),
        "piece_size": PIECE,
        "done": list(range(8)),
    }
    dest.with_name("model.tar.part.json").write_text(json.dumps(sidecar))

    result = await download_file(
        client_for(hostile.url).transport, f"{hostile.url}/f", dest, model_id="cm-1", ranges=4
    )

    assert hostile.seen == []
    assert result.resumed_from == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert dest.read_bytes() == data


async def test_a_cancelled_ranged_download_keeps_its_progress_for_the_next_run(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    piece = 4 * PIECE
    data = payload(8 * piece)
    files = serve_ranges(data)
    halves_sent = 0
    stalled = asyncio.Event()
    release = asyncio.Event()

    async def stalls(request: web.Request) -> web.StreamResponse:
        nonlocal halves_sent
        first = int(request.headers.get("Range", "bytes=0-").split("=")[1].split("-")[0])
        if first == 0 or release.is_set():
            return await files(request)
        resp = web.StreamResponse(status=206)
        resp.headers["Content-Range"] = f"bytes {first}-{first + piece - 1}/{len(data)}"
        resp.content_length = piece
        await resp.prepare(request)
        await resp.write(data[first : first + piece // 2])
        halves_sent += 1
        if halves_sent == 4:  # pieces 1-3, and 4 once piece 0 is done: all four workers
            stalled.set()
        await release.wait()
        return resp

    hostile.handler = stalls
    dest = tmp_path / "model.tar"
    kore = client_for(hostile.url)
    received = 0
    all_in = asyncio.Event()

    def count(size: int) -> None:
        nonlocal received
        received += size
        if received >= piece + 4 * (piece // 2):
            all_in.set()

    task = asyncio.create_task(
        download_file(
            kore.transport,
            f"{hostile.url}/f",
            dest,
            model_id="cm-1",
            ranges=4,
            piece_size=piece,
            on_bytes=count,
        )
    )
    await stalled.wait()
    await all_in.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    record = json.loads(dest.with_name("model.tar.part.json").read_text())
    assert record["done"] == [0]
    assert record["progress"] == {str(i): piece // 2 for i in (1, 2, 3, 4)}
    hostile.seen.clear()

    result = await download_file(
        kore.transport, f"{hostile.url}/f", dest, model_id="cm-1", ranges=4, piece_size=piece
    )

    assert dest.read_bytes() == data
    assert result.resumed_from == piece + 4 * (piece // 2)
    assert all(not r.startswith("bytes=0-") for r in hostile.ranges() if r)
