"""``kore-models config show`` (resolved settings and their sources) and ``completion``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from click.shell_completion import get_completion_class

from ..errors import ConfigurationError
from ..settings import Settings
from .context import Globals, get_globals
from .errors import EXIT_OK
from .options import KoreCommand, command
from .profiles import config_path

__all__ = ["completion_command", "config_group", "resolved_settings"]

_REDACTED = "********"


def _default(name: str) -> Any:
    return Settings.model_fields[name].get_default(call_default_factory=True)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def validate(g: Globals) -> tuple[Settings | None, str | None]:
    """The settings a client would get, or why it would not (host and key stand-ins when
    they are missing: those are reported as not set)."""
    try:
        settings = Settings.resolve(
            host=g.host or "https://host.invalid", api_key=g.api_key or "unset", **g.settings
        )
    except ConfigurationError as exc:
        return None, str(exc)
    return settings, None


def resolved_settings(g: Globals) -> dict[str, dict[str, Any]]:
    """Every setting with its value and where it came from (the key redacted).

    Order of precedence: command line, environment (``KORE_*``), profile, default. The
    values are the validated ones a client gets (``"32MiB"`` shows as 33554432).
    """
    validated, _ = validate(g)
    rows: dict[str, dict[str, Any]] = {
        "host": {
            "value": validated.host if validated and g.host else g.host,
            "source": g.sources.get("host", "not set"),
        },
        "api_key": {
            "value": _REDACTED if g.api_key else None,
            "source": g.sources.get("api_key", "not set"),
        },
    }
    for name in Settings.model_fields:
        if name in rows:
            continue
        env = f"KORE_{name.upper()}"
        if name in g.sources and not g.sources[name].startswith("env "):
            source, value = g.sources[name], g.settings.get(name)
        elif env in os.environ:
            source, value = f"env {env}", os.environ[env]
        else:
            source, value = "default", _default(name)
        if validated is not None:
            value = getattr(validated, name)
        rows[name] = {"value": _plain(value), "source": source}
    return rows


@click.group("config", cls=click.Group)
def config_group() -> None:
    """Profiles and the resolved settings.

    \b
    Profiles live in $XDG_CONFIG_HOME/kore-models/config.toml (~/.config/... by default;
    KORE_CONFIG names another file). Pick one with --profile NAME or KORE_PROFILE, or set
    default_profile at the top of the file:

    \b
      default_profile = "dev"
      [profiles.dev]
      host = "http://127.0.0.1:8700"
      api_key_file = "~/.config/kore-models/dev.key"
      [profiles.prod]
      host = "https://agent-platform.kore.ai"
      api_key_file = "~/.config/kore-models/prod.key"
      chunk_size = "32MiB"
      concurrency = 4
    """


@config_group.command("show", cls=KoreCommand)
@click.option("--json", "json_mode", is_flag=True, help="One JSON object on stdout.")
@click.pass_context
def config_show_command(ctx: click.Context, json_mode: bool) -> None:
    """Print the resolved settings and where each came from (the API key redacted).

    \b
    Example:
      kore-models --profile prod config show
    """
    g = get_globals(ctx)
    out = g.output(json_mode=json_mode)
    rows = resolved_settings(g)
    document = {
        "configFile": str(config_path()),
        "configFileExists": config_path().is_file(),
        "profile": g.profile.name,
        "settings": rows,
        "problem": validate(g)[1],
    }
    exists = "" if document["configFileExists"] else " (not found)"
    lines = [
        f"config file: {document['configFile']}{exists}",
        f"profile: {g.profile.name or '(none)'}",
    ]
    if document["problem"]:
        lines.append(f"problem: {document['problem']}")
    width = max(len(name) for name in rows)
    for name, row in rows.items():
        value = "(not set)" if row["value"] is None else row["value"]
        lines.append(f"  {name:<{width}}  {value}  [{row['source']}]")
    out.result(document, lines)
    ctx.exit(EXIT_OK)


SHELLS = ("bash", "zsh", "fish")


@command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_command(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    Examples:
      kore-models completion bash > ~/.local/share/bash-completion/completions/kore-models
      kore-models completion zsh > "${fpath[1]}/_kore-models"
      kore-models completion fish > ~/.config/fish/completions/kore-models.fish
    """
    root = ctx.find_root().command
    completion_class = get_completion_class(shell)
    assert completion_class is not None
    script = completion_class(root, {}, "kore-models", "_KORE_MODELS_COMPLETE").source()
    click.echo(script)
