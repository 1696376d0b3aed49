"""Checks on the local file before an import sends anything, and its declared extension."""

from __future__ import annotations

import stat as stat_module
from pathlib import Path

from ..errors import LocalFileError

__all__ = ["check_local_file", "file_extension"]


def check_local_file(path: Path) -> int:
    """Return the size of ``path``, or raise LocalFileError saying why it cannot be sent."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise LocalFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise LocalFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat_module.S_ISDIR(info.st_mode):
        raise LocalFileError(f"{path}: is a directory; give the model archive file")
    if not stat_module.S_ISREG(info.st_mode):
        raise LocalFileError(f"{path}: is not a regular file")
    if info.st_size == 0:
        raise LocalFileError(f"{path}: is empty (0 bytes); nothing to import")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise LocalFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return info.st_size


def file_extension(path: Path) -> str:
    """The extension the session is started with (``tar``, ``zip``, ``tar.gz``, ...)."""
    name = path.name.lower()
    for double in (".tar.gz", ".tar.bz2", ".tar.xz"):
        if name.endswith(double):
            return double[1:]
    return path.suffix[1:] or "bin"
