"""Fixtures of the folder suite: ``model_folder``, a Hugging Face-like folder on disk.

It has nested and empty folders, empty files, long and non-ASCII names, an internal
symlink, a few modes, fixed mtimes and a default-excluded ``.git/`` and ``__pycache__/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.folders import model_files, pin_mtimes, write_tree


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
