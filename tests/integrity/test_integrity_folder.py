"""A folder import reports the SHA-256 of the tar it sent, and verify compares folders."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from kore_models.errors import IntegrityError, LocalFileError
from kore_models.transfer.hashing import hasher_for
from kore_models.transfer.source import prepare_source
from tests.support.transfer import ClientFactory, EmuControl


def model_folder(root: Path) -> Path:
    folder = root / "tiny-model"
    (folder / "tokenizer").mkdir(parents=True)
    rng = random.Random(7)
    (folder / "config.json").write_text('{"layers": 2}')
    (folder / "tokenizer" / "vocab.txt").write_text("a\nb\nc\n")
    (folder / "model.safetensors").write_bytes(rng.randbytes(300_000))
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")  # excluded by default
    return folder


async def test_the_digest_of_a_folder_is_the_digest_of_the_tar_sent(
    clients: ClientFactory, ctl: EmuControl, tmp_path: Path
) -> None:
    folder = model_folder(tmp_path)
    result = await clients().models.import_file(folder)
    assert result.model_id is not None
    stored = await ctl.model(result.model_id)
    assert result.sha256 == stored["sha256"]
    source = prepare_source(folder)
    assert source.archive is not None
    tar = source.archive.read(0, source.size)
    assert result.sha256 == hashlib.sha256(tar).hexdigest()
    with hasher_for(source) as hasher:
        assert (await hasher.digest()).sha256 == result.sha256


async def test_verify_compares_a_folder_as_the_tar_its_import_sent(
    clients: ClientFactory, tmp_path: Path
) -> None:
    kore = clients()
    folder = model_folder(tmp_path)
    imported = await kore.models.import_file(folder, exclude=["tokenizer/"])
    assert imported.model_id is not None
    checked = await kore.models.verify(imported.model_id, folder, exclude=["tokenizer/"])
    assert checked.matches
    assert checked.local_sha256 == imported.sha256
    with pytest.raises(IntegrityError):  # other rules, another tar
        await kore.models.verify(imported.model_id, folder)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[1000] ^= 1
    stat = weights.stat()
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with its mtime back
    with pytest.raises(IntegrityError, match="does not match"):
        await kore.models.verify(imported.model_id, folder, exclude=["tokenizer/"])


async def test_a_lone_model_file_is_verified_as_the_one_member_tar_it_was_sent_as(
    clients: ClientFactory, tmp_path: Path
) -> None:
    kore = clients()
    weights = model_folder(tmp_path) / "model.safetensors"
    imported = await kore.models.import_file(weights, as_tar=True)
    assert imported.model_id is not None
    assert (await kore.models.verify(imported.model_id, weights, as_tar=True)).matches
    with pytest.raises(LocalFileError, match="--as-tar"):
        await kore.models.verify(imported.model_id, weights)
