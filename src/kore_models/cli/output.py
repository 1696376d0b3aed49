"""Output discipline: results on stdout (one JSON object with --json), everything else on stderr."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TextIO

import click
from rich.console import Console

from ..errors import redact
from ..units import format_size
from .errors import describe, error_json, exit_code_for

__all__ = ["Output", "human_bytes", "human_rate", "protect_standard_streams"]

_LOGGER = "kore_models"


def human_bytes(count: float) -> str:
    """``1536`` -> ``1.5 KiB`` (the library's one size formatter)."""
    return format_size(count)


def human_rate(count: float, seconds: float) -> str:
    """Bytes over seconds as ``12.3 MiB/s`` (binary, like every size the CLI prints)."""
    if seconds <= 0 or count <= 0:
        return "- MiB/s"
    return f"{human_bytes(count / seconds)}/s"


class _ResilientStream(io.TextIOBase):
    """A standard stream whose reader may go away (``| head``, a closed terminal).

    The first failed write points the descriptor at /dev/null, so the run goes on, quietly,
    and the interpreter's final flush has nothing to complain about.
    """

    def __init__(self, stream: TextIO):
        super().__init__()
        self._stream = stream
        self.broken = False

    def _give_up(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def write(self, text: str | bytes) -> int:
        if not self.broken:
            try:
                if isinstance(text, bytes):  # click writes bytes when it finds no buffer
                    self._stream.flush()
                    self._stream.buffer.write(text)
                    self._stream.buffer.flush()
                else:
                    self._stream.write(text)
                    if "\n" in text:
                        self._stream.flush()
            except (OSError, ValueError):
                self._give_up()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._give_up()

    def isatty(self) -> bool:
        try:
            return not self.broken and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self._stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"


def protect_standard_streams() -> None:
    """Make stdout and stderr survive a reader that goes away (for the console script)."""
    if not isinstance(sys.stdout, _ResilientStream) and sys.stdout is not None:
        sys.stdout = _ResilientStream(sys.stdout)
    if not isinstance(sys.stderr, _ResilientStream) and sys.stderr is not None:
        sys.stderr = _ResilientStream(sys.stderr)


class _RedactingHandler(logging.Handler):
    """Writes ``kore_models`` log records through the stderr console, without the key."""

    def __init__(self, output: Output):
        super().__init__()
        self.output = output
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.output.json_events:
                message = self.output.scrub(record.getMessage())
                level = record.levelname.lower()
                self.output.event("log", level=level, logger=record.name, message=message)
                return
            text = self.format(record)
        except Exception:  # pragma: no cover - a broken log call must not kill the CLI
            self.handleError(record)
            return
        self.output.stderr_line(text)


class Output:
    """Where each kind of text goes, for one command run.

    stdout carries only results: one JSON object with ``--json``, else the result lines.
    Progress, notes, warnings and errors go to stderr; ``--quiet`` silences all but errors.
    Every line is scrubbed of the API key before it is written.
    """

    def __init__(
        self,
        *,
        json_mode: bool = False,
        quiet: bool = False,
        verbose: bool = False,
        json_events: bool = False,
    ):
        self.json_mode = json_mode
        self.quiet = quiet
        self.verbose = verbose
        self.json_events = json_events  # --progress json: stderr is JSON lines only
        self.secrets: list[str] = []
        self.stderr = Console(stderr=True, highlight=False, soft_wrap=True)

    def add_secret(self, secret: str | None) -> None:
        """Never print ``secret``."""
        if secret and len(secret) >= 4 and secret not in self.secrets:
            self.secrets.append(secret)

    def scrub(self, text: str) -> str:
        """``text`` without any secret."""
        return redact(text, *self.secrets)

    # stderr -------------------------------------------------------------------------
    def stderr_line(self, text: str) -> None:
        """Write one line to stderr through the console (safe while a progress bar runs)."""
        self.stderr.print(self.scrub(text), markup=False, highlight=False)

    def event(self, kind: str, **fields: Any) -> None:
        """One JSON line on stderr: ``{"event": kind, ...}`` (``--progress json``)."""
        self.stderr_line(json.dumps({"event": kind, **fields}, default=str))

    def info(self, text: str) -> None:
        """A human note on stderr (silenced by --quiet)."""
        if self.json_events:
            self.event("note", message=self.scrub(text))
        elif not self.quiet:
            self.stderr_line(text)

    def warn(self, text: str) -> None:
        """A warning on stderr (silenced by --quiet)."""
        if self.json_events:
            self.event("warning", message=self.scrub(text))
        elif not self.quiet:
            self.stderr_line(f"warning: {text}")

    def error_line(self, message: str, code: int) -> None:
        """The one stderr line of a failure (a JSON event with ``--progress json``)."""
        if self.json_events:
            self.event("error", message=self.scrub(message), exitCode=code)
        else:
            self.stderr_line(f"error: {message}")

    def error(self, exc: BaseException, *, prefix: str = "") -> int:
        """Report ``exc`` as one stderr line (plus the traceback with --verbose); its exit code."""
        if self.verbose and not isinstance(exc, KeyboardInterrupt):
            lines = traceback.format_exception(exc)
            self.stderr.file.write(self.scrub("".join(lines)))
        code = exit_code_for(exc)
        self.error_line(f"{prefix}{describe(exc, *self.secrets)}", code)
        return code

    # stdout -------------------------------------------------------------------------
    def result(self, data: dict[str, Any], human: str | list[str]) -> None:
        """The command's result: ``data`` as one JSON object with --json, else ``human``."""
        if self.json_mode:
            self.emit_json(data)
            return
        lines = [human] if isinstance(human, str) else human
        for line in lines:
            click.echo(self.scrub(line))

    def emit_json(self, data: dict[str, Any]) -> None:
        """Print exactly one JSON object on stdout."""
        text = json.dumps(data, indent=None, sort_keys=False, default=str)
        click.echo(self.scrub(text))
        sys.stdout.flush()

    def fail(self, exc: BaseException) -> int:
        """A command failed: the stderr line, and with --json the error object on stdout."""
        code = self.error(exc)
        if self.json_mode:
            self.emit_json(error_json(exc, *self.secrets))
        return code

    # logging ------------------------------------------------------------------------
    def setup_logging(self) -> Callable[[], None]:
        """``kore_models`` loggers to stderr: DEBUG with --verbose, ERROR with --quiet.

        Returns the function that puts the logger back as it was (for in-process callers
        such as tests, which must not find the logger changed afterwards).
        """
        logger = logging.getLogger(_LOGGER)
        saved = (logger.level, logger.propagate)
        handler = _RedactingHandler(self)
        level = logging.DEBUG if self.verbose else logging.ERROR if self.quiet else logging.WARNING
        logger.setLevel(level)
        logger.addHandler(handler)
        logger.propagate = False

        def restore() -> None:
            logger.removeHandler(handler)
            logger.setLevel(saved[0])
            logger.propagate = saved[1]

        return restore
