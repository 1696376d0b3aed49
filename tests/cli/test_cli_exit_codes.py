"""Every row of the exit-code table: provoked for real where the build can, else by mapping.

Rows 11, 13 and 14 belong to errors raised by the integrity and network code that is not
in this build yet; they are checked through ``exit_code_for`` so the table stays complete.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from kore_models import (
    IntegrityError,
    ProxyError,
    TLSError,
)
from kore_models.cli import errors as cli_errors
from kore_models.cli.errors import EXIT_CODES, exit_code_for
from kore_models.testing import KoreEmulator
from tests.cli.cli_support import child_env, spawn, wait_for_event

RunCli = Callable[..., Result]
MakeTar = Callable[..., Path]
DOCS = Path(__file__).parents[2] / "docs" / "cli.md"


@dataclass
class Scene:
    """What a provoking function may use."""

    request: pytest.FixtureRequest
    run_cli: RunCli
    make_tar: MakeTar
    tmp_path: Path

    @property
    def emulator(self) -> KoreEmulator:
        emulator: KoreEmulator = self.request.getfixturevalue("kore_emulator")
        return emulator

    def cli(self, *args: str, **env: Any) -> Result:
        """The CLI against this test's own emulator."""
        return self.run_cli(*args, env={"KORE_HOST": self.emulator.url, **env})

    def imported(self) -> dict[str, Any]:
        done = self.cli("import", str(self.make_tar()), "--json")
        assert done.exit_code == 0, done.output
        data: dict[str, Any] = json.loads(done.stdout)
        return data


def ok(scene: Scene) -> int:
    return scene.cli("status", scene.imported()["dockStatusId"]).exit_code


def internal(scene: Scene) -> int:
    def broken(*args: object) -> str:
        raise RuntimeError("a bug")

    scene.request.getfixturevalue("monkeypatch").setattr(
        "kore_models.cli.commands_models.job_line", broken
    )
    result = scene.cli("status", scene.imported()["dockStatusId"])
    assert "internal error: RuntimeError: a bug" in result.stderr
    return result.exit_code


def usage(scene: Scene) -> int:
    return scene.cli("import", str(scene.tmp_path / "missing.tar")).exit_code


def auth(scene: Scene) -> int:
    return scene.cli("status", "ds-1", KORE_API_KEY="kg-wrong-key-0000").exit_code


def not_found(scene: Scene) -> int:
    return scene.cli("status", "ds-missing").exit_code


def job_failed(scene: Scene) -> int:
    bad = scene.tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar archive" * 1000)
    return scene.cli("import", str(bad)).exit_code


def timeout(scene: Scene) -> int:
    scene.emulator.configure(job_seconds=60)
    started = scene.cli("import", str(scene.make_tar()), "--no-wait", "--json")
    job = json.loads(started.stdout)["dockStatusId"]
    return scene.cli("status", job, "--wait", "--timeout", "0.3").exit_code


def network(scene: Scene) -> int:
    return scene.run_cli("status", "ds-1", env={"KORE_HOST": "http://127.0.0.1:9"}).exit_code


def file_changed(scene: Scene) -> int:
    slow = scene.request.getfixturevalue("slow_emulator")
    path = scene.make_tar("changing.tar", size=3_000_000)
    env = child_env(slow.url, scene.tmp_path)
    args = ["import", str(path), "--chunk-size", "128KiB", "--concurrency", "1"]
    process = spawn([*args, "--progress", "json"], env, stderr=subprocess.PIPE)
    assert process.stderr is not None
    wait_for_event(process.stderr, lambda e: e.get("chunks", 0) >= 1)
    with path.open("r+b") as handle:  # the file is rewritten while it is being sent
        handle.truncate(1_000_000)
    with process.stderr:
        rest = process.stderr.read()
    assert "the import was stopped" in rest
    return process.wait(timeout=60)


def conflict(scene: Scene) -> int:
    result = scene.cli("undeploy", scene.imported()["modelId"])
    assert "is not deployed, so there is nothing to undeploy" in result.stderr
    return result.exit_code


def rejected(scene: Scene) -> int:
    weights = scene.tmp_path / "weights.dat"  # (a lone .bin is refused locally: exit 2)
    weights.write_bytes(b"\0" * 10_000)
    return scene.cli("import", str(weights)).exit_code


def local_storage(scene: Scene) -> int:
    not_a_folder = scene.tmp_path / "state-is-a-file"
    not_a_folder.write_text("")
    result = scene.cli("import", str(scene.make_tar()), KORE_STATE_DIR=str(not_a_folder))
    assert "is not writable" in result.stderr
    assert scene.emulator.counters()["requests"]["start"] == 0  # checked before any request
    return result.exit_code


def locked(scene: Scene) -> int:
    slow = scene.request.getfixturevalue("slow_emulator")
    path = scene.make_tar("shared.tar", size=3_000_000)
    env = child_env(slow.url, scene.tmp_path)
    args = ["import", str(path), "--chunk-size", "128KiB", "--concurrency", "1"]
    first = spawn([*args, "--progress", "json"], env, stderr=subprocess.PIPE)
    assert first.stderr is not None
    with first.stderr:
        wait_for_event(first.stderr, lambda e: e.get("chunks", 0) >= 1)
        second = scene.run_cli(*args, env={"KORE_HOST": slow.url})  # same file, same state
        first.terminate()
        first.stderr.read()
    first.wait(timeout=60)
    assert "another kore-models run" in second.stderr
    return second.exit_code


def mapped(error: BaseException) -> Callable[[Scene], int]:
    return lambda scene: exit_code_for(error)


PROVOKE: dict[int, Callable[[Scene], int]] = {
    0: ok,
    1: internal,
    2: usage,
    3: auth,
    4: not_found,
    5: job_failed,
    6: timeout,
    7: network,
    8: file_changed,
    9: conflict,
    10: rejected,
    11: mapped(IntegrityError("sha256 differs", expected="aa", actual="bb")),
    12: local_storage,
    13: mapped(TLSError("certificate verify failed")),
    14: mapped(ProxyError("proxy refused the credentials (407)")),
    15: locked,
    130: mapped(KeyboardInterrupt()),  # for real: test_cli_process.py
    143: lambda scene: cli_errors.EXIT_TERMINATED,  # for real: test_cli_signals.py
}


def test_every_documented_code_has_a_provoking_case() -> None:
    assert sorted(PROVOKE) == sorted(EXIT_CODES)


@pytest.mark.parametrize("code", sorted(EXIT_CODES))
def test_each_exit_code(
    code: int,
    request: pytest.FixtureRequest,
    run_cli: RunCli,
    make_tar: MakeTar,
    tmp_path: Path,
) -> None:
    scene = Scene(request, run_cli, make_tar, tmp_path)
    assert PROVOKE[code](scene) == code


def test_the_docs_table_matches_the_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in text, code
