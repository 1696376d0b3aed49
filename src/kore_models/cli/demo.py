"""``kore-models demo``: the whole journey against an in-process emulator, timed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import DownloadError
from ..types import DeployConfig
from .context import get_globals, run_command
from .demo_folder import expected_archive, matches_folder, write_model_folder
from .errors import EXIT_OK
from .options import command
from .output import Output, human_bytes, human_rate
from .params import BYTE_SIZE
from .progress import ProgressDisplay, pick_mode

__all__ = ["EmulatorThread", "demo_command"]

_BLOCK = 4 * 1024 * 1024
_DEPLOY = {
    "name": "kore-models-demo",
    "deviceType": "g5.xlarge",
    "hyperParameters": {"temperature": 0.7, "maxTokens": 256, "topP": 0.9, "topK": 40},
    "scalingParameters": {"minReplicas": 1, "maxReplicas": 2},
}


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class EmulatorThread:
    """The emulator on its own event loop in a thread (so server and client use both cores)."""

    def __init__(self, data_dir: Path, job_seconds: float, tls: bool = False):
        self.data_dir = data_dir
        self.job_seconds = job_seconds
        self.tls = tls
        self.ca_file: Path | None = None
        self.url = ""
        self.api_key = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="kore-emulator", daemon=True)

    def start(self) -> str:
        """Start and return the URL once it listens."""
        self._thread.start()
        if not self._ready.wait(20) or self._error is not None:
            raise RuntimeError(f"the emulator did not start: {self._error}")
        return self.url

    def stop(self) -> None:
        """Stop the server and join the thread (idempotent)."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        from ..emulator import EmulatorConfig, run_emulator
        from ..emulator.tls import EmulatorTLS

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        config = EmulatorConfig(data_dir=self.data_dir, job_seconds=self.job_seconds)
        tls = EmulatorTLS() if self.tls else None
        async with run_emulator(config, host="127.0.0.1", port=0, tls=tls) as emulator:
            self.url = emulator.url
            self.ca_file = emulator.ca_file
            self.api_key = config.api_key
            self._ready.set()
            await self._stop.wait()


@dataclass
class _Step:
    name: str
    seconds: float
    detail: str = ""


async def _demo(
    out: Output,
    root: Path,
    size: int,
    job_seconds: float,
    progress: str = "auto",
    tls: bool = False,
) -> dict[str, Any]:
    from ..client import KoreClient

    steps: list[_Step] = []
    started = time.monotonic()
    folder = root / "demo-model"
    out.info(
        f"1/6 generating a Hugging Face-like model folder with {human_bytes(size)} of "
        f"weights in {folder}"
    )
    t0 = time.monotonic()
    stop = threading.Event()
    try:
        files = await asyncio.to_thread(
            functools.partial(write_model_folder, folder, size, stop=stop)
        )
    except BaseException:
        stop.set()
        raise
    steps.append(_Step("generate", time.monotonic() - t0, f"{files} files"))

    emulator = EmulatorThread(root / "emulator", job_seconds, tls=tls)
    t0 = time.monotonic()
    url = await asyncio.to_thread(emulator.start)
    out.info(f"    emulator listening on {url} (job time {job_seconds:g} s)")
    steps.append(_Step("start emulator", time.monotonic() - t0, url))
    try:
        async with KoreClient(
            url,
            emulator.api_key,
            state_dir=root / "state",
            poll_initial=0.25,
            poll_min_interval=0.25,
            poll_max=1.0,
            ca_bundle=emulator.ca_file,  # with --tls: the CA the emulator generated
        ) as kore:
            out.add_secret(emulator.api_key)
            with ProgressDisplay(out, pick_mode(out, progress)) as display:
                out.info(
                    "2/6 importing the folder itself: sent as demo-model.tar, generated "
                    "while it uploads (chunked, then processing on the server)"
                )
                t0 = time.monotonic()
                imported = await kore.models.import_file(
                    folder, on_progress=display.track("import")
                )
                rate = human_rate(imported.bytes, time.monotonic() - t0)
                steps.append(_Step("import", time.monotonic() - t0, f"{rate} incl. processing"))
                model_id = str(imported.model_id)
                out.info(f"3/6 exporting model {model_id} and downloading it")
                t0 = time.monotonic()
                exported = await kore.models.export_to_file(
                    model_id, root / "exported.tar", on_progress=display.track("export")
                )
                rate = human_rate(exported.bytes, time.monotonic() - t0)
                steps.append(_Step("export", time.monotonic() - t0, f"{rate} incl. processing"))
            out.info("4/6 checking the download is the folder's tar (sha256, member names)")
            t0 = time.monotonic()
            archive_bytes, original_sha, names = await asyncio.to_thread(expected_archive, folder)
            exported_sha = await asyncio.to_thread(sha256_file, exported.path)
            same_members = await asyncio.to_thread(matches_folder, exported.path, names)
            if exported_sha != original_sha or exported.bytes != archive_bytes or not same_members:
                raise DownloadError(
                    f"the exported model differs from the folder's tar: sha256 {exported_sha} "
                    f"!= {original_sha}"
                )
            steps.append(_Step("verify", time.monotonic() - t0, f"sha256 {original_sha[:16]}…"))
            out.info(f"5/6 deploying {model_id} and waiting for it")
            t0 = time.monotonic()
            deploy = DeployConfig.model_validate(_DEPLOY)
            deployed = await kore.models.deploy(model_id, "openSource", deploy, wait=True)
            steps.append(_Step("deploy", time.monotonic() - t0, str(deployed.status)))
            out.info(f"6/6 undeploying {model_id} and waiting for it")
            t0 = time.monotonic()
            undeployed = await kore.models.undeploy(model_id, wait=True)
            steps.append(_Step("undeploy", time.monotonic() - t0, str(undeployed.status)))
    finally:
        await asyncio.to_thread(emulator.stop)
    total = time.monotonic() - started
    return {
        "ok": True,
        "tls": tls,
        "modelId": model_id,
        "folder": str(folder),
        "files": len(names),
        "archiveBytes": archive_bytes,
        "sha256": original_sha,
        "importSeconds": round(imported.seconds, 3),
        "importMBps": round(archive_bytes / imported.seconds / 1e6, 1),
        "exportSeconds": round(exported.seconds, 3),
        "exportMBps": round(exported.bytes / exported.seconds / 1e6, 1),
        "chunks": imported.chunks,
        "retries": imported.retries,
        "steps": [
            {"name": s.name, "seconds": round(s.seconds, 3), "detail": s.detail} for s in steps
        ],
        "seconds": round(total, 3),
    }


def _summary_lines(result: dict[str, Any]) -> list[str]:
    size = human_bytes(result["archiveBytes"])
    lines = [
        f"demo OK: imported, exported, verified, deployed and undeployed model "
        f"{result['modelId']} in {result['seconds']:.1f} s",
        f"  folder {result['folder']} sent as a {size} tar of {result['files']} members "
        f"({result['chunks']} chunks, {result['retries']} retries), sha256 {result['sha256']}",
        f"  import {result['importSeconds']:.1f} s ({result['importMBps']} MB/s end to end), "
        f"export {result['exportSeconds']:.1f} s ({result['exportMBps']} MB/s end to end)",
    ]
    for step in result["steps"]:
        lines.append(f"  {step['name']:<15} {step['seconds']:6.2f} s  {step['detail']}")
    return lines


@command("demo")
@click.option(
    "--size",
    type=BYTE_SIZE,
    default="256MiB",
    show_default=True,
    help="Bytes of random weights in the generated archive.",
)
@click.option(
    "--job-seconds",
    type=click.FloatRange(0, 30),
    default=1.0,
    show_default=True,
    help="How long each emulated server job takes.",
)
@click.option(
    "--dir",
    "work_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Work here instead of a fresh temporary folder (kept afterwards).",
)
@click.option("--tls", is_flag=True, help="Run it all over HTTPS (the emulator makes its own CA).")
@click.option("--keep", is_flag=True, help="Keep the temporary folder and print its path.")
@click.option("--json", "json_mode", is_flag=True, help="One JSON object on stdout.")
@click.pass_context
def demo_command(
    ctx: click.Context,
    size: int,
    job_seconds: float,
    work_dir: Path | None,
    tls: bool,
    keep: bool,
    json_mode: bool,
) -> None:
    """Run the whole journey on a local emulator: import, export, verify, deploy, undeploy.

    The model is a generated Hugging Face-like folder (config, tokenizer, safetensors
    shards), imported as a folder: no tar is written to disk first.

    Needs no account or network: the emulator runs inside this process on 127.0.0.1.
    """
    g = get_globals(ctx)
    out = g.output(json_mode=json_mode)
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="kore-models-demo-", dir=work_dir))
    else:
        root = Path(tempfile.mkdtemp(prefix="kore-models-demo-"))

    async def main() -> int:
        result = await _demo(out, root, size, job_seconds, g.progress, tls)
        out.result(result, _summary_lines(result))
        return EXIT_OK

    try:
        run_command(ctx, out, main)
    finally:
        if keep or work_dir is not None:
            out.info(f"demo files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
