"""``verify``: a model matches the file it was imported from, and a damaged one does not."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from kore_models.emulator import RunningEmulator
from kore_models.errors import IntegrityError, LocalFileError, NotFoundError
from tests.integrity.test_integrity_ledger_use import kore_models
from tests.support.transfer import CHUNK, ClientFactory, EmuControl


async def corrupt_stored_model(ctl: EmuControl, model_id: str) -> None:
    """Invert one byte the emulator stores for ``model_id`` (its recorded sha256 stays)."""
    answer = await ctl.call("POST", f"/models/{model_id}/corrupt", {})
    assert answer["currentSha256"] != answer["sha256"]


def files_under(root: Path) -> set[Path]:
    return {Path(folder) / name for folder, _, names in os.walk(root) for name in names}


async def test_verify_matches_without_writing_the_download(
    clients: ClientFactory,
    write_tar: Callable[[int], Path],
    sha256sum: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    kore = clients()
    source = write_tar(9 * CHUNK + 3)
    imported = await kore.models.import_file(source)
    assert imported.model_id is not None
    before = files_under(tmp_path)
    result = await kore.models.verify(imported.model_id, source)
    assert result.matches
    assert result.local_sha256 == result.model_sha256 == sha256sum(source) == imported.sha256
    assert result.model_bytes == result.local_bytes == source.stat().st_size
    assert result.kept is None
    new = {p for p in files_under(tmp_path) - before if "emu" not in p.relative_to(tmp_path).parts}
    assert new <= {
        tmp_path / "state" / "ledger.sqlite3-wal",
        tmp_path / "state" / "ledger.sqlite3-shm",
    }


async def test_verify_keeps_the_download_when_asked(
    clients: ClientFactory, write_tar: Callable[[int], Path], tmp_path: Path
) -> None:
    kore = clients()
    source = write_tar(4 * CHUNK)
    imported = await kore.models.import_file(source)
    assert imported.model_id is not None
    kept = tmp_path / "kept.tar"
    result = await kore.models.verify(imported.model_id, source, keep_to=kept)
    assert result.kept == kept
    assert kept.read_bytes() == source.read_bytes()


async def test_a_damaged_model_fails_with_both_digests(
    clients: ClientFactory,
    ctl: EmuControl,
    write_tar: Callable[[int], Path],
    sha256sum: Callable[[Path], str],
) -> None:
    kore = clients()
    source = write_tar(5 * CHUNK)
    imported = await kore.models.import_file(source)
    assert imported.model_id is not None
    await corrupt_stored_model(ctl, imported.model_id)
    with pytest.raises(IntegrityError, match="does not match") as caught:
        await kore.models.verify(imported.model_id, source)
    assert caught.value.expected == sha256sum(source)
    assert caught.value.actual is not None
    assert caught.value.actual != caught.value.expected
    assert caught.value.expected in str(caught.value)
    assert caught.value.actual in str(caught.value)


async def test_an_unknown_model_or_a_missing_file(
    clients: ClientFactory, ctl: EmuControl, write_tar: Callable[[int], Path], tmp_path: Path
) -> None:
    kore = clients()
    with pytest.raises(NotFoundError):
        await kore.models.verify("cm-does-not-exist", write_tar(2 * CHUNK))
    await ctl.reset_counters()
    with pytest.raises(LocalFileError):
        await kore.models.verify("cm-whatever", tmp_path / "missing.tar")
    assert (await ctl.counters())["requests"].get("export", 0) == 0  # nothing was asked


async def test_the_whole_story_through_the_cli(
    emu: RunningEmulator,
    ctl: EmuControl,
    write_tar: Callable[[int], Path],
    sha256sum: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    """Import prints sha256sum's digest; verify matches; export is in the history; after
    the server's bytes are altered verify exits 11 and prints both digests."""
    state = tmp_path / "state"
    source = write_tar(6 * CHUNK + 17)
    expected = sha256sum(source)
    code, out, err = await kore_models(emu, state, "import", str(source))
    assert code == 0, err
    assert f"sha256 {expected}" in out
    code, out, err = await kore_models(emu, state, "import", "--json", "--verify", str(source))
    assert code == 0, err
    row = json.loads(out)
    assert row["verified"] is True
    model_id = row["modelId"]
    code, out, err = await kore_models(emu, state, "verify", model_id, str(source))
    assert code == 0, err
    assert f"local sha256 {expected}" in out
    assert f"model sha256 {expected}" in out
    exported = tmp_path / "exported.tar"
    code, out, err = await kore_models(emu, state, "export", model_id, "-o", str(exported))
    assert code == 0, err
    code, out, err = await kore_models(emu, state, "history", "--json")
    assert code == 0, err
    transfers = json.loads(out)["transfers"]
    assert [t["direction"] for t in transfers] == ["import", "import", "export"]
    assert {t["sha256"] for t in transfers} == {expected}
    assert transfers[-1]["path"] == str(exported)
    await corrupt_stored_model(ctl, model_id)
    code, out, err = await kore_models(emu, state, "verify", "--json", model_id, str(source))
    assert code == 11
    error = json.loads(out)["error"]
    assert error["exitCode"] == 11
    assert error["expectedSha256"] == expected
    assert error["actualSha256"] not in (None, expected)
    assert expected in err
    assert error["actualSha256"] in err
    code, _, err = await kore_models(emu, state, "verify", "cm-nope", str(source))
    assert code == 4, err


async def test_verify_with_no_wait_is_a_usage_error(
    emu: RunningEmulator, write_tar: Callable[[int], Path], tmp_path: Path
) -> None:
    code, _, err = await kore_models(
        emu, tmp_path / "state", "import", "--verify", "--no-wait", str(write_tar(2 * CHUNK))
    )
    assert code == 2
    assert "--verify needs the import job to finish" in err


async def test_a_local_digest_the_caller_knows_is_not_recomputed(
    clients: ClientFactory, write_tar: Callable[[int], Path]
) -> None:
    """``import --verify`` passes the digest of the bytes it sent; the file is not read."""
    kore = clients()
    source = write_tar(3 * CHUNK)
    imported = await kore.models.import_file(source)
    assert imported.model_id is not None
    assert imported.sha256 is not None
    other = write_tar(3 * CHUNK)  # different bytes: only the given digest can match
    result = await kore.models.verify(
        imported.model_id, other, local_sha256=imported.sha256.upper()
    )
    assert result.matches
    assert result.local_sha256 == imported.sha256
