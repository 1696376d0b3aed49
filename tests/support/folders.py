"""Helpers of the folder suite: model-like trees on disk and a byte-exact view of a tree.

- ``write_tree`` / ``model_files`` / ``pin_mtimes``: build folders with fixed mtimes.
- ``snapshot(root)``: every entry below ``root`` as (kind, mode, whole-second mtime,
  content), links followed, for comparing an extracted archive with its source.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

Snapshot = dict[str, tuple[str, int, int, bytes]]

FIXED_MTIME_NS = 1_700_000_000_123_456_789
LONG_DIR = "d" * 120
LONG_FILE = "f" * 255
NON_ASCII = "токенизатор-权重-é🙂.json"


def write_tree(root: Path, files: dict[str, bytes | None]) -> Path:
    """Create ``root`` with ``files`` (a None value makes an empty folder)."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        path = root / relative
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    return root


def pin_mtimes(root: Path, mtime_ns: int = FIXED_MTIME_NS) -> None:
    """Give every entry below ``root`` (and ``root``) the same mtime, deepest first."""
    for directory, dirs, files in os.walk(root, topdown=False):
        for name in (*files, *dirs):
            os.utime(os.path.join(directory, name), ns=(mtime_ns, mtime_ns), follow_symlinks=False)
    os.utime(root, ns=(mtime_ns, mtime_ns))


def snapshot(root: Path, *, skip: tuple[str, ...] = ()) -> Snapshot:
    """What an extracted tree must equal: kind, permission bits, mtime and bytes per path."""
    result: Snapshot = {}
    for directory, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in sorted(dirs) + sorted(files):
            if name in skip:
                continue
            path = os.path.join(directory, name)
            info = os.stat(path)
            relative = os.path.relpath(path, root)
            if stat.S_ISDIR(info.st_mode):
                result[relative] = ("dir", stat.S_IMODE(info.st_mode), 0, b"")
            else:
                content = Path(path).read_bytes()
                mtime = info.st_mtime_ns // 1_000_000_000
                result[relative] = ("file", stat.S_IMODE(info.st_mode), mtime, content)
    return result


def model_files() -> dict[str, bytes | None]:
    """The contents of the model-like folder (None is an empty folder)."""
    return {
        "config.json": b'{"model_type": "llama", "hidden_size": 64}\n',
        "generation_config.json": b"{}\n",
        "tokenizer.json": bytes(range(256)) * 40,
        "tokenizer_config.json": b'{"bos_token": "<s>"}\n',
        "model-00001-of-00002.safetensors": os.urandom(300_000),
        "model-00002-of-00002.safetensors": os.urandom(123_457),
        "model.safetensors.index.json": b'{"weight_map": {}}\n',
        "README.md": "# Modèle\n".encode(),
        "empty.txt": b"",
        "empty-folder": None,
        "nested/a/b/c/weights.bin": os.urandom(5000),
        "nested/a/empty-deep": None,
        f"{LONG_DIR}/{LONG_FILE}": b"long name\n",
        f"{LONG_DIR}/{LONG_DIR}/{LONG_DIR}/deep.txt": b"a path above 255 bytes\n",
        NON_ASCII: b'{"vocab": "\xc3\xa9"}\n',
        "données/модель.bin": os.urandom(1000),
        ".git/HEAD": b"ref: refs/heads/main\n",
        ".git/objects/ab/cdef": b"blob",
        "__pycache__/x.cpython-311.pyc": b"\x00",
    }
