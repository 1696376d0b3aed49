"""Per-run state (host, key, profile, verbosity) and the runner that maps failures to codes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click

from ..client import KoreClient
from ..errors import ConfigurationError
from ..settings import Settings
from ..toolkit import proxy_secrets
from .errors import EXIT_INTERRUPTED, EXIT_TERMINATED
from .options import GlobalValues
from .output import Output
from .profiles import Profile, load_profile

__all__ = ["Globals", "Terminated", "get_globals", "resolve_globals", "run_command", "unwrap"]

log = logging.getLogger("kore_models.cli")


class Terminated(Exception):
    """The run got SIGTERM: it stopped like on Ctrl-C and exits 143."""


@dataclass
class Globals:
    """What the global options, the environment and the profile resolved to."""

    host: str | None = None
    api_key: str | None = None
    verbose: bool = False
    quiet: bool = False
    progress: str = "auto"
    profile: Profile = field(default_factory=Profile)
    settings: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def output(self, *, json_mode: bool = False) -> Output:
        """An Output for one command, with the key and proxy passwords registered as secrets."""
        out = Output(
            json_mode=json_mode,
            quiet=self.quiet,
            verbose=self.verbose,
            json_events=self.progress == "json",
        )
        out.add_secret(self.api_key)
        explicit_proxy = self.settings.get("proxy") or os.environ.get("KORE_PROXY")
        for password in proxy_secrets(str(explicit_proxy) if explicit_proxy else None):
            out.add_secret(password)  # the proxy's password, from --proxy or *_PROXY
        return out

    def client(self, **settings: Any) -> KoreClient:
        """A client for the configured host and key (ConfigurationError if either is missing)."""
        if not self.host:
            raise ConfigurationError(
                "no host: pass --host, set KORE_HOST or use a profile "
                "(for a local emulator e.g. --host http://127.0.0.1:8700)"
            )
        if not self.api_key:
            raise ConfigurationError(
                "no API key: pass --api-key-file, --api-key-stdin or --api-key, "
                "set KORE_API_KEY, or give the profile an api_key_file"
            )
        given = {**self.settings, **{k: v for k, v in settings.items() if v is not None}}
        if "state_dir" in given:
            given["state_dir"] = Path(given["state_dir"]).expanduser()
        return KoreClient(host=self.host, api_key=self.api_key, **given)


def _read_key_file(path: Path, hint: str) -> str:
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {path}: {exc.strerror or exc}", param_hint=hint
        ) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        click.echo(
            f"warning: {path} is readable by other users; consider chmod 600 {path}", err=True
        )
    key = text.strip()
    if not key:
        raise click.BadParameter(f"{path} is empty", param_hint=hint)
    return key


def _resolve_key(raw: GlobalValues, profile: Profile) -> tuple[str | None, str | None]:
    values, sources = raw.values, raw.sources
    flag_key = values.get("api_key") if sources.get("api_key") == "--api-key" else None
    given = [flag_key is not None, values.get("api_key_file") is not None]
    given.append(bool(values.get("api_key_stdin")))
    if sum(given) > 1:
        raise click.UsageError("give only one of --api-key, --api-key-file and --api-key-stdin")
    if flag_key is not None:
        return str(flag_key).strip(), "--api-key"
    if values.get("api_key_file") is not None:
        return _read_key_file(Path(values["api_key_file"]), "--api-key-file"), "--api-key-file"
    if values.get("api_key_stdin"):
        line = sys.stdin.readline().strip()
        if not line:
            raise click.BadParameter("no key on standard input", param_hint="--api-key-stdin")
        return line, "--api-key-stdin"
    if values.get("api_key"):
        return str(values["api_key"]).strip(), sources.get("api_key", "env KORE_API_KEY")
    key_file = profile.get("api_key_file")
    if key_file is not None:
        return _read_key_file(Path(key_file), f"api_key_file of {profile.label}"), profile.label
    return None, None


def resolve_globals(raw: GlobalValues) -> Globals:
    """Command line, then environment, then profile, then the built-in default."""
    values = raw.values
    profile = load_profile(values.get("profile"))
    sources = dict(raw.sources)
    host = values.get("host")
    if not host and profile.get("host"):
        host, sources["host"] = str(profile.get("host")), profile.label
    key, key_source = _resolve_key(raw, profile)
    if key_source:
        sources["api_key"] = key_source
    settings: dict[str, Any] = {}
    for name, value in profile.values.items():
        if name in Settings.model_fields and name not in ("host", "api_key"):
            if f"KORE_{name.upper()}" in os.environ:
                sources[name] = f"env KORE_{name.upper()}"
                continue  # the environment beats the profile
            settings[name] = value  # Settings validates (sizes such as 32MiB included)
            sources[name] = profile.label
    for name, value in values.items():  # global options named after a setting (--proxy ...)
        if name in Settings.model_fields and name not in ("host", "api_key"):
            settings[name] = value
    verbose, quiet = bool(values.get("verbose")), bool(values.get("quiet"))
    if verbose and quiet:
        raise click.UsageError("--verbose and --quiet exclude each other")
    progress = str(values.get("progress") or "auto")
    return Globals(host, key, verbose, quiet, progress, profile, settings, sources)


def get_globals(ctx: click.Context) -> Globals:
    """The resolved Globals of this run (resolved once, on first use)."""
    raw = ctx.find_object(GlobalValues)
    if raw is None:
        raw = ctx.ensure_object(GlobalValues)
    if raw.resolved is None:
        raw.resolved = resolve_globals(raw)
    resolved: Globals = raw.resolved
    return resolved


async def _guarded(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run ``main()``; SIGTERM cancels it the way Ctrl-C does, then raises Terminated.

    SIGHUP (a closed terminal) does not stop the run.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    def on_sighup() -> None:
        # the terminal went away: carry on (the streams already survive a missing reader)
        log.info("the terminal closed (SIGHUP); carrying on")

    installed: list[signal.Signals] = []
    for signum, handler in ((signal.SIGTERM, on_sigterm), (signal.SIGHUP, on_sighup)):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, handler)  # main thread only
            installed.append(signum)
    try:
        return await main()
    except asyncio.CancelledError:
        if terminated:
            raise Terminated("terminated") from None
        raise
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _stopped(out: Output, code: int, kind: str, message: str) -> int:
    out.error_line(f"{message}; run the same command again to resume", code)
    if out.json_mode:
        out.emit_json({"error": {"type": kind, "message": message, "exitCode": code}})
    return code


def run_command(
    ctx: click.Context, out: Output, main: Callable[[], Coroutine[Any, Any, int]]
) -> NoReturn:
    """Run ``main()`` with asyncio.run and exit with its code, or the mapped error code.

    Ctrl-C and SIGTERM cancel the main task, so ``async with`` blocks close the HTTP
    session and the uploader keeps its journal; then we exit with 130 or 143.
    """
    restore_logging = out.setup_logging()
    try:
        code = asyncio.run(_guarded(main))
    except KeyboardInterrupt:
        code = _stopped(out, EXIT_INTERRUPTED, "KeyboardInterrupt", "interrupted")
    except Terminated:
        code = _stopped(out, EXIT_TERMINATED, "Terminated", "terminated (SIGTERM)")
    except Exception as exc:
        code = out.fail(unwrap(exc))
    finally:
        restore_logging()
    ctx.exit(code)


def unwrap(exc: BaseException) -> BaseException:
    """The one real error inside (nested) single-member exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        real = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        if len(real) != 1:
            break
        exc = real[0]
    return exc
