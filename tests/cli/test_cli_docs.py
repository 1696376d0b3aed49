"""docs/cli.md shows every command's --help as it is, and the exit-code table of the code."""

from __future__ import annotations

from tests.cli.cli_docs import BLOCK, COMMANDS, DOCS, ELSEWHERE, render


def test_the_page_matches_the_code() -> None:
    page = DOCS.read_text(encoding="utf-8")
    assert render(page) == page, "run: python tests/cli/cli_docs.py"


def test_every_command_has_its_help_block() -> None:
    page = DOCS.read_text(encoding="utf-8")
    documented = [m.group("args").strip() for m in BLOCK.finditer(page)]
    assert sorted(documented) == sorted(COMMANDS)


def test_the_page_covers_every_command_of_the_program() -> None:
    import click

    from kore_models.cli import cli

    with click.Context(cli) as ctx:
        names = set(cli.list_commands(ctx))
    assert names <= set(COMMANDS) | ELSEWHERE
    page = DOCS.read_text(encoding="utf-8")
    assert "(emulator.md)" in page
