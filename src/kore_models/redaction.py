"""Redaction of secrets (the API key, proxy passwords, URL tokens) from any text or data."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["redact", "redact_data"]

_WORD_CHAR = r"[A-Za-z0-9]"
_SHORT_SECRET = 12


@functools.lru_cache(maxsize=64)
def _secret_pattern(secret: str) -> re.Pattern[str]:
    """Match ``secret`` raw, percent-encoded or with JSON ``\\uXXXX`` escapes.

    A short secret (under 12 characters) is matched only where it stands as a token of its
    own (no letter or digit glued to either end), so a one-letter key cannot eat letters
    out of ordinary words; a real key is long and is matched wherever it appears.
    """

    def char(ch: str) -> str:
        escaped = re.escape(ch)
        json_escape = r"\\u" + "".join(f"[{d.lower()}{d.upper()}]" for d in f"{ord(ch):04x}")
        percent = "".join(
            "%" + "".join(f"[{d.lower()}{d.upper()}]" for d in f"{b:02x}")
            for b in ch.encode("utf-8")
        )
        return f"(?:{escaped}|{json_escape}|{percent})"

    body = "".join(char(ch) for ch in secret)
    if len(secret) >= _SHORT_SECRET:
        return re.compile(body)
    return re.compile(f"(?<!{_WORD_CHAR}){body}(?!{_WORD_CHAR})")


def redact(text: str, *secrets: str | None) -> str:
    """Return ``text`` with every non-empty secret replaced by ``***``.

    Catches the secret as sent, percent-encoded and JSON-escaped (a server that reflects
    ``kg\\u002d...`` in an error body), and never cuts letters out of other words.
    """
    for secret in secrets:
        if not secret:
            continue
        could_hide = secret in text or "\\u" in text or "%" in text
        if could_hide:
            text = _secret_pattern(secret).sub("***", text)
    return text


def redact_data(data: Any, *secrets: str | None) -> Any:
    """``data`` (parsed JSON) with :func:`redact` applied to every string, keys included."""
    if isinstance(data, str):
        return redact(data, *secrets)
    if isinstance(data, Mapping):
        return {redact(str(k), *secrets): redact_data(v, *secrets) for k, v in data.items()}
    if isinstance(data, list):
        return [redact_data(item, *secrets) for item in data]
    return data
