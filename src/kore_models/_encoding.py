"""Content-Encoding of response bodies, decoded incrementally with bounded memory.

How it works: sessions never decompress on their own (``auto_decompress=False``), because
aiohttp inflates each network read whole, so a small gzip "bomb" becomes gigabytes in
memory. :class:`BodyDecoder` inflates gzip and deflate bodies through a zlib
``decompressobj`` with ``max_length``, handing out at most one block at a time; any other
coding (br, zstd, compress, stacked codings) is refused with a clear error rather than
stored or parsed as if it were plain bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Iterator

import aiohttp

__all__ = [
    "API_ACCEPT_ENCODING",
    "BodyDecoder",
    "UnsupportedEncodingError",
    "read_error_text",
]

API_ACCEPT_ENCODING = "gzip, deflate"
"""What API requests accept: only what :class:`BodyDecoder` can inflate."""

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_IDENTITY = ("", "identity")


class UnsupportedEncodingError(ValueError):
    """A Content-Encoding this client cannot decode."""


def _codings(header: str | None) -> list[str]:
    return [
        c.strip().lower() for c in (header or "").split(",") if c.strip().lower() not in _IDENTITY
    ]


class BodyDecoder:
    """Decodes one response body; ``identity`` passes bytes through untouched."""

    def __init__(self, content_encoding: str | None) -> None:
        codings = _codings(content_encoding)
        if len(codings) > 1:
            raise UnsupportedEncodingError(f"stacked content codings ({', '.join(codings)})")
        self.coding = codings[0] if codings else "identity"
        if self.coding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise UnsupportedEncodingError(f"content coding {self.coding!r}")
        self._inflater: zlib._Decompress | None = None
        self._head = b""
        if self.coding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(_GZIP_WBITS)

    @property
    def identity(self) -> bool:
        """True when the body is not encoded."""
        return self.coding == "identity"

    @property
    def finished(self) -> bool:
        """True once a compressed stream reached its end marker (always True for identity)."""
        if self.identity:
            return True
        return self._inflater is not None and self._inflater.eof

    def _inflater_for(self, data: bytes) -> tuple[zlib._Decompress | None, bytes]:
        """The inflater and the bytes to feed it (None until the format is known)."""
        if self._inflater is not None:
            return self._inflater, data
        # "deflate" should be zlib-wrapped, but some servers send a raw deflate stream:
        # the first bytes tell, so they are held back until two have arrived
        head = self._head + data
        if len(head) < 2:
            self._head = head
            return None, b""
        self._head = b""
        self._inflater = zlib.decompressobj(
            zlib.MAX_WBITS if _looks_wrapped(head) else -zlib.MAX_WBITS
        )
        return self._inflater, head

    def _inflate(self, data: bytes, limit: int) -> Iterator[bytes]:
        """Inflate ``data`` in pieces of at most ``limit`` bytes, across gzip members."""
        inflater, pending = self._inflater_for(data)
        if inflater is None or (not pending and inflater.eof):
            return
        while True:
            out = inflater.decompress(pending, limit)
            pending = inflater.unconsumed_tail
            if out:
                yield out
            if inflater.eof:
                pending = inflater.unused_data
                if not pending:
                    return
                if self.coding == "deflate":
                    raise zlib.error("bytes after the end of the deflate stream")
                inflater = self._inflater = zlib.decompressobj(_GZIP_WBITS)  # next member
            elif not pending and len(out) < limit:
                return  # all input used and no output held back: wait for more

    def blocks(self, data: bytes, block_size: int) -> Iterator[bytes]:
        """The decoded bytes of ``data``, never more than ``block_size`` at a time.

        Raises :class:`zlib.error` for a corrupt stream.
        """
        if self.identity:
            if data:
                yield data
            return
        yield from self._inflate(data, block_size)

    def decode_bounded(self, data: bytes, room: int) -> bytes:
        """Decode ``data`` into at most ``room`` bytes; raises OverflowError beyond that."""
        if self.identity:
            if len(data) > room:
                raise OverflowError
            return data
        out = bytearray()
        for piece in self._inflate(data, room + 1 - len(out)):
            out += piece
            if len(out) > room:
                raise OverflowError
        return bytes(out)


def _looks_wrapped(head: bytes) -> bool:
    """True when ``head`` starts a zlib stream rather than a raw deflate one.

    The two header bytes are checked first; a raw stream can match them by chance, so a
    trial inflate of ``head`` (bounded) must also neither fail nor end early.
    """
    if head[0] & 0x0F != 8 or (head[0] << 8 | head[1]) % 31 != 0:
        return False
    trial = zlib.decompressobj(zlib.MAX_WBITS)
    try:
        trial.decompress(head, 64 * 1024)
    except zlib.error:
        return False
    return not (trial.eof and trial.unused_data)


async def read_error_text(resp: aiohttp.ClientResponse, limit: int) -> str:
    """At most ``limit`` decoded bytes of an error response's body, as text.

    Enough to find the server's message; the rest is never read (the connection is
    dropped), so an endless or inflating error body costs nothing. A body that cannot be
    read or decoded gives what was decoded so far.
    """
    decoded = bytearray()
    decoder: BodyDecoder | None = None
    with contextlib.suppress(
        aiohttp.ClientError, asyncio.TimeoutError, zlib.error, UnsupportedEncodingError
    ):
        decoder = BodyDecoder(resp.headers.get("Content-Encoding"))
        read = 0
        while read < limit and len(decoded) < limit:
            raw = await resp.content.read(limit - read)
            if not raw:
                break
            read += len(raw)
            for block in decoder.blocks(raw, limit):
                decoded += block[: limit - len(decoded)]
                if len(decoded) >= limit:
                    break
    return decoded.decode(resp.charset or "utf-8", errors="replace")
