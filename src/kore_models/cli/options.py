"""Global options: declared once, accepted before and after the command name.

To add a global option, append it to :func:`global_options`. When its name is a field of
:class:`~kore_models.settings.Settings` (``proxy``, ``ca_bundle`` ...) the value reaches
the client as that setting, and ``config show`` reports it, with no other change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

from .profiles import profile_names

__all__ = [
    "PROGRESS_MODES",
    "GlobalValues",
    "KoreCommand",
    "KoreGroup",
    "global_options",
    "record_globals",
]

PROGRESS_MODES = ("auto", "rich", "plain", "json", "none")


def _complete_profile(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Profile names of config.toml for shell completion (none when it cannot be read)."""
    try:
        names = profile_names()
    except click.UsageError:
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def global_options(*, on_group: bool) -> list[click.Option]:
    """Fresh Option objects for the group (with env vars) or for one command (hidden)."""

    def env(name: str) -> dict[str, Any]:
        return {"envvar": name, "show_envvar": True} if on_group else {}

    hidden = not on_group
    return [
        click.Option(
            ["--host"],
            metavar="URL",
            hidden=hidden,
            help="Environment URL, e.g. https://agent-platform.kore.ai.",
            **env("KORE_HOST"),
        ),
        click.Option(
            ["--api-key"],
            metavar="KEY",
            hidden=hidden,
            help="API key (prefer --api-key-file/--api-key-stdin or the env var: "
            "a key on the command line ends up in shell history).",
            **env("KORE_API_KEY"),
        ),
        click.Option(
            ["--api-key-file"],
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="PATH",
            hidden=hidden,
            help="Read the API key from this file (surrounding whitespace is stripped).",
        ),
        click.Option(
            ["--api-key-stdin"],
            is_flag=True,
            default=None,
            hidden=hidden,
            help="Read the API key from the first stdin line.",
        ),
        click.Option(
            ["--profile"],
            metavar="NAME",
            hidden=hidden,
            shell_complete=_complete_profile,
            help="Use this profile of config.toml (see `kore-models config show`).",
            **env("KORE_PROFILE"),
        ),
        click.Option(
            ["--progress"],
            type=click.Choice(PROGRESS_MODES),
            hidden=hidden,
            help="Progress on stderr: bars on a terminal and plain lines elsewhere (auto, "
            "the default), or one JSON event per line (json), or none.",
            **env("KORE_PROGRESS"),
        ),
        click.Option(
            ["--limit-rate"],
            metavar="RATE",
            hidden=hidden,
            help="Cap on upload plus download bytes per second, e.g. 50MB/s (no cap by default).",
            **env("KORE_LIMIT_RATE"),
        ),
        click.Option(
            ["--proxy"],
            metavar="URL",
            hidden=hidden,
            help="Proxy, http://[USER:PASSWORD@]HOST:PORT; beats HTTPS_PROXY/HTTP_PROXY/"
            "ALL_PROXY (NO_PROXY still applies).",
            **env("KORE_PROXY"),
        ),
        click.Option(
            ["--ca-bundle"],
            type=click.Path(path_type=Path),
            metavar="PATH",
            hidden=hidden,
            help="Trust the CAs in this PEM file (e.g. a TLS-inspecting proxy's) instead of "
            "the default store.",
            **env("KORE_CA_BUNDLE"),
        ),
        click.Option(
            ["--client-cert"],
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="PATH",
            hidden=hidden,
            help="Client certificate (PEM) for hosts that require mutual TLS.",
            **env("KORE_CLIENT_CERT"),
        ),
        click.Option(
            ["--client-key"],
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="PATH",
            hidden=hidden,
            help="Key of --client-cert, when it is not in the same file.",
            **env("KORE_CLIENT_KEY"),
        ),
        click.Option(
            ["--trust"],
            type=click.Choice(["default", "system"]),
            hidden=hidden,
            help="CA store to start from: Python's default, or the operating system's.",
            **env("KORE_TRUST"),
        ),
        click.Option(
            ["-v", "--verbose"],
            is_flag=True,
            default=None,
            hidden=hidden,
            help="Debug logs and tracebacks on stderr.",
        ),
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            default=None,
            hidden=hidden,
            help="Print only the result (and errors).",
        ),
    ]


@dataclass
class GlobalValues:
    """The global options as given: each value and where it came from (``--host``, env)."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    resolved: Any = None  # the Globals built from these values, once (context.py)


def _flag_of(param: click.Parameter) -> str:
    return max(param.opts, key=len)


def record_globals(ctx: click.Context, params: dict[str, Any]) -> GlobalValues:
    """Take the global options out of ``params`` into the run's GlobalValues.

    A value given after the command name wins over the same option before it.
    """
    store = ctx.find_object(GlobalValues)
    if store is None:
        store = ctx.ensure_object(GlobalValues)
    for param in ctx.command.params:
        name = param.name
        if name is None or not getattr(param, "is_global", False) or name not in params:
            continue
        value = params.pop(name)
        source = ctx.get_parameter_source(name)
        if source is click.core.ParameterSource.COMMANDLINE:
            store.values[name] = value
            store.sources[name] = _flag_of(param)
        elif source is click.core.ParameterSource.ENVIRONMENT and name not in store.values:
            store.values[name] = value
            envvar = param.envvar if isinstance(param.envvar, str) else name.upper()
            store.sources[name] = f"env {envvar}"
    store.resolved = None
    return store


def _mark(options: list[click.Option]) -> list[click.Option]:
    for option in options:
        option.is_global = True  # type: ignore[attr-defined]
    return options


class KoreCommand(click.Command):
    """A command that also takes every global option (after its name)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(_mark(global_options(on_group=False)))
        note = "Global options (--host, --api-key-file, --profile, -q, -v ...) may follow it."
        self.epilog = f"{self.epilog}\n\n{note}" if self.epilog else note

    def invoke(self, ctx: click.Context) -> Any:
        record_globals(ctx, ctx.params)
        return super().invoke(ctx)


class KoreGroup(click.Group):
    """A group whose commands default to :class:`KoreCommand` and whose globals are recorded."""

    command_class = KoreCommand

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(_mark(global_options(on_group=True)))

    def invoke(self, ctx: click.Context) -> Any:
        record_globals(ctx, ctx.params)
        return super().invoke(ctx)


def command(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], KoreCommand]:
    """``@command("import")``: a click command that takes the global options too."""
    decorator = click.command(name, cls=KoreCommand, **kwargs)
    return decorator
