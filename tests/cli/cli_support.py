"""Helpers of the CLI tests: the console script as a child process, and its progress events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

EMULATOR_KEY = "kg-emulator-local-key"
MAIN = "from kore_models.cli import main; main()"


def child_env(host: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI child: the emulator, its key, journals under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KORE_")}
    env.update(
        KORE_HOST=host,
        KORE_API_KEY=EMULATOR_KEY,
        KORE_STATE_DIR=str(tmp_path / "state"),
        KORE_POLL_INITIAL="0.1",
        KORE_POLL_MIN_INTERVAL="0.1",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONWARNINGS="default",
    )
    env.update(extra)
    return env


def spawn(args: list[str], env: dict[str, str], **options: Any) -> subprocess.Popen[str]:
    """``kore-models ARGS`` as a child process (text mode)."""
    return subprocess.Popen([sys.executable, "-c", MAIN, *args], env=env, text=True, **options)


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``kore-models ARGS`` to the end, output captured."""
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def wait_for_event(
    stream: IO[str], accept: Callable[[dict[str, Any]], bool], seen: list[str] | None = None
) -> dict[str, Any]:
    """Read ``--progress json`` lines from ``stream`` until one is accepted; return it."""
    for line in stream:
        if seen is not None:
            seen.append(line)
        if not line.startswith("{"):
            continue
        event: dict[str, Any] = json.loads(line)
        if accept(event):
            return event
    raise AssertionError(f"the stream ended before the awaited event: {seen}")


def journals(tmp_path: Path) -> list[Path]:
    """The resume journals under the test's state folder."""
    return sorted((tmp_path / "state" / "journals").glob("*.json"))


def control(url: str, path: str) -> dict[str, Any]:
    """GET the emulator's control API (``/_emulator{path}``)."""
    with urllib.request.urlopen(f"{url}/_emulator{path}", timeout=30) as response:  # noqa: S310
        data: dict[str, Any] = json.loads(response.read())
    return data
