"""The ``--help`` blocks and the exit-code table of docs/cli.md, rendered from the code.

``python tests/cli/cli_docs.py`` rewrites those parts of docs/cli.md in place;
test_cli_docs.py checks that the page still matches.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from click.testing import CliRunner

from kore_models.cli import cli
from kore_models.cli.errors import EXIT_CODES

DOCS = Path(__file__).parents[2] / "docs" / "cli.md"
BLOCK = re.compile(r"<!-- help: (?P<args>[^>]*?) -->\n```text\n(?P<body>.*?)```\n", re.S)
TABLE = re.compile(r"<!-- exit-codes -->\n(?P<body>.*?)<!-- /exit-codes -->\n", re.S)
COMMANDS = [
    "", "import", "export", "download", "deploy", "undeploy", "status", "config", "config show",
    "completion", "demo", "verify", "history", "journals",
]  # fmt: skip
# documented on their own page (docs/emulator.md), linked from docs/cli.md
ELSEWHERE = {"emulator"}


def render_help(args: str) -> str:
    """``kore-models ARGS --help`` at a fixed width, without environment influence."""
    result = CliRunner().invoke(
        cli, [*args.split(), "--help"], prog_name="kore-models", terminal_width=100,
        env={"COLUMNS": "100"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stdout


def render_table() -> str:
    """The exit-code table in Markdown."""
    lines = ["| Code | Meaning |", "|---:|---|"]
    lines += [f"| {code} | {meaning} |" for code, meaning in EXIT_CODES.items()]
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    """``text`` (the page) with every help block and the table brought up to date."""

    def block(match: re.Match[str]) -> str:
        args = match.group("args").strip()
        return f"<!-- help: {args} -->\n```text\n{render_help(args)}```\n"

    text = BLOCK.sub(block, text)
    return TABLE.sub(lambda m: f"<!-- exit-codes -->\n{render_table()}<!-- /exit-codes -->\n", text)


if __name__ == "__main__":
    page = DOCS.read_text(encoding="utf-8")
    DOCS.write_text(render(page), encoding="utf-8")
    sys.stdout.write(f"updated {DOCS}\n")
