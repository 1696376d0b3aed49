"""Bulk-import manifests (lines, JSON or CSV) and the state file that lets a re-run skip work."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..toolkit import write_json_atomically

__all__ = ["Entry", "ManifestError", "StateFile", "parse_manifest", "state_path_for"]

_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n", ""}


class ManifestError(ConfigurationError):
    """The manifest has bad entries; ``problems`` lists them, one per line."""

    def __init__(self, manifest: Path, problems: list[str]):
        self.problems = problems
        head = f"the manifest {manifest} has {len(problems)} bad entr"
        head += "y" if len(problems) == 1 else "ies"
        super().__init__(f"{head}: " + "; ".join(problems[:20]))


@dataclass(frozen=True)
class Entry:
    """One file to import; ``where`` names its line for messages."""

    path: Path
    is_adapter: bool = False
    where: str = ""


def _adapter_flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _from_lines(text: str) -> Iterator[tuple[str, Any, Any]]:
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield f"line {number}", line, False


def _from_json(text: str) -> Iterator[tuple[str, Any, Any]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("files"), list):
        data = data["files"]
    if not isinstance(data, list):
        raise ValueError('JSON manifests are a list of {"path": ..., "isAdapter": ...}')
    for number, item in enumerate(data, 1):
        where = f"entry {number}"
        if isinstance(item, str):
            yield where, item, False
        elif isinstance(item, dict):
            unknown = set(item) - {"path", "isAdapter"}
            if unknown:
                yield where, None, f"unknown key(s) {sorted(unknown)}"
            else:
                yield where, item.get("path"), item.get("isAdapter", False)
        else:
            yield where, None, 'expected {"path": ..., "isAdapter": ...}'


def _from_csv(text: str) -> Iterator[tuple[str, Any, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in reader.fieldnames or []]
    if "path" not in fields or set(fields) - {"path", "isAdapter"}:
        raise ValueError("a CSV manifest needs the header path,isAdapter (isAdapter optional)")
    reader.fieldnames = fields
    for row in reader:
        where = f"line {reader.line_num}"
        path = (row.get("path") or "").strip()
        if not path and not any((v or "").strip() for v in row.values()):
            continue
        if path.startswith("#"):
            continue
        if None in row:
            yield where, None, "too many columns"
        else:
            yield where, path, row.get("isAdapter")


def _format_of(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".json" or text.lstrip().startswith(("[", "{")):
        return "json"
    if suffix == ".csv":
        return "csv"
    return "lines"


def parse_manifest(manifest: Path) -> list[Entry]:
    """Every entry of ``manifest`` (paths resolved against its folder), or ManifestError."""
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the manifest {manifest}: {exc.strerror or exc}"
        ) from None
    kind = _format_of(manifest, text)
    reader = {"json": _from_json, "csv": _from_csv, "lines": _from_lines}[kind]
    base = manifest.resolve().parent
    entries: list[Entry] = []
    problems: list[str] = []
    seen: dict[Path, str] = {}
    try:
        rows = list(reader(text))
    except ValueError as exc:
        raise ManifestError(manifest, [str(exc)]) from None
    for where, raw_path, raw_flag in rows:
        if raw_path is None:
            problems.append(f"{where}: {raw_flag}")
            continue
        if not isinstance(raw_path, str) or not raw_path.strip():
            problems.append(f"{where}: path must be a non-empty string")
            continue
        flag = _adapter_flag(raw_flag)
        if flag is None:
            problems.append(f"{where}: isAdapter must be true or false, not {raw_flag!r}")
            continue
        path = Path(os.path.expanduser(raw_path.strip()))
        path = path if path.is_absolute() else base / path
        path = Path(os.path.normpath(path))
        if path in seen:
            problems.append(f"{where}: {raw_path} is listed twice (also {seen[path]})")
            continue
        seen[path] = where
        entries.append(Entry(path=path, is_adapter=flag, where=where))
    if problems:
        raise ManifestError(manifest, problems)
    if not entries:
        raise ManifestError(manifest, ["no entries"])
    return entries


def state_path_for(manifest: Path) -> Path:
    """``<manifest>.state.json`` beside the manifest."""
    return manifest.with_name(manifest.name + ".state.json")


def file_identity(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of ``path``, or None when it cannot be stat'ed."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


class StateFile:
    """Finished manifest entries, keyed by absolute path; merged under a lock, written atomically.

    Several processes (shards on one machine) may share it: each write takes an exclusive
    ``flock`` on ``<state>.lock``, re-reads the file, merges its entry and replaces the file.
    """

    VERSION = 1

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the state file {self.path}: {exc}") from None
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            raise ConfigurationError(f"the state file {self.path} is not a kore-models state")
        return {k: v for k, v in entries.items() if isinstance(v, dict)}

    def load(self) -> StateFile:
        """Read the file (missing = empty)."""
        self.entries = self._read()
        return self

    def done(self, entry: Entry) -> dict[str, Any] | None:
        """The record of ``entry`` if it was imported and the file is unchanged since."""
        record = self.entries.get(str(entry.path))
        if record is None or record.get("isAdapter", False) != entry.is_adapter:
            return None
        identity = file_identity(entry.path)
        if identity is not None and (record.get("size"), record.get("mtimeNs")) != identity:
            return None
        return record

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.path.with_name(self.path.name + ".lock")
        with open(lock, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def record(self, entry: Entry, result: dict[str, Any]) -> None:
        """Merge ``entry``'s result into the file (blocking; run it in a thread)."""
        identity = file_identity(entry.path) or (None, None)
        row = {
            "path": str(entry.path),
            "isAdapter": entry.is_adapter,
            "size": identity[0],
            "mtimeNs": identity[1],
            "modelId": result.get("modelId"),
            "dockStatusId": result.get("dockStatusId"),
            "status": result.get("status"),
            "importedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with self._locked():
            entries = self._read()
            entries[str(entry.path)] = row
            document = {"version": self.VERSION, "entries": entries}
            write_json_atomically(self.path, document, pretty=True)
            self.entries = entries
