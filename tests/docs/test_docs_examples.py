"""The Python programs shown in README.md and docs/ run, unchanged, against a real emulator.

Each fenced ``python`` block that is a whole program (it ends in ``asyncio.run(...)``) is
written to a file and run in a child process, with ``KORE_HOST`` and ``KORE_API_KEY``
pointing at an emulator subprocess on loopback and a small real tar archive under every
``*.tar`` name the program opens. A page edit that breaks an example fails here.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kore_models.emulator.process import EmulatorProcess

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["README.md", "docs/index.md", "docs/python-api.md"]
_FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def whole_programs(page: str) -> list[str]:
    """The fenced Python blocks of ``page`` that are complete programs."""
    text = (ROOT / page).read_text(encoding="utf-8")
    return [block for block in _FENCE.findall(text) if "asyncio.run(" in block]


EXAMPLES = [
    pytest.param(block, id=f"{page}#{number}")
    for page in PAGES
    for number, block in enumerate(whole_programs(page), start=1)
]


def write_model_archive(path: Path) -> None:
    """A small tar the emulator accepts as a model: a config and some weights."""
    with tarfile.open(path, "w") as archive:
        for name, data in (("model/config.json", b"{}"), ("model/weights.bin", os.urandom(4096))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path_factory.mktemp("emulator"), "--job-seconds", "0") as emu:
        yield emu


def test_every_page_has_a_program_to_run() -> None:
    found = {page: len(whole_programs(page)) for page in PAGES}
    assert all(found.values()), f"a page lost its example program: {found}"


@pytest.mark.parametrize("program", EXAMPLES)
def test_the_example_program_runs(program: str, emulator: EmulatorProcess, tmp_path: Path) -> None:
    for name in set(re.findall(r"[\"']([\w.-]+\.tar)[\"']", program)):
        if not (tmp_path / name).exists():
            write_model_archive(tmp_path / name)
    script = tmp_path / "example.py"
    script.write_text(program, encoding="utf-8")
    env = {
        **os.environ,
        "KORE_HOST": emulator.url,
        "KORE_API_KEY": emulator.api_key,
        "KORE_STATE_DIR": str(tmp_path / "state"),
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "SUCCESS" in done.stdout, done.stdout
