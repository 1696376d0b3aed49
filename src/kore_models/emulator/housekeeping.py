"""Disk housekeeping: bytes no one can read again are deleted; the data folder's size cap."""

from __future__ import annotations

import asyncio
import shutil

from .errors import ApiError
from .state import EmulatorState


def _fmt(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def insufficient_storage(state: EmulatorState, needed: int, free: int) -> ApiError:
    cap = state.config.max_data_size or 0
    return ApiError(
        507,
        "INSUFFICIENT_STORAGE",
        f"the emulator's data folder is capped at {_fmt(cap)} (--max-data-size): "
        f"{_fmt(needed)} needed, {_fmt(max(0, free))} free",
        maxDataSize=cap,
        neededBytes=needed,
        freeBytes=max(0, free),
    )


def check_room_for_session(state: EmulatorState, file_size: int) -> None:
    """507 when a new session's fileSize does not fit beside what is stored and promised."""
    cap = state.config.max_data_size
    if cap is None or state.config.storage == "discard":
        return
    store = state.store
    free = cap - store.stored_bytes() - store.outstanding_bytes(state.now())
    if file_size > free:
        raise insufficient_storage(state, file_size, free)


def room_for_chunk(state: EmulatorState) -> int | None:
    """Bytes a chunk upload may still write (None = no cap)."""
    cap = state.config.max_data_size
    if cap is None or state.config.storage == "discard":
        return None
    return cap - state.store.stored_bytes()


async def sweep_expired_sessions(state: EmulatorState) -> int:
    """Delete the chunk files of sessions that expired unfinished; return how many sessions."""
    store = state.store
    expired = store.expired_sessions_with_chunks(state.now())
    for session_id in expired:
        store.drop_chunks(session_id)
        await asyncio.to_thread(shutil.rmtree, store.session_dir(session_id), True)
    state.counters.sessions_swept += len(expired)
    return len(expired)


def _remove_leftovers(state: EmulatorState) -> None:
    """Temp files of uploads or assemblies that a previous run did not finish."""
    store = state.store
    for stray in [*store.sessions_dir.glob("*/.tmp-*"), *store.models_dir.glob("*.tmp")]:
        stray.unlink(missing_ok=True)
    for folder in store.sessions_dir.iterdir():
        session = store.get_session(folder.name)
        if session is None or session.completed:
            shutil.rmtree(folder, ignore_errors=True)


async def sweep_on_start(state: EmulatorState) -> None:
    """Start-up housekeeping of a data folder kept between runs (--data-dir)."""
    await asyncio.to_thread(_remove_leftovers, state)
    await sweep_expired_sessions(state)


async def delete_model_bytes(state: EmulatorState, model_id: str) -> None:
    """Remove a model's stored file (a failed import, or a model deleted by the control API)."""
    path = state.store.model_path(model_id)
    await asyncio.to_thread(path.unlink, True)
