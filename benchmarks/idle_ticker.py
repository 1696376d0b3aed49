"""The control for event-loop lag: the 5 ms ticker alone in a process that does nothing else."""

from __future__ import annotations

import argparse
import asyncio
import json

from .import_once import Ticker


async def _idle(seconds: float) -> dict[str, float]:
    ticker = Ticker()
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(seconds)
    task.cancel()
    return ticker.summary()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.idle_ticker")
    parser.add_argument("--seconds", type=float, default=5.0)
    print(json.dumps(asyncio.run(_idle(parser.parse_args().seconds))))


if __name__ == "__main__":
    main()
