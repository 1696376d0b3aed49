"""Test kit for code that uses kore-models: an in-process emulator, fault scenarios, fixtures.

Install ``kore-models[testing]``; the pytest plugin (entry point ``pytest11``) then gives
every test the ``kore_emulator``, ``kore_client`` and ``kore_sync_client`` fixtures.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from .emulator import KoreEmulator
from .scenarios import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "KoreEmulator", "Scenario", "client_options", "model_archive"]


def model_archive(path: str | Path, weights_bytes: int = 256 * 1024) -> Path:
    """Write a small valid model tar (a config and random weights) at ``path``."""
    target = Path(path)
    config = json.dumps({"model_type": "llama", "torch_dtype": "float16"}).encode()
    with tarfile.open(target, "w") as tar:
        for name, data in (("config.json", config), ("weights.bin", os.urandom(weights_bytes))):
            info = tarfile.TarInfo(f"model/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return target


def client_options(emulator: KoreEmulator, **overrides: Any) -> dict[str, Any]:
    """KoreClient arguments for a test against ``emulator``: fast polls and short backoffs."""
    options: dict[str, Any] = {
        "host": emulator.url,
        "api_key": emulator.api_key,
        "poll_initial": 0.05,
        "poll_min_interval": 0.05,
        "poll_max": 0.2,
        "backoff_initial": 0.01,
        "backoff_max": 0.2,
    }
    options.update(overrides)
    return options
