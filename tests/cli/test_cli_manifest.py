"""``kore-models import --manifest``: formats, shards, the state file and re-runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from kore_models.cli.manifest import ManifestError, parse_manifest, state_path_for
from kore_models.emulator.process import EmulatorProcess as Emulator

RunCli = Callable[..., Result]
MakeTar = Callable[..., Path]


def rows(result: Result) -> list[dict[str, Any]]:
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    imports = data["imports"]
    assert isinstance(imports, list)
    return imports


@pytest.fixture
def five(make_tar: MakeTar, tmp_path: Path) -> Path:
    """A line manifest of five files in a sub-folder, with comments and blank lines."""
    folder = tmp_path / "models"
    for i in range(5):
        make_tar(f"m{i}.tar", size=50_000 + i, folder=folder)
    manifest = tmp_path / "models" / "list.txt"
    manifest.write_text(
        "# five models\n\nm0.tar\nm1.tar\n  m2.tar  \n# m-skipped.tar\nm3.tar\nm4.tar\n"
    )
    return manifest


def test_shards_split_the_manifest_and_reruns_skip(run_cli: RunCli, five: Path) -> None:
    first = run_cli("import", "--manifest", str(five), "--shard", "1/2", "--json")
    assert first.exit_code == 0, first.output
    assert [Path(r["path"]).name for r in rows(first)] == ["m0.tar", "m2.tar", "m4.tar"]
    second = run_cli("import", "--manifest", str(five), "--shard", "2/2", "--json")
    assert [Path(r["path"]).name for r in rows(second)] == ["m1.tar", "m3.tar"]

    state = json.loads(state_path_for(five).read_text())
    assert len(state["entries"]) == 5
    record = state["entries"][str(five.parent / "m3.tar")]
    assert record["status"] == "SUCCESS"
    assert record["modelId"].startswith("cm-")
    assert record["size"] == (five.parent / "m3.tar").stat().st_size

    again = run_cli("import", "--manifest", str(five), "--parallel-files", "3", "--json")
    assert again.exit_code == 0, again.output
    assert all(r.get("skipped") for r in rows(again))
    summary = json.loads(again.stdout)["summary"]
    assert summary["skipped"] == 5
    assert summary["imported"] == 0


def test_a_changed_file_is_imported_again(run_cli: RunCli, five: Path) -> None:
    assert run_cli("import", "--manifest", str(five)).exit_code == 0
    changed = five.parent / "m1.tar"
    changed.write_bytes(changed.read_bytes() + b"\0" * 512)
    result = run_cli("import", "--manifest", str(five), "--json")
    assert result.exit_code == 0, result.output
    fresh = [r for r in rows(result) if not r.get("skipped")]
    assert [Path(r["path"]).name for r in fresh] == ["m1.tar"]


def test_json_and_csv_manifests_carry_is_adapter(
    run_cli: RunCli, make_tar: MakeTar, tmp_path: Path
) -> None:
    make_tar("base.tar")
    make_tar("lora.tar")
    as_json = tmp_path / "list.json"
    as_json.write_text(json.dumps([{"path": "base.tar"}, {"path": "lora.tar", "isAdapter": True}]))
    result = run_cli("import", "--manifest", str(as_json), "--json")
    assert result.exit_code == 0, result.output
    assert [r["isAdapter"] for r in rows(result)] == [False, True]

    as_csv = tmp_path / "list.csv"
    as_csv.write_text("path,isAdapter\nbase.tar,false\nlora.tar,true\n")
    entries = parse_manifest(as_csv)
    assert [(e.path.name, e.is_adapter) for e in entries] == [
        ("base.tar", False),
        ("lora.tar", True),
    ]


def test_bad_lines_exit_2_before_any_upload(run_cli: RunCli, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.json"
    manifest.write_text(
        json.dumps([{"path": "a.tar"}, {"path": 3}, {"path": "b.tar", "isAdapter": "maybe"}])
    )
    result = run_cli("import", "--manifest", str(manifest))
    assert result.exit_code == 2
    assert "entry 2: path must be a non-empty string" in result.stderr
    assert "entry 3: isAdapter must be true or false" in result.stderr
    assert not state_path_for(manifest).exists()


def test_missing_files_exit_2_before_any_upload(
    run_cli: RunCli, make_tar: MakeTar, tmp_path: Path
) -> None:
    make_tar("here.tar")
    manifest = tmp_path / "list.txt"
    manifest.write_text("here.tar\ngone.tar\n")
    result = run_cli("import", "--manifest", str(manifest), "--json")
    assert result.exit_code == 2
    assert "line 2:" in result.stderr
    assert "no such file" in result.stderr
    assert not state_path_for(manifest).exists()


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("dup.txt", "a.tar\n./a.tar\n", "listed twice"),
        ("empty.txt", "# nothing\n\n", "no entries"),
        ("bad.csv", "file,adapter\na.tar,true\n", "header path,isAdapter"),
        ("broken.json", "[{", "not valid JSON"),
        ("obj.json", '{"path": "a.tar"}', "a list of"),
    ],
)
def test_manifest_problems(tmp_path: Path, name: str, text: str, problem: str) -> None:
    manifest = tmp_path / name
    manifest.write_text(text)
    with pytest.raises(ManifestError, match=problem):
        parse_manifest(manifest)


def test_shard_out_of_range_is_a_usage_error(run_cli: RunCli, five: Path) -> None:
    result = run_cli("import", "--manifest", str(five), "--shard", "3/2")
    assert result.exit_code == 2
    assert "K must be between 1 and N" in result.stderr


def test_no_wait_entries_are_checked_on_the_rerun(
    run_cli: RunCli, five: Path, emulator: Emulator
) -> None:
    first = run_cli("import", "--manifest", str(five), "--no-wait", "--parallel-files", "5")
    assert first.exit_code == 0, first.output
    assert "the server is processing it" in first.stdout
    state = json.loads(state_path_for(five).read_text())
    assert {r["status"] for r in state["entries"].values()} == {"IN_PROGRESS"}
    emulator.control("POST", "/clock", {"advance_seconds": 1})  # the jobs take 0.2 s
    emulator.reset_counters()
    rerun = run_cli("import", "--manifest", str(five), "--json")
    assert rerun.exit_code == 0, rerun.output
    assert all(r.get("skipped") for r in rows(rerun))
    state = json.loads(state_path_for(five).read_text())
    assert {r["status"] for r in state["entries"].values()} == {"SUCCESS"}
    counters = emulator.counters()
    assert counters["requests"]["dock_status"] >= 5, "the rerun checked each job"
    assert counters["requests"]["start"] == 0, "nothing was imported again"
