"""A model folder's sorted, validated listing and its gitignore-style filter.

How it works: :func:`list_folder` walks the folder once, depth first, with each directory's
names sorted by their UTF-8 bytes, so the listing (and the tar built from it) does not
depend on the order the file system returns names in. Every kept entry is checked before
any request is sent: only regular files and directories; a symlink is followed only when
it resolves inside the folder (to a file, or to a directory that is not one of its own
ancestors); each regular file is opened and its first block read, which proves it is
readable and feeds the fingerprint (:mod:`.listing_changes`). A file with more than one
hard link is refused: two names inside the folder would store its bytes twice, and tar's
hard-link entries are not something the import API documents accepting.
All problems found are reported together in one :class:`LocalFileError` naming each path.
Entries the filter excludes are never checked, so a ``.git/`` folder full of sockets or
hard links does not stop an import.
"""

from __future__ import annotations

import os
import stat as stat_module
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pathspec

from ..errors import ConfigurationError, LocalFileError

__all__ = [
    "DEFAULT_EXCLUDES",
    "MAX_NAME_BYTES",
    "FolderEntry",
    "FolderFilter",
    "FolderListing",
    "display_path",
    "list_folder",
    "name_problem",
]

DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git/",
    ".cache/",
    "__pycache__/",
    ".ipynb_checkpoints/",
    ".DS_Store",
)
"""Left out unless ``--include`` names them: version control, tool caches, OS litter."""

MAX_NAME_BYTES = 255
"""The longest file name (one path component) most file systems accept."""

_HEAD_BYTES = 4096
_MAX_PROBLEMS_SHOWN = 20


class FolderFilter:
    """Which relative paths are left out: defaults, then ``exclude``, then ``include``.

    Patterns follow .gitignore: ``dir/`` matches a folder and all below it, a pattern
    without a slash matches at any depth, ``**`` spans folders. The last rule that
    matches a path decides, and every ``include`` comes after every ``exclude``, so an
    include always wins: ``exclude=["*"], include=["*.json", "*.safetensors"]`` keeps
    only those, and ``include=[".cache/"]`` brings back a default exclusion.
    """

    def __init__(
        self,
        exclude: Iterable[str] = (),
        include: Iterable[str] = (),
        *,
        default_excludes: bool = True,
    ) -> None:
        self.exclude = (*(DEFAULT_EXCLUDES if default_excludes else ()), *exclude)
        self.include = tuple(include)
        for pattern in (*self.exclude, *self.include):
            if not pattern.strip() or pattern.lstrip().startswith(("#", "!")):
                raise ConfigurationError(
                    f"{pattern!r} is not a usable pattern (empty, a comment, or starting "
                    "with '!': use --include to bring paths back)"
                )
        lines = [*self.exclude, *(f"!{pattern}" for pattern in self.include)]
        try:
            self._spec = pathspec.GitIgnoreSpec.from_lines(lines)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"invalid exclude/include pattern: {exc}") from None

    @property
    def can_reinclude(self) -> bool:
        """Whether a path below an excluded folder may still be kept."""
        return bool(self.include)

    def excludes(self, relative: str, *, is_dir: bool) -> bool:
        """Whether ``relative`` (a POSIX path inside the folder) is left out."""
        return bool(self._spec.match_file(f"{relative}/" if is_dir else relative))


@dataclass(frozen=True, slots=True)
class FolderEntry:
    """One member: its POSIX path in the folder and what the archive records of it.

    ``source`` is the absolute path that is read; ``device``/``inode`` identify the file
    read at listing time, so a file replaced later is noticed.
    """

    path: str
    is_dir: bool
    size: int
    mode: int
    mtime_ns: int
    source: str
    device: int = 0
    inode: int = 0
    head_crc32: int = 0


@dataclass(frozen=True)
class FolderListing:
    """The sorted entries of a folder, parents before their contents."""

    root: Path
    entries: tuple[FolderEntry, ...]

    @property
    def files(self) -> tuple[FolderEntry, ...]:
        """The regular files, in archive order."""
        return tuple(entry for entry in self.entries if not entry.is_dir)

    @property
    def content_bytes(self) -> int:
        """The sum of the files' sizes (the archive adds headers and padding)."""
        return sum(entry.size for entry in self.entries)


def display_path(path: bytes | str) -> str:
    """A printable path: bytes that are not UTF-8 shown as ``\\xNN`` escapes."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", "backslashreplace")


def name_problem(name: bytes) -> str | None:
    """Why a single file name cannot go into the archive, or None when it can."""
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return "has a name that is not valid UTF-8 (rename it)"
    if len(name) > MAX_NAME_BYTES:
        return f"has a {len(name)}-byte name, above the {MAX_NAME_BYTES}-byte limit"
    return None


def list_folder(root: str | os.PathLike[str], rules: FolderFilter | None = None) -> FolderListing:
    """Walk and check ``root``; raise LocalFileError listing every problem (blocking)."""
    return _Walker(Path(root), rules or FolderFilter()).run()


class _Walker:
    """One walk of one folder; collects entries and problems."""

    def __init__(self, root: Path, rules: FolderFilter) -> None:
        self.root = root
        self.rules = rules
        self.entries: list[FolderEntry] = []
        self.problems: list[str] = []
        self.excluded = 0

    def run(self) -> FolderListing:
        shown = display_path(str(self.root))
        try:
            info = os.lstat(self.root)
        except FileNotFoundError:
            raise LocalFileError(f"{shown}: no such folder") from None
        except OSError as exc:
            raise LocalFileError(f"{shown}: cannot be read ({exc.strerror or exc})") from None
        if stat_module.S_ISLNK(info.st_mode):
            target = os.path.realpath(self.root)
            raise LocalFileError(
                f"{shown}: is a symbolic link to {display_path(target)}; give the folder "
                "itself, so what is archived is not decided by a link"
            )
        if not stat_module.S_ISDIR(info.st_mode):
            raise LocalFileError(f"{shown}: is not a folder")
        self.raw_root = os.fsencode(self.root)
        self.real_root = os.path.realpath(self.raw_root)
        self._walk(self.raw_root, "", [(info.st_dev, info.st_ino)])
        if self.problems:
            count = len(self.problems)
            shown_problems = self.problems[:_MAX_PROBLEMS_SHOWN]
            if count > _MAX_PROBLEMS_SHOWN:
                shown_problems.append(f"and {count - _MAX_PROBLEMS_SHOWN} more")
            noun = "entry" if count == 1 else "entries"
            raise LocalFileError(
                f"{shown}: {count} {noun} cannot be archived: {'; '.join(shown_problems)}. "
                "Only regular files, folders and links that stay inside the folder can be; "
                "leave the others out with --exclude"
            )
        if not any(not entry.is_dir for entry in self.entries):
            if self.excluded:
                raise LocalFileError(
                    f"{shown}: every file in the folder is excluded ({self.excluded} "
                    f"left out by {' '.join(self.rules.exclude)}); nothing to import"
                )
            raise LocalFileError(f"{shown}: the folder has no files; nothing to import")
        return FolderListing(root=self.root, entries=tuple(self.entries))

    def _problem(self, path: bytes, reason: str) -> None:
        """Record ``reason`` for ``path``, named relative to the folder (shorter to read)."""
        relative = path[len(self.raw_root) :].lstrip(b"/") or b"."
        self.problems.append(f"{display_path(relative)} {reason}")

    def _walk(self, directory: bytes, prefix: str, ancestors: list[tuple[int, int]]) -> bool:
        """Add the kept entries below ``directory``; return whether any was added."""
        try:
            with os.scandir(directory) as scan:
                children = sorted(scan, key=lambda child: child.name)
        except OSError as exc:
            self._problem(directory, f"is a folder that cannot be read ({exc.strerror or exc})")
            return False
        kept_any = False
        for child in children:
            name = child.name
            relative = prefix + name.decode("utf-8", "surrogateescape")
            kept_any |= self._visit(child.path, name, relative, ancestors)
        return kept_any

    def _visit(
        self, path: bytes, name: bytes, relative: str, ancestors: list[tuple[int, int]]
    ) -> bool:
        try:
            info = os.lstat(path)
        except OSError as exc:
            self._problem(path, f"cannot be read ({exc.strerror or exc})")
            return False
        link = stat_module.S_ISLNK(info.st_mode)
        if link:
            try:
                info = os.stat(path)
            except OSError as exc:
                if self.rules.excludes(relative, is_dir=False):
                    self.excluded += 1
                    return False
                self._problem(path, _broken_link_reason(exc))
                return False
        is_dir = stat_module.S_ISDIR(info.st_mode)
        if self.rules.excludes(relative, is_dir=is_dir):
            if is_dir and not link and self.rules.can_reinclude:
                return self._directory(path, name, relative, info, ancestors, excluded=True)
            self.excluded += 1
            return False
        problem = name_problem(name)
        if problem:
            self._problem(path, problem)
            return False
        if link:
            target = os.path.realpath(path)
            if not _is_inside(target, self.real_root):
                self._problem(
                    path,
                    f"is a symbolic link to {display_path(target)}, outside the folder",
                )
                return False
        if is_dir:
            if (info.st_dev, info.st_ino) in ancestors:
                self._problem(path, "is a symbolic link loop (it leads back to a folder above)")
                return False
            return self._directory(path, name, relative, info, ancestors, excluded=False)
        if not stat_module.S_ISREG(info.st_mode):
            self._problem(path, f"is {_kind(info.st_mode)}")
            return False
        if info.st_nlink > 1:
            self._problem(
                path,
                f"has {info.st_nlink} hard links (copy it to make it a file of its own)",
            )
            return False
        return self._file(path, relative, info)

    def _directory(
        self,
        path: bytes,
        name: bytes,
        relative: str,
        info: os.stat_result,
        ancestors: list[tuple[int, int]],
        *,
        excluded: bool,
    ) -> bool:
        position = len(self.entries)
        if not excluded:
            self.entries.append(_entry(relative, path, info, is_dir=True))
        ancestors.append((info.st_dev, info.st_ino))
        kept_below = self._walk(path, relative + "/", ancestors)
        ancestors.pop()
        if excluded and kept_below:
            # A file was brought back by --include: its folder must precede it.
            problem = name_problem(name)
            if problem:
                self._problem(path, problem)
            self.entries.insert(position, _entry(relative, path, info, is_dir=True))
        return kept_below or not excluded

    def _file(self, path: bytes, relative: str, info: os.stat_result) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._problem(path, f"cannot be read ({exc.strerror or exc})")
            return False
        try:
            head = os.pread(fd, _HEAD_BYTES, 0)
        except OSError as exc:
            self._problem(path, f"cannot be read ({exc.strerror or exc})")
            return False
        finally:
            os.close(fd)
        checksum = zlib.crc32(head)
        self.entries.append(_entry(relative, path, info, is_dir=False, head_crc32=checksum))
        return True


def _entry(
    relative: str, path: bytes, info: os.stat_result, *, is_dir: bool, head_crc32: int = 0
) -> FolderEntry:
    return FolderEntry(
        path=relative,
        is_dir=is_dir,
        size=0 if is_dir else info.st_size,
        mode=stat_module.S_IMODE(info.st_mode) & 0o777,
        mtime_ns=info.st_mtime_ns,
        source=os.fsdecode(path),
        device=info.st_dev,
        inode=info.st_ino,
        head_crc32=head_crc32,
    )


def _is_inside(target: bytes, root: bytes) -> bool:
    return target == root or target.startswith(root.rstrip(b"/") + b"/")


def _broken_link_reason(exc: OSError) -> str:
    if exc.errno == 40:  # ELOOP
        return "is a symbolic link loop (the link leads back to itself)"
    return f"is a symbolic link to nothing ({exc.strerror or exc})"


def _kind(mode: int) -> str:
    if stat_module.S_ISFIFO(mode):
        return "a named pipe (fifo)"
    if stat_module.S_ISSOCK(mode):
        return "a socket"
    if stat_module.S_ISCHR(mode) or stat_module.S_ISBLK(mode):
        return "a device"
    return "not a regular file"
