"""One import (with or without SHA-256), verify or export in this process; prints JSON.

``--hash off`` imports with ``checksum=False`` (the setting users have to skip hashing), so
the same import can be timed with and without its SHA-256. With hashing on, the hashing
thread's own CPU time is reported beside the whole process's. ``--verify MODEL_ID``
compares the model with the file instead; ``--export MODEL_ID`` downloads it to the path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from kore_models import KoreClient
from kore_models.transfer.hashing import HashResult, TrailingHasher


async def _import(args: argparse.Namespace) -> dict[str, Any]:
    path = Path(args.path)
    hashed: list[HashResult] = []
    if args.hash == "on":
        digest = TrailingHasher.digest

        async def recording_digest(self: TrailingHasher) -> HashResult:
            result = await digest(self)
            if not hashed:
                hashed.append(result)
            return result

        TrailingHasher.digest = recording_digest  # type: ignore[method-assign]
    cpu0, t0 = time.process_time(), time.perf_counter()
    async with KoreClient(
        host=args.host, api_key=args.key, state_dir=args.state_dir, checksum=args.hash == "on"
    ) as kore:
        if args.verify:
            checked = await kore.models.verify(args.verify, path)
            return {
                "status": "SUCCESS" if checked.matches else "MISMATCH",
                "bytes": checked.model_bytes,
                "seconds": time.perf_counter() - t0,
                "cpu_seconds": time.process_time() - cpu0,
                "sha256": checked.model_sha256,
            }
        if args.export:
            exported = await kore.models.export_to_file(args.export, path)
            return {
                "status": "SUCCESS",
                "bytes": exported.bytes,
                "seconds": time.perf_counter() - t0,
                "cpu_seconds": time.process_time() - cpu0,
                "sha256": exported.sha256,
            }
        result = await kore.models.import_file(path, resume=False)
    seconds = time.perf_counter() - t0
    return {
        "status": result.status,
        "model_id": result.model_id,
        "bytes": result.bytes,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu0,
        "sha256": result.sha256,
        "hash_cpu_seconds": hashed[0].cpu_seconds if hashed else 0.0,
        "hash_seconds": hashed[0].seconds if hashed else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.integrity_once")
    parser.add_argument("path")
    parser.add_argument("--host", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--hash", choices=["on", "off"], default="on")
    parser.add_argument("--verify", metavar="MODEL_ID", help="verify the model against PATH")
    parser.add_argument("--export", metavar="MODEL_ID", help="export the model to PATH")
    args = parser.parse_args()
    if not args.host.startswith(("http://127.0.0.1", "http://[::1]")):
        parser.error("benchmarks only talk to loopback")
    print(json.dumps(asyncio.run(_import(args))))


if __name__ == "__main__":
    main()
