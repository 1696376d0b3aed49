"""The ``kore-models`` command line: import, export, deploy, undeploy, status, emulator, demo."""

from __future__ import annotations

from .app import cli, main

__all__ = ["cli", "main"]
