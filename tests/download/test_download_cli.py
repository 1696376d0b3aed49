"""``kore-models export --sha256 HEX`` in a child process: a match, a mismatch (exit 11,
nothing kept) and a malformed value (exit 2, nothing sent); the JSON carries ``sha256``."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from tests.download.download_support import cli_env, export_api, payload, run_cli

if TYPE_CHECKING:
    from tests.download.download_support import HostileServer


async def test_export_prints_the_sha256_and_accepts_a_matching_one(
    hostile: HostileServer, tmp_path: Path
) -> None:
    data = payload(300_000)
    digest = hashlib.sha256(data).hexdigest()
    export_api(hostile, data)
    dest = tmp_path / "model.tar"

    code, out, err = await run_cli(
        "export",
        "cm-1",
        "-o",
        str(dest),
        "--sha256",
        digest.upper(),
        "--json",
        env=cli_env(hostile.url, tmp_path),
    )

    assert code == 0, err
    assert json.loads(out)["sha256"] == digest
    assert dest.read_bytes() == data


async def test_export_with_another_sha256_exits_11_and_keeps_nothing(
    hostile: HostileServer, tmp_path: Path
) -> None:
    data = payload(300_000)
    export_api(hostile, data)
    dest = tmp_path / "model.tar"
    wrong = hashlib.sha256(b"something else").hexdigest()

    code, out, err = await run_cli(
        "export",
        "cm-1",
        "-o",
        str(dest),
        "--sha256",
        wrong,
        "--json",
        env=cli_env(hostile.url, tmp_path),
    )

    assert code == 11, err
    assert wrong in err
    assert hashlib.sha256(data).hexdigest() in err
    assert json.loads(out)["error"]["type"] == "IntegrityError"
    assert [n for n in os.listdir(tmp_path) if n.startswith("model.tar")] == []


async def test_export_with_a_malformed_sha256_exits_2_before_any_request(
    hostile: HostileServer, tmp_path: Path
) -> None:
    export_api(hostile, payload(1000))

    code, _, err = await run_cli(
        "export",
        "cm-1",
        "-o",
        str(tmp_path / "m.tar"),
        "--sha256",
        "xyz",
        env=cli_env(hostile.url, tmp_path),
    )

    assert code == 2, err
    assert "not a SHA-256" in err
    assert hostile.seen == []


async def test_download_of_an_earlier_export_checks_the_sha256_too(
    hostile: HostileServer, tmp_path: Path
) -> None:
    data = payload(200_000)
    export_api(hostile, data)
    dest = tmp_path / "model.tar"
    env = cli_env(hostile.url, tmp_path)
    wrong = hashlib.sha256(b"another model").hexdigest()

    code, _, err = await run_cli("download", "ds-1", str(dest), "--sha256", wrong, env=env)
    assert code == 11, err
    assert not dest.exists()

    right = hashlib.sha256(data).hexdigest()
    code, _, err = await run_cli("download", "ds-1", str(dest), "--sha256", right, env=env)
    assert code == 0, err
    assert dest.read_bytes() == data
