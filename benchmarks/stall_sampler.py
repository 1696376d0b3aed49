"""Where the event loop is when it stalls: a thread samples the loop thread's stack.

A task beats every millisecond; a watchdog thread looks every 2 ms and, whenever the last
beat is older than ``threshold``, records the innermost frames of the loop thread. The
sites seen most often are what held the loop: Python code of ours or a library, or a
system call during which the OS let something else run.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import threading
import time
import traceback
from pathlib import Path


class StallSampler:
    """Start with :meth:`start` inside the loop, :meth:`stop` before it ends."""

    def __init__(self, threshold: float = 0.015, depth: int = 4) -> None:
        self.threshold = threshold
        self.depth = depth
        self.sites: collections.Counter[str] = collections.Counter()
        self._beat = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._watch, daemon=True, name="stall-sampler")

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._task = asyncio.create_task(self._heart())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
        self._thread.join(timeout=1)

    async def _heart(self) -> None:
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(0.001)

    def _watch(self) -> None:
        while not self._stop.wait(0.002):
            if time.monotonic() - self._beat <= self.threshold:
                continue
            frame = sys._current_frames().get(self._loop_thread)
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)[-self.depth :]
            self.sites[
                " < ".join(f"{Path(f.filename).name}:{f.name}" for f in reversed(stack))
            ] += 1

    def top(self, count: int = 5) -> list[tuple[str, float]]:
        """The ``count`` most frequent sites with the milliseconds of stall seen at each."""
        return [(site, n * 2.0) for site, n in self.sites.most_common(count)]
