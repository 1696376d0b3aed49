"""URLs as the client shows and follows them: query secrets redacted, redirect targets checked."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from yarl import URL

from .errors import KoreError, ResponseValidationError, redact

__all__ = ["display_url", "redirect_target", "scrubbed", "url_secrets"]

_MIN_SECRET_CHARS = 6


def display_url(url: str) -> str:
    """``url`` fit for messages and logs: each query value (a token, a signature) and any
    password in it are ``***``; the fragment is dropped."""
    parts = urlsplit(url)
    if not parts.query and parts.password is None and not parts.fragment:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:***@{netloc.rpartition('@')[2]}"
    names = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
    query = "&".join(f"{name}=***" for name in names) or ("***" if parts.query else "")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def url_secrets(url: str) -> list[str]:
    """The secrets of ``url`` (query values long enough to be secrets, raw and
    percent-decoded; a password), longest first, for :func:`~kore_models.errors.redact`."""
    parts = urlsplit(url)
    found = {value for _, value in parse_qsl(parts.query, keep_blank_values=True)}
    found |= {raw.partition("=")[2] for raw in parts.query.split("&")}
    secrets = {v for v in found if len(v) >= _MIN_SECRET_CHARS}
    if parts.password:
        secrets.add(parts.password)
    return sorted(secrets, key=len, reverse=True)


def redirect_target(current: str, location: str) -> str:
    """The absolute URL a ``Location`` header points to; only http(s) is followed."""
    target = URL(current, encoded=True).join(URL(location.strip(), encoded=True))
    if target.scheme not in ("http", "https") or not target.host:
        raise ResponseValidationError(
            f"a redirect to a non-http(s) URL: {display_url(str(target))}"
        )
    return str(target)


def scrubbed(error: KoreError, secrets: Sequence[str]) -> KoreError:
    """``error`` with every secret of the URL removed from its message."""
    if secrets:
        error.args = tuple(redact(a, *secrets) if isinstance(a, str) else a for a in error.args)
    return error
