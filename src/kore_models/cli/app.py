"""The ``kore-models`` click group: global options, the API key sources, and ``main()``."""

from __future__ import annotations

import importlib
import json
import sys
from typing import ClassVar

import click

from .commands_config import completion_command, config_group
from .commands_deploy import deploy_command, undeploy_command
from .commands_import import import_command
from .commands_models import download_command, export_command, status_command
from .errors import EXIT_INTERRUPTED
from .options import KoreGroup
from .output import protect_standard_streams

__all__ = ["cli", "main"]


class _LazyGroup(KoreGroup):
    """Imports the emulator and demo commands only when they are used.

    They pull in the server side (aiohttp.web, sqlite3, tarfile); an import or export
    should not pay for that in start-up time and memory.
    """

    lazy_commands: ClassVar[dict[str, tuple[str, str]]] = {
        "demo": ("kore_models.cli.demo", "demo_command"),
        "emulator": ("kore_models.emulator.command", "emulator_command"),
        "history": ("kore_models.cli.commands_ledger", "history_command"),
        "journals": ("kore_models.cli.commands_ledger", "journals_command"),
        "verify": ("kore_models.cli.commands_ledger", "verify_command"),
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
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Import, export, deploy and undeploy models on the Kore.ai platform.

    Global options work before or after the command name.

    \b
    Examples:
      export KORE_HOST=https://agent-platform.kore.ai
      kore-models --api-key-file ~/.kore-key import llama-3-8b.tar
      kore-models import llama-3-8b.tar --profile prod --progress json
      kore-models import --manifest models.txt --shard 1/4 --parallel-files 2
      kore-models deploy cm-123 --model-type openSource --config deploy.json --wait
      kore-models demo
    """


cli.add_command(import_command)
cli.add_command(export_command)
cli.add_command(deploy_command)
cli.add_command(undeploy_command)
cli.add_command(status_command)
cli.add_command(download_command)
cli.add_command(config_group)
cli.add_command(completion_command)


def _wants_json(argv: list[str]) -> bool:
    """Whether ``--json`` is among the arguments (before a ``--``), even when they do not parse."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def _usage_error(exc: click.ClickException, json_mode: bool) -> int:
    exc.show()
    if json_mode:
        message = exc.format_message()
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            message = f"{message} (see: {exc.ctx.command_path} --help)"
        error = {"type": type(exc).__name__, "message": message, "exitCode": exc.exit_code}
        click.echo(json.dumps({"error": error}))
    return exc.exit_code


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the group and exit with its documented code."""
    args = list(sys.argv[1:] if argv is None else argv)
    json_mode = _wants_json(args)
    protect_standard_streams()
    try:
        code = cli.main(args=args, prog_name="kore-models", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("error: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except click.ClickException as exc:
        code = _usage_error(exc, json_mode)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    sys.exit(code if isinstance(code, int) else 0)
