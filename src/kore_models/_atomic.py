"""Atomic JSON files: write a temporary file beside the target, then rename it over."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["write_json_atomically"]


def write_json_atomically(
    path: Path, document: Any, *, durable: bool = True, pretty: bool = False
) -> None:
    """Replace ``path`` with ``document`` so that readers see the old or the new file whole.

    ``durable`` fsyncs before the rename, so the new content also survives a power loss.
    Blocking: call it in a thread from async code.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if pretty:
                json.dump(document, handle, indent=2, sort_keys=True)
                handle.write("\n")
            else:
                json.dump(document, handle, separators=(",", ":"))
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
