"""Fixtures of the folder suite: a Hugging Face-like folder and a live emulator.

- ``model_folder``: nested and empty folders, empty files, long and non-ASCII names, an
  internal symlink, a few modes, fixed mtimes, a default-excluded ``.git/``.
- ``emu`` / ``ctl`` / ``kore``: the emulator on a loopback port, its control API, and a
  client with 64 KiB chunks sent one at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kore_models import KoreClient
from kore_models.emulator import RunningEmulator
from tests.support.folders import model_files, pin_mtimes, write_tree
from tests.support.transfer import CHUNK, KEY


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    """A model-like folder with an internal symlink, fixed mtimes and a few modes."""
    root = write_tree(tmp_path / "my-model", model_files())
    (root / "tokenizer.model").symlink_to("tokenizer.json")
    (root / "run.sh").write_bytes(b"#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    (root / "config.json").chmod(0o600)
    pin_mtimes(root)
    return root


@pytest.fixture
async def kore(emu: RunningEmulator, tmp_path: Path) -> AsyncIterator[KoreClient]:
    """A client with 64 KiB chunks, one in flight (so chunk order is the plan's order)."""
    client = KoreClient(
        host=emu.url,
        api_key=KEY,
        state_dir=tmp_path / "state",
        retry_sleeps=False,
        chunk_size=CHUNK,
        concurrency=1,
        read_block_size=16 * 1024,
        poll_initial=0.02,
        poll_max=0.1,
        poll_min_interval=0.02,
    )
    yield client
    await client.aclose()
