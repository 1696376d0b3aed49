"""One `export_to_file` in this process; prints a JSON line (seconds, bytes, RSS at start)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]

from kore_models import KoreClient


async def _download(args: argparse.Namespace) -> dict[str, Any]:
    async with KoreClient(host=args.host, api_key=args.key, state_dir=args.state_dir) as kore:
        rss_start = psutil.Process().memory_info().rss
        cpu0, t0 = time.process_time(), time.perf_counter()
        ranges = None if args.ranges in (None, "auto") else int(args.ranges)
        result = await kore.models.export_to_file(args.model_id, args.dest, ranges=ranges)
        return {
            "peak_ranges": kore.pacer.controller.peak if ranges is None else ranges,
            "bytes": result.bytes,
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - cpu0,
            "rss_start": rss_start,
        }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.download_once")
    parser.add_argument("model_id")
    parser.add_argument("dest")
    parser.add_argument("--host", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--state-dir", default=None)
    parser.add_argument("--ranges", default=None, help='"auto" (default) or a number')
    args = parser.parse_args()
    if not args.host.startswith(("http://127.0.0.1", "http://[::1]", "http://localhost")):
        parser.error("benchmarks only talk to loopback")
    print(json.dumps(asyncio.run(_download(args))))


if __name__ == "__main__":
    main()
