"""``export --no-wait`` then ``download``; N shard processes import a manifest exactly once."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from kore_models.testing import KoreEmulator
from tests.cli.cli_support import child_env, spawn

RunCli = Callable[..., Result]
MakeTar = Callable[..., Path]


def test_export_no_wait_then_download_fetches_the_finished_export(
    run_cli: RunCli, make_tar: MakeTar, tmp_path: Path, kore_emulator: KoreEmulator
) -> None:
    env = {"KORE_HOST": kore_emulator.url}
    source = make_tar("source.tar", size=400_000)
    model_id = json.loads(run_cli("import", str(source), "--json", env=env).stdout)["modelId"]
    kore_emulator.configure(job_seconds=0.5)  # the export is still running when we ask

    started = run_cli("export", model_id, "--no-wait", "--json", env=env)
    assert started.exit_code == 0, started.output
    job = json.loads(started.stdout)["dockStatusId"]

    dest = tmp_path / "out.tar"
    fetched = run_cli("download", job, str(dest), "--json", env=env)
    assert fetched.exit_code == 0, fetched.output
    data = json.loads(fetched.stdout)
    assert data["dockStatusId"] == job
    assert data["modelId"] == model_id
    assert data["bytes"] == source.stat().st_size
    assert dest.read_bytes() == source.read_bytes()

    folder = tmp_path / "exports"
    folder.mkdir()
    again = run_cli("download", job, str(folder), env=env)
    assert again.exit_code == 0, again.output
    assert (folder / f"{model_id}.tar").read_bytes() == source.read_bytes()


def test_download_of_a_job_that_is_not_an_export_is_a_usage_error(
    run_cli: RunCli, make_tar: MakeTar, tmp_path: Path
) -> None:
    imported = json.loads(run_cli("import", str(make_tar()), "--json").stdout)
    result = run_cli("download", imported["dockStatusId"], str(tmp_path / "x.tar"))
    assert result.exit_code == 2
    assert "is an IMPORT job, not an export" in result.stderr
    assert not (tmp_path / "x.tar").exists()


def test_shard_processes_import_a_manifest_exactly_once(
    make_tar: MakeTar, tmp_path: Path, kore_emulator: KoreEmulator
) -> None:
    folder = tmp_path / "models"
    names = [f"m{i}.tar" for i in range(7)]
    for i, name in enumerate(names):
        make_tar(name, size=60_000 + i, folder=folder)
    manifest = folder / "manifest.txt"
    manifest.write_text("\n".join(names) + "\n")
    env = child_env(kore_emulator.url, tmp_path)

    shards = 3
    processes = [
        spawn(
            ["import", "--manifest", str(manifest), "--shard", f"{k}/{shards}", "--json", "-q"],
            env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for k in range(1, shards + 1)
    ]  # all at once, like the pods of an Indexed Job
    documents = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        documents.append(json.loads(out))

    imported = [Path(row["path"]).name for doc in documents for row in doc["imports"]]
    assert sorted(imported) == sorted(names)  # every entry once, none twice
    assert all(doc["summary"]["failed"] == 0 for doc in documents)
    assert kore_emulator.counters()["requests"]["complete"] == len(names)

    # a second wave (a retried Job) imports nothing again
    rerun = [
        spawn(
            ["import", "--manifest", str(manifest), "--shard", f"{k}/{shards}", "--json", "-q"],
            env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for k in range(1, shards + 1)
    ]
    for process in rerun:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        assert json.loads(out)["summary"]["imported"] == 0
    assert kore_emulator.counters()["requests"]["complete"] == len(names)
