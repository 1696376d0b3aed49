"""Click parameter types: byte sizes with units (``16MiB``) and shards (``2/8``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import click

from ..settings import Settings
from ..units import format_size, parse_size

__all__ = ["BYTE_SIZE", "CHUNK_SIZE", "SHARD", "ByteSize", "Shard", "ShardType", "parse_byte_size"]


def parse_byte_size(text: str) -> int:
    """``16MiB`` -> 16777216: the library's one size parser, and at least one byte."""
    size = parse_size(text)
    if size < 1:
        raise ValueError(f"size {text!r} must be at least 1 byte")
    return size


class ByteSize(click.ParamType):  # type: ignore[type-arg]  # generic only in click>=8.2
    """A byte count with an optional unit, within the bounds of a client setting if named."""

    name = "size"

    def __init__(self, setting: str | None = None):
        self.setting = setting

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            size = parse_byte_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if self.setting is not None:
            low, high = Settings.bounds(self.setting)
            if (low is not None and size < low) or (high is not None and size > high):
                self.fail(
                    f"{value!r} is not a size the client takes here: between "
                    f"{format_size(low or 0)} and {format_size(high or 0)}",
                    param,
                    ctx,
                )
        return size


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``: takes entries with ``i % count == index - 1``."""

    index: int
    count: int

    def takes(self, position: int) -> bool:
        """Whether the entry at 0-based ``position`` belongs to this shard."""
        return position % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class ShardType(click.ParamType):  # type: ignore[type-arg]
    """``K/N`` with 1 <= K <= N."""

    name = "K/N"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Shard:
        if isinstance(value, Shard):
            return value
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(value))
        if not match:
            self.fail(f"{value!r} is not K/N (e.g. 1/4)", param, ctx)
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or not 1 <= index <= count:
            self.fail(f"{value!r}: K must be between 1 and N, and N at least 1", param, ctx)
        return Shard(index, count)


BYTE_SIZE = ByteSize()
CHUNK_SIZE = ByteSize("chunk_size")
SHARD = ShardType()
