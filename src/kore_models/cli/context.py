"""Per-invocation state (host, key, verbosity) and the runner that maps failures to exit codes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click

from .._proxy import proxy_secrets
from ..client import KoreClient
from ..errors import ConfigurationError
from .errors import EXIT_INTERRUPTED
from .output import Output

__all__ = ["Globals", "get_globals", "run_command", "unwrap"]


@dataclass
class Globals:
    """What the group's options resolved to."""

    host: str | None = None
    api_key: str | None = None
    verbose: bool = False
    quiet: bool = False
    network: dict[str, Any] = field(default_factory=dict)
    """--proxy, --ca-bundle, --client-cert, --client-key, --trust (None: not given)."""

    def output(self, *, json_mode: bool = False) -> Output:
        """An Output for one command, with the key and proxy passwords registered as secrets."""
        out = Output(json_mode=json_mode, quiet=self.quiet, verbose=self.verbose)
        out.add_secret(self.api_key)
        for password in proxy_secrets(self.network.get("proxy") or os.environ.get("KORE_PROXY")):
            out.add_secret(password)
        return out

    def client(self, **settings: Any) -> KoreClient:
        """A client for the configured host and key (ConfigurationError if either is missing)."""
        if not self.host:
            raise ConfigurationError(
                "no host: pass --host or set KORE_HOST "
                "(for a local emulator e.g. --host http://127.0.0.1:8700)"
            )
        if not self.api_key:
            raise ConfigurationError(
                "no API key: pass --api-key-file, --api-key-stdin or --api-key, or set KORE_API_KEY"
            )
        given = {k: v for k, v in {**self.network, **settings}.items() if v is not None}
        if "state_dir" in given:
            given["state_dir"] = Path(given["state_dir"])
        return KoreClient(host=self.host, api_key=self.api_key, **given)


def get_globals(ctx: click.Context) -> Globals:
    """The Globals stored by the group callback (defaults when a command runs alone)."""
    found = ctx.find_object(Globals)
    return found if found is not None else Globals()


def run_command(
    ctx: click.Context, out: Output, main: Callable[[], Coroutine[Any, Any, int]]
) -> NoReturn:
    """Run ``main()`` with asyncio.run and exit with its code, or the mapped error code.

    Ctrl-C cancels the main task (asyncio.run does that), so ``async with`` blocks close
    the HTTP session and the uploader keeps its journal; then we exit with 130.
    """
    restore_logging = out.setup_logging()
    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        out.stderr_line("error: interrupted; run the same command again to resume")
        if out.json_mode:
            out.emit_json(
                {"error": {"type": "KeyboardInterrupt", "message": "interrupted", "exitCode": 130}}
            )
        code = EXIT_INTERRUPTED
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
