"""The ``kore-models`` click group: global options, the API key sources, and ``main()``."""

from __future__ import annotations

import importlib
import stat
import sys
from pathlib import Path
from typing import ClassVar

import click

from .commands_import import import_command
from .commands_models import deploy_command, export_command, status_command, undeploy_command
from .context import Globals
from .errors import EXIT_INTERRUPTED

__all__ = ["cli", "main"]


def _read_key_file(path: Path) -> str:
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {path}: {exc.strerror or exc}", param_hint="--api-key-file"
        ) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        click.echo(
            f"warning: {path} is readable by other users; consider chmod 600 {path}", err=True
        )
    key = text.strip()
    if not key:
        raise click.BadParameter(f"{path} is empty", param_hint="--api-key-file")
    return key


def _resolve_key(
    ctx: click.Context, api_key: str | None, key_file: Path | None, key_stdin: bool
) -> str | None:
    given_flag = ctx.get_parameter_source("api_key") not in (
        click.core.ParameterSource.ENVIRONMENT,
        click.core.ParameterSource.DEFAULT,
        None,
    )
    sources = [given_flag and api_key is not None, key_file is not None, key_stdin]
    if sum(sources) > 1:
        raise click.UsageError("give only one of --api-key, --api-key-file and --api-key-stdin")
    if key_file is not None:
        return _read_key_file(key_file)
    if key_stdin:
        line = sys.stdin.readline().strip()
        if not line:
            raise click.BadParameter("no key on standard input", param_hint="--api-key-stdin")
        return line
    return api_key.strip() if api_key else None


class _LazyGroup(click.Group):
    """Imports the emulator and demo commands only when they are used.

    They pull in the server side (aiohttp.web, sqlite3, tarfile); an import or export
    should not pay for that in start-up time and memory.
    """

    lazy_commands: ClassVar[dict[str, tuple[str, str]]] = {
        "demo": ("kore_models.cli.demo", "demo_command"),
        "emulator": ("kore_models.emulator.command", "emulator_command"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            module, attribute = self.lazy_commands[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="kore-models", prog_name="kore-models")
@click.option(
    "--host",
    envvar="KORE_HOST",
    show_envvar=True,
    metavar="URL",
    help="Environment URL, e.g. https://agent-platform.kore.ai.",
)
@click.option(
    "--api-key",
    envvar="KORE_API_KEY",
    show_envvar=True,
    metavar="KEY",
    help="API key (prefer --api-key-file/--api-key-stdin or the env var: "
    "a key on the command line ends up in shell history).",
)
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Read the API key from this file (surrounding whitespace is stripped).",
)
@click.option("--api-key-stdin", is_flag=True, help="Read the API key from the first stdin line.")
@click.option(
    "--proxy",
    metavar="URL",
    help="Proxy, http://[USER:PASSWORD@]HOST:PORT (env KORE_PROXY; beats HTTPS_PROXY).",
)
@click.option(
    "--ca-bundle",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Trust the CAs in this PEM file, e.g. a TLS-inspecting proxy's (env KORE_CA_BUNDLE).",
)
@click.option(
    "--client-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Client certificate (PEM) for hosts that require mutual TLS.",
)
@click.option(
    "--client-key",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Key of --client-cert, when not in the same file.",
)
@click.option(
    "--trust",
    type=click.Choice(["default", "system"]),
    default=None,
    help="Which CA store to start from: Python's default, or the operating system's.",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logs and tracebacks on stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the result (and errors).")
@click.pass_context
def cli(
    ctx: click.Context,
    host: str | None,
    api_key: str | None,
    api_key_file: Path | None,
    api_key_stdin: bool,
    proxy: str | None,
    ca_bundle: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    trust: str | None,
    verbose: bool,
    quiet: bool,
) -> None:
    """Import, export, deploy and undeploy models on the Kore.ai platform.

    \b
    Examples:
      export KORE_HOST=https://agent-platform.kore.ai
      kore-models --api-key-file ~/.kore-key import llama-3-8b.tar
      kore-models import --manifest models.txt --shard 1/4 --parallel-files 2
      kore-models deploy cm-123 --model-type openSource --config deploy.json --wait
      kore-models demo
    """
    if verbose and quiet:
        raise click.UsageError("--verbose and --quiet exclude each other")
    key = _resolve_key(ctx, api_key, api_key_file, api_key_stdin)
    network = {"proxy": proxy, "ca_bundle": ca_bundle, "client_cert": client_cert}
    network.update(client_key=client_key, trust=trust)
    ctx.obj = Globals(host=host, api_key=key, verbose=verbose, quiet=quiet, network=network)


cli.add_command(import_command)
cli.add_command(export_command)
cli.add_command(deploy_command)
cli.add_command(undeploy_command)
cli.add_command(status_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the group and exit with its documented code."""
    try:
        code = cli.main(args=argv, prog_name="kore-models", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
