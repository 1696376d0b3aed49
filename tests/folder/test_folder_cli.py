"""``kore-models import DIR`` as a real process against the live emulator: exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from kore_models.emulator import RunningEmulator
from tests.support.folders import write_tree
from tests.support.transfer import KEY, EmuControl

CLI = shutil.which("kore-models", path=os.path.dirname(sys.executable))


class Run:
    """A finished CLI process: exit code and both streams."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr


@pytest.fixture
def cli_env(emu: RunningEmulator, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "KORE_HOST": emu.url,
        "KORE_API_KEY": KEY,
        "KORE_STATE_DIR": str(tmp_path / "cli-state"),
        "KORE_RETRY_SLEEPS": "false",
    }


async def start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    assert CLI is not None, "the kore-models script is not installed in this environment"
    return await asyncio.create_subprocess_exec(
        CLI, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def run(env: dict[str, str], *args: str) -> Run:
    process = await start(env, *args)
    out, err = await process.communicate()
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def requests_made(ctl: EmuControl) -> int:
    counters = await ctl.counters()
    return sum(counters["requests"].values())


async def test_dry_run_lists_members_and_the_archive_size_and_sends_nothing(
    cli_env: dict[str, str], ctl: EmuControl, model_folder: Path
) -> None:
    done = await run(cli_env, "import", str(model_folder), "--dry-run", "--json")
    assert done.code == 0, done.stderr
    document = json.loads(done.stdout)
    [row] = document["imports"]
    assert row["uploadName"] == "my-model.tar"
    paths = [member["path"] for member in row["members"]]
    assert "config.json" in paths
    assert not any(path.startswith(".git") for path in paths)
    human = await run(cli_env, "import", str(model_folder), "--dry-run", "--exclude", "*.json")
    assert human.code == 0
    assert "config.json" not in human.stdout
    assert "would send my-model.tar" in human.stdout
    assert await requests_made(ctl) == 0


async def test_import_dir_sends_the_folder_as_its_tar(
    cli_env: dict[str, str], ctl: EmuControl, tmp_path: Path
) -> None:
    root = write_tree(
        tmp_path / "Llama-tiny",
        {"config.json": b"{}", "model.safetensors": os.urandom(200_000), "notes.pt": b"x"},
    )
    done = await run(
        cli_env, "import", str(root), "--exclude", "*.pt", "--chunk-size", "64KiB", "--json"
    )
    assert done.code == 0, done.stderr
    row = json.loads(done.stdout)
    assert row["status"] == "SUCCESS"
    stored = await ctl.model(row["modelId"])
    assert stored["fileName"] == "Llama-tiny.tar"
    assert stored["size"] == row["bytes"]


def _fifo(root: Path) -> None:
    write_tree(root, {"a.json": b"{}"})
    os.mkfifo(root / "pipe")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("empty folder", "the folder has no files"),
        ("only excluded", "every file in the folder is excluded"),
        ("fifo", "pipe is a named pipe (fifo)"),
        ("lone model file", "--as-tar"),
        ("folder is a symlink", "is a symbolic link to"),
    ],
)
async def test_bad_folders_exit_2_before_any_request(
    cli_env: dict[str, str], ctl: EmuControl, tmp_path: Path, case: str, expected: str
) -> None:
    root = tmp_path / "my-model"
    if case == "empty folder":
        root.mkdir()
    elif case == "only excluded":
        write_tree(root, {".git/HEAD": b"x"})
    elif case == "fifo":
        _fifo(root)
    elif case == "lone model file":
        root = write_tree(root, {"model.safetensors": b"w"}) / "model.safetensors"
    else:
        write_tree(tmp_path / "real", {"a.json": b"{}"})
        root.symlink_to(tmp_path / "real")
    done = await run(cli_env, "import", str(root))
    assert done.code == 2, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert await requests_made(ctl) == 0


async def test_as_tar_sends_a_lone_model_file(
    cli_env: dict[str, str], ctl: EmuControl, tmp_path: Path
) -> None:
    weights = write_tree(tmp_path / "w", {"model.gguf": os.urandom(10_000)}) / "model.gguf"
    done = await run(cli_env, "import", str(weights), "--as-tar", "--json")
    assert done.code == 0, done.stderr
    stored = await ctl.model(json.loads(done.stdout)["modelId"])
    assert stored["fileName"] == "model.tar"


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


async def test_a_file_changed_during_the_upload_exits_8(
    cli_env: dict[str, str], ctl: EmuControl, tmp_path: Path
) -> None:
    # 1 MB/s on the server: the 1.2 MB folder takes about a second to send, one chunk at a
    # time in file order, so the last shard is read long after the upload has begun.
    await ctl.configure(throughput_bytes_per_second=1_000_000)
    files: dict[str, bytes | None] = {f"shard-{i}.bin": os.urandom(300_000) for i in range(4)}
    root = write_tree(tmp_path / "m", files)
    process = await start(
        cli_env, "import", str(root), "--chunk-size", "64KiB", "--concurrency", "1"
    )
    assert process.stderr is not None
    seen = []
    async for line in process.stderr:
        seen.append(line.decode())
        if "uploading" in seen[-1]:
            await asyncio.to_thread(append, root / "shard-3.bin", b"grown")
            break
    rest = await process.stderr.read()
    await process.wait()
    stderr = "".join(seen) + rest.decode()
    assert process.returncode == 8, stderr
    assert "shard-3.bin grew during the upload" in stderr


async def test_the_demo_imports_a_generated_model_folder(tmp_path: Path) -> None:
    done = await run(
        dict(os.environ),
        "demo", "--size", "3MiB", "--job-seconds", "0", "--dir", str(tmp_path), "--json",
    )  # fmt: skip
    assert done.code == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] is True
    assert data["files"] == 10
    folder = Path(data["folder"])
    assert (folder / "model-00003-of-00003.safetensors").is_file()
    assert (folder / ".git" / "HEAD").is_file()  # present, and left out of the tar
    assert "importing the folder itself" in done.stderr


async def test_a_manifest_may_list_folders(
    cli_env: dict[str, str], ctl: EmuControl, tmp_path: Path
) -> None:
    write_tree(tmp_path / "model-a", {"config.json": b"{}", "w.safetensors": b"a" * 3000})
    write_tree(tmp_path / "model-b", {"config.json": b"{}", "w.safetensors": b"b" * 3000})
    manifest = tmp_path / "models.txt"
    manifest.write_text("model-a\nmodel-b/\n")
    done = await run(cli_env, "import", "--manifest", str(manifest), "--json")
    assert done.code == 0, done.stderr
    rows = json.loads(done.stdout)["imports"]
    names = [(await ctl.model(row["modelId"]))["fileName"] for row in rows]
    assert names == ["model-a.tar", "model-b.tar"]
