"""One import in this process, as the CLI would do it; prints a JSON line (time, CPU, lag)."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]

from kore_models import KoreClient
from kore_models.transfer.progress import ProgressEvent

from .naive import naive_gather, naive_sequential
from .stall_sampler import StallSampler

_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


def parse_size(text: str) -> int:
    """'64MiB' -> 67108864."""
    match = re.fullmatch(r"(\d+)\s*([KMG]iB|B)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]


class Ticker:
    """A task in the same loop that sleeps 5 ms and records how late it wakes up."""

    def __init__(self, period: float = 0.005, limit: int = 200_000) -> None:
        self.period = period
        self.limit = limit
        self.late: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while len(self.late) < self.limit:
            before = loop.time()
            await asyncio.sleep(self.period)
            self.late.append(max(0.0, loop.time() - before - self.period))

    def summary(self) -> dict[str, float]:
        late = sorted(self.late) or [0.0]
        cuts = (
            statistics.quantiles(late, n=100, method="inclusive")
            if len(late) > 1
            else [late[0]] * 99
        )
        return {
            "ticks": len(self.late),
            "p50_ms": cuts[49] * 1000,
            "p99_ms": cuts[98] * 1000,
            "max_ms": late[-1] * 1000,
        }


def _rate_after(samples: list[tuple[float, int]], skip: float) -> float | None:
    """Bytes per second from ``skip`` s after the first byte moved to the last byte."""
    moving = [(t, n) for t, n in samples if n > 0]
    if not moving:
        return None
    start = moving[0][0] + skip
    later = [(t, n) for t, n in moving if t >= start]
    if len(later) < 2 or later[-1][0] <= later[0][0]:
        return None
    return (later[-1][1] - later[0][1]) / (later[-1][0] - later[0][0])


async def _import(args: argparse.Namespace) -> dict[str, Any]:
    path = Path(args.path)
    size = await asyncio.to_thread(lambda: path.stat().st_size)  # a folder: its tar, below
    ticker = Ticker() if args.lag else None
    tick_task = asyncio.create_task(ticker.run()) if ticker else None
    sampler = StallSampler() if args.stalls else None
    if sampler is not None:
        sampler.start()
    rss_start = psutil.Process().memory_info().rss
    cpu0, t0 = time.process_time(), time.perf_counter()
    started = time.monotonic()
    status: str | None = "SUCCESS"
    model_id: str | None = None
    pacing: dict[str, Any] = {}
    if args.mode == "library":
        network = {"ca_bundle": args.ca_bundle, "proxy": args.proxy}
        async with KoreClient(
            host=args.host,
            api_key=args.key,
            state_dir=args.state_dir,
            concurrency=args.concurrency,
            limit_rate=args.limit_rate,
            checksum=not args.no_checksum,
            **network,
        ) as kore:
            samples: list[tuple[float, int]] = []

            def sample(event: ProgressEvent) -> None:
                samples.append((time.perf_counter(), event.bytes_done))

            result = await kore.models.import_file(
                path, chunk_size=args.chunk_size, resume=False, on_progress=sample
            )
            status, model_id, size = result.status, result.model_id, result.bytes
            controller = kore.pacer.controller
            pacing = {
                "peak_concurrency": result.peak_concurrency,
                "final_concurrency": result.final_concurrency,
                "decisions": [
                    f"{d.at - started:.2f}s {d.old}->{d.new}: {d.reason}"
                    for d in controller.decisions
                ],
                "pauses": kore.pacer.gate.pauses,
                "upload_rate_after_2s": _rate_after(samples, 2.0),
            }
    else:
        chunk = args.chunk_size or 16 << 20
        naive = naive_gather if args.mode == "naive-gather" else naive_sequential
        await naive(f"{args.host}/api/public", args.key, path, size, chunk)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    out: dict[str, Any] = {
        "mode": args.mode,
        "status": status,
        "model_id": model_id,
        "bytes": size,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_start": rss_start,
        **pacing,
    }
    if ticker is not None and tick_task is not None:
        tick_task.cancel()
        out["lag"] = ticker.summary()
    if sampler is not None:
        sampler.stop()
        out["stall_sites"] = sampler.top()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_once")
    parser.add_argument("path")
    parser.add_argument("--host", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--chunk-size", type=parse_size, default=None)
    parser.add_argument("--concurrency", default=None, help='"auto" or a number')
    parser.add_argument("--limit-rate", default=None, help="e.g. 50MB/s")
    parser.add_argument(
        "--mode", choices=["library", "naive-gather", "naive-sequential"], default="library"
    )
    parser.add_argument("--lag", action="store_true", help="run the 5 ms ticker alongside")
    parser.add_argument(
        "--stalls", action="store_true", help="sample the loop thread's stack when it stalls"
    )
    parser.add_argument("--state-dir", default=None)
    parser.add_argument("--ca-bundle", default=None, help="for an https:// emulator")
    parser.add_argument("--proxy", default=None, help="a proxy on loopback")
    parser.add_argument(
        "--no-checksum", action="store_true", help="skip the SHA-256 (as curl does)"
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (if installed)")
    args = parser.parse_args()
    loopback = ("127.0.0.1", "[::1]", "localhost")
    if not args.host.startswith(tuple(f"{s}://{h}" for s in ("http", "https") for h in loopback)):
        parser.error("benchmarks only talk to loopback")
    if args.uvloop:
        import uvloop  # an optional speed-up tried by the TLS benchmark

        print(json.dumps(uvloop.run(_import(args))))
    else:
        print(json.dumps(asyncio.run(_import(args))))


if __name__ == "__main__":
    main()
