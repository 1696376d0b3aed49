"""Import jobs check the received archive: every tar member listed, gzip tars, zips."""

from __future__ import annotations

import asyncio
import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.support.emulator_api import Api, make_tar


def _tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def _zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in files.items():
            zf.writestr(name, payload)
    return buf.getvalue()


async def _import(api: Api, data: bytes, extension: str) -> tuple[str, str | None]:
    doc = await api.start(len(data), fileExtension=extension, fileName=f"m.{extension}")
    assert (await api.chunk(doc["sessionId"], 0, data))[0] == 200
    status, done, _ = await api.complete(doc["sessionId"])
    assert status == 200, done
    await api.advance(10)
    job = (await api.get(f"/dock-status/{done['dock-statusId']}"))[1]
    return job["status"], job.get("message")


SHARDS = {"config.json": b"{}", "model-00001.safetensors": b"w" * 30_000, "tok.json": b"t" * 700}
GOOD = _tar_of(SHARDS)
member_end = GOOD.index(b"t" * 700) + 700


@pytest.mark.parametrize(
    ("data", "extension", "why"),
    [
        (GOOD[: GOOD.index(b"w" * 30_000) + 10_000], "tar", "unexpected end"),  # cut mid-member
        (GOOD[: member_end - 100], "tar", "unexpected end"),  # cut inside the last member
        (b"not an archive at all " * 100, "tar", "not a readable tar"),
        (_tar_of({}), "tar", "no members"),
        (gzip.compress(GOOD)[:-200], "tgz", "not a readable gzip tar"),
        (gzip.compress(b"plain text, not a tar " * 50), "gz", "not a readable gzip tar"),
        (bz2.compress(GOOD)[:-50], "tar", "not a readable tar"),
        (bz2.compress(GOOD), "tgz", "not a gzip file"),
        (_zip_of(SHARDS)[:-30], "zip", "not a readable zip"),
        (_zip_of({}), "zip", "no members"),
    ],
    ids=[
        "cut-mid-member",
        "cut-last-member",
        "text",
        "empty-tar",
        "truncated-tgz",
        "gz-of-text",
        "truncated-bz2-tar",
        "bz2-named-tgz",
        "truncated-zip",
        "empty-zip",
    ],
)
async def test_malformed_archive_fails_the_job(
    api: Api, data: bytes, extension: str, why: str
) -> None:
    status, message = await _import(api, data, extension)
    assert status == "FAILED"
    assert message is not None
    assert why in message
    assert message.startswith("import validation failed: ")


@pytest.mark.parametrize(
    ("data", "extension"),
    [
        (GOOD, "tar"),
        (gzip.compress(GOOD), "tar"),  # a compressed tar named .tar is still read
        (bz2.compress(GOOD), "tar"),
        (lzma.compress(GOOD), "tar"),
        (gzip.compress(GOOD), "tgz"),
        (gzip.compress(GOOD), "gz"),
        (_zip_of(SHARDS), "zip"),
        (make_tar(), "tar"),
        (GOOD[:1024] + b"garbage!" * 64, "tar"),  # after a complete member: ignored, as tarfile
    ],
)
async def test_valid_archives_succeed(api: Api, data: bytes, extension: str) -> None:
    assert await _import(api, data, extension) == ("SUCCESS", None)


async def test_gnu_tar_archive_with_long_names(api: Api, tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    deep = folder / ("d" * 120) / ("e" * 120)
    deep.mkdir(parents=True)
    (deep / "weights-é.safetensors").write_bytes(b"x" * 5000)
    (folder / "config.json").write_text("{}")
    archive = tmp_path / "my-model.tar"
    gnu_tar = await asyncio.create_subprocess_exec(
        "tar", "-cf", str(archive), "-C", str(tmp_path), "my-model"
    )
    assert await gnu_tar.wait() == 0
    assert await _import(api, archive.read_bytes(), "tar") == ("SUCCESS", None)
