"""Byte units: ``MiB``, the one size parser (sizes and rates) and the one size formatter."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from pydantic import ByteSize, TypeAdapter, ValidationError

__all__ = ["GiB", "KiB", "MiB", "format_size", "parse_rate", "parse_size"]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

_BYTE_SIZE: TypeAdapter[ByteSize] = TypeAdapter(ByteSize)
# Single-letter units as curl, rsync and the first releases of this CLI read them: binary.
_NUMBER_AND_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_SHORTHAND = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT])\s*$")


def parse_size(value: Any, *, what: str = "size") -> int:
    """A whole number of bytes from an int or a text such as ``16MiB``, ``16 MB`` or ``8M``.

    Units are pydantic's ``ByteSize`` units (``KB``/``MB``/``GB`` are powers of 1000,
    ``KiB``/``MiB``/``GiB`` powers of 1024) plus the single letters ``K``/``M``/``G``/``T``,
    read as powers of 1024. Raises ``ValueError`` with a message naming ``what``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number of bytes, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a number of bytes or a text such as 16MiB, not {value!r}")
    text = value.strip()
    if re.fullmatch(r"\d+\.\d+", text) and not float(text).is_integer():
        raise ValueError(f"{what} {value!r} must be a whole number of bytes")
    shorthand = _SHORTHAND.match(text)
    if shorthand:
        text = f"{shorthand.group(1)}{shorthand.group(2).upper()}iB"
    try:
        size = int(_BYTE_SIZE.validate_python(text))
        # ByteSize truncates (1.3B -> 1): refuse a fraction of a byte instead
        number = _NUMBER_AND_UNIT.match(text)
        if number and number.group(2):
            unit = int(_BYTE_SIZE.validate_python(f"1{number.group(2)}"))
            if Decimal(number.group(1)) * unit != size:
                raise ValueError(f"{what} {value!r} must be a whole number of bytes")
    except ValidationError:
        raise ValueError(
            f"{what} {value!r} is not a size; use e.g. 16MiB, 512KiB, 50MB, 8M or 1048576"
        ) from None
    return size


def parse_rate(value: Any, *, what: str = "rate") -> int:
    """Bytes per second from an int or a text such as ``50MB/s``, ``50MB`` or ``10MiB/s``."""
    if isinstance(value, str):
        value = re.sub(r"\s*/\s*s(ec)?\s*$", "", value.strip(), flags=re.IGNORECASE)
    return parse_size(value, what=what)


def format_size(count: float) -> str:
    """``1536`` -> ``1.5 KiB``: binary units, labelled, one decimal above bytes."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
