"""The pure chunk planner: split [0, size) into numbered (offset, length) chunks.

The default chunk is 16 MiB: below the 25 MB single-request limit that is the only size
the docs state (see the API notes in the docs), large enough that per-request latency is small
next to transfer time. When the chunk count would exceed ``max_chunks`` the chunk size is
raised (to a whole MiB) until it fits, up to ``max_chunk_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigurationError
from ..units import MiB

__all__ = ["Chunk", "ChunkPlan", "plan_chunks"]


@dataclass(frozen=True)
class Chunk:
    """One chunk: its 0-based number and its byte range in the file."""

    number: int
    offset: int
    length: int

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.offset + self.length


@dataclass(frozen=True)
class ChunkPlan:
    """Chunks that cover [0, file_size) exactly, in order, without gaps or overlap."""

    file_size: int
    chunk_size: int
    chunks: tuple[Chunk, ...]

    @property
    def total_chunks(self) -> int:
        """How many chunks the plan has."""
        return len(self.chunks)


def plan_chunks(
    file_size: int,
    chunk_size: int,
    *,
    max_chunks: int,
    max_chunk_size: int,
) -> ChunkPlan:
    """Plan the chunks of a ``file_size``-byte file; raise ConfigurationError if impossible."""
    for name, value in (
        ("file size", file_size),
        ("chunk size", chunk_size),
        ("max chunks", max_chunks),
        ("max chunk size", max_chunk_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be a positive whole number, not {value!r}")
    if chunk_size > max_chunk_size:
        raise ConfigurationError(
            f"chunk size {chunk_size} is above the maximum of {max_chunk_size} bytes"
        )
    size = chunk_size
    if -(-file_size // size) > max_chunks:
        needed = -(-file_size // max_chunks)
        size = -(-needed // MiB) * MiB
        if size > max_chunk_size:
            raise ConfigurationError(
                f"a {file_size}-byte file needs more than {max_chunks} chunks of "
                f"{max_chunk_size} bytes; it is too large to import"
            )
    count = -(-file_size // size)
    chunks = tuple(
        Chunk(number=i, offset=i * size, length=min(size, file_size - i * size))
        for i in range(count)
    )
    return ChunkPlan(file_size=file_size, chunk_size=size, chunks=chunks)
