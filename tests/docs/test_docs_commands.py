"""The commands shown in README.md and docs/*.md exist: every kore-models option, make target.

Each ``kore-models ...`` line of a fenced ``sh`` block is resolved with click itself (the
group's options, the command, the command's options), and each ``make X`` anywhere on a
page must be a target of the Makefile. A renamed option or target fails here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from kore_models.cli import cli

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["README.md", *sorted(f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md"))]
_SH_FENCE = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def command_lines(page: str) -> list[list[str]]:
    """The argument lists after ``kore-models`` in the ``sh`` blocks of ``page``."""
    found = []
    for block in _SH_FENCE.findall((ROOT / page).read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while "kore-models" in words:
                words = words[words.index("kore-models") + 1 :]
                end = words.index("|") if "|" in words else len(words)
                found.append(words[:end])
                words = words[end:]
    return found


def options_of(command: click.Command) -> dict[str, bool]:
    """Each option name of ``command``, and whether it takes a value."""
    found = {}
    for param in command.params:
        if isinstance(param, click.Option):
            takes_value = not (param.is_flag or param.count)
            for name in (*param.opts, *param.secondary_opts):
                found[name] = takes_value
    return found


def unknown_options(words: list[str]) -> list[str]:
    """Options in ``words`` that neither the group nor the named command defines."""
    context = click.Context(cli)
    known = {**options_of(cli), "--help": False, "-h": False}
    command: click.Command | None = None
    unknown = []
    skip_value = False
    for word in words:
        if skip_value:
            skip_value = False
        elif word.startswith("-"):
            name = word.split("=")[0]
            if name not in known:
                unknown.append(word)
            skip_value = known.get(name, False) and "=" not in word
        elif command is None:
            command = cli.get_command(context, word)
            if command is None:
                return [f"no command {word!r}"]
            known |= options_of(command)
    return unknown


COMMANDS = [
    pytest.param(words, id=f"{page}: kore-models {' '.join(words)}"[:90])
    for page in PAGES
    for words in command_lines(page)
]


def test_the_pages_show_commands() -> None:
    assert len(COMMANDS) >= 10, COMMANDS


@pytest.mark.parametrize("words", COMMANDS)
def test_every_option_shown_exists(words: list[str]) -> None:
    assert unknown_options(words) == []


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][\w-]*):", makefile, re.MULTILINE))


def make_calls(page: str) -> set[str]:
    """Targets of ``make`` commands in the code of ``page``: spans and fenced blocks, not prose."""
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = re.findall(r"^```\w*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    prose = re.sub(r"^```\w*\n.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    code = "\n".join([*blocks, *re.findall(r"`([^`\n]+)`", prose)])
    return set(re.findall(r"(?:^|[;&|]\s*)\s*make ([a-z][\w-]*)", code, re.MULTILINE))


def test_the_pages_show_make_targets() -> None:
    assert {"demo", "test", "docs"} <= make_calls("docs/development.md")


@pytest.mark.parametrize("page", PAGES)
def test_every_make_target_shown_exists(page: str) -> None:
    assert make_calls(page) - make_targets() == set()
