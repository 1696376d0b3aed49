"""Local emulator of the Kore.ai model import/export API (imports nothing from the client)."""

from .app import create_app
from .config import EmulatorConfig
from .faults import STATE
from .server import RunningEmulator, run_emulator
from .state import EmulatorState, ScriptedFault

__all__ = [
    "STATE",
    "EmulatorConfig",
    "EmulatorState",
    "RunningEmulator",
    "ScriptedFault",
    "create_app",
    "run_emulator",
]
