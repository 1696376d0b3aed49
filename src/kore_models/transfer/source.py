"""What an import sends: a file as it is, or a folder (or lone model file) as a virtual tar.

How it works: :func:`prepare_source` (blocking: run it in a thread) decides before any
request. An archive file is sent as it is. A folder is listed and checked
(:mod:`.folder`) and becomes a :class:`~.tarstream.TarArchive` named ``<folder>.tar``. A
lone model file (``.safetensors``, ``.gguf``, ...) is refused with a hint, since the
server wants an archive, unless ``as_tar`` asks for a one-member tar. The fingerprint
the journal keeps is the file's, or for a tar: its size, the newest mtime and the
listing's digest; :meth:`UploadSource.check_unchanged` lists the folder again before
``complete`` and names what was added, removed or changed.
"""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .._body import FileSlice
from ..errors import FileChangedError, LocalFileError
from .folder import (
    FolderEntry,
    FolderFilter,
    FolderListing,
    display_path,
    list_folder,
    name_problem,
)
from .journal import Fingerprint, fingerprint_file
from .listing_changes import describe_changes, fingerprint_listing
from .localfile import check_local_file, file_extension
from .plan import Chunk
from .tarstream import TarArchive

__all__ = ["MODEL_FILE_SUFFIXES", "UploadSource", "prepare_source"]

MODEL_FILE_SUFFIXES = frozenset(
    {
        ".safetensors",
        ".gguf",
        ".ggml",
        ".bin",
        ".pt",
        ".pth",
        ".ckpt",
        ".onnx",
        ".h5",
        ".keras",
        ".pb",
        ".tflite",
        ".msgpack",
        ".npz",
        ".mlmodel",
    }
)
"""Weights and model formats that are not archives: refused alone without ``as_tar``."""


@dataclass(frozen=True)
class UploadSource:
    """The bytes of one import: ``size`` bytes named ``upload_name``."""

    path: Path
    upload_name: str
    extension: str
    size: int
    archive: TarArchive | None = None
    rules: FolderFilter | None = field(default=None, repr=False)

    @property
    def listing(self) -> FolderListing | None:
        """The members of the virtual tar (None for a file sent as it is)."""
        return self.archive.listing if self.archive is not None else None

    def fingerprint(self) -> Fingerprint:
        """What the journal trusts (blocking): see the module docstring."""
        if self.archive is None:
            return fingerprint_file(self.path)
        listing = self.archive.listing
        return Fingerprint(
            size=self.size,
            mtime_ns=max(entry.mtime_ns for entry in listing.entries),
            sampled_sha256=fingerprint_listing(listing),
        )

    def body(self, chunk: Chunk, fingerprint: Fingerprint) -> FileSlice:
        """The request body of ``chunk``: a file slice, or a range of the virtual tar."""
        if self.archive is None:
            return FileSlice(
                self.path,
                chunk.offset,
                chunk.length,
                file_size=fingerprint.size,
                mtime_ns=fingerprint.mtime_ns,
            )
        return FileSlice(self.path, chunk.offset, chunk.length, source=self.archive)

    def check_unchanged(self, fingerprint: Fingerprint) -> None:
        """Raise FileChangedError when the file or folder differs from ``fingerprint``."""
        if self.archive is None:
            if fingerprint_file(self.path) != fingerprint:
                raise FileChangedError(
                    f"{self.path} changed while it was being uploaded; the import was stopped"
                )
            return
        before = self.archive.listing
        try:
            now = _relist(before, self.rules)
        except LocalFileError as exc:
            raise FileChangedError(
                f"{self.path} changed while it was being uploaded ({exc}); the import was stopped"
            ) from None
        if fingerprint_listing(now) != fingerprint.sampled_sha256:
            raise FileChangedError(
                f"{display_path(str(self.path))} changed while it was being uploaded "
                f"({describe_changes(before.entries, now.entries)}); the import was stopped"
            )


def _relist(before: FolderListing, rules: FolderFilter | None) -> FolderListing:
    if rules is None:  # a lone file sent as a one-member tar
        return _single_file_listing(Path(before.entries[0].source))
    return list_folder(before.root, rules)


def prepare_source(
    path: Path,
    *,
    exclude: Iterable[str] = (),
    include: Iterable[str] = (),
    default_excludes: bool = True,
    as_tar: bool = False,
) -> UploadSource:
    """Check ``path`` and decide how it is sent (blocking); LocalFileError says why not."""
    try:
        info = os.lstat(path)
    except OSError:
        info = None
    if info is not None and (
        stat_module.S_ISDIR(info.st_mode)
        or (stat_module.S_ISLNK(info.st_mode) and os.path.isdir(path))
    ):
        stem = _tar_stem(path)
        rules = FolderFilter(exclude, include, default_excludes=default_excludes)
        archive = TarArchive(list_folder(path, rules))
        return UploadSource(path, f"{stem}.tar", "tar", archive.size, archive=archive, rules=rules)
    size = check_local_file(path)
    suffix = path.suffix.lower()
    if as_tar:
        archive = TarArchive(_single_file_listing(path))
        return UploadSource(path, f"{path.stem or path.name}.tar", "tar", archive.size, archive)
    if suffix in MODEL_FILE_SUFFIXES:
        raise LocalFileError(
            f"{path}: is a single {suffix} model file, but the server imports an archive; "
            "import the folder it belongs to (config and tokenizer files included), or send "
            "this file alone as a one-member tar with --as-tar (as_tar=True)"
        )
    return UploadSource(path, path.name, file_extension(path), size)


def _tar_stem(path: Path) -> str:
    """The folder's own name, which names the upload; it must be sendable as text."""
    name = Path(os.path.abspath(path)).name
    problem = name_problem(os.fsencode(name)) if name else None
    if problem:
        raise LocalFileError(f"{display_path(str(path))}: the folder {problem}")
    return name or "folder"


def _single_file_listing(path: Path) -> FolderListing:
    check_local_file(path)
    info = os.stat(path)
    problem = name_problem(os.fsencode(path.name))
    if problem:
        raise LocalFileError(f"{display_path(str(path))}: {problem}")
    entry = FolderEntry(
        path=path.name,
        is_dir=False,
        size=info.st_size,
        mode=stat_module.S_IMODE(info.st_mode) & 0o777,
        mtime_ns=info.st_mtime_ns,
        source=str(path),
        device=info.st_dev,
        inode=info.st_ino,
    )
    return FolderListing(root=path.parent, entries=(entry,))
