"""The `kore-models emulator` click command (also `python -m kore_models.emulator`)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path

import click

from .config import DEFAULT_MAX_CHUNK_BYTES, FAULT_KINDS, EmulatorConfig, mask_key
from .server import run_emulator
from .tls import EmulatorTLS, TLSSetupError


def _write_ready_file(path: Path, url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(url + "\n")
    os.replace(tmp, path)


async def _serve(
    config: EmulatorConfig,
    host: str,
    port: int,
    ready_file: Path | None,
    tls: EmulatorTLS | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with run_emulator(config, host=host, port=port, tls=tls) as emu:
        if ready_file is not None:
            _write_ready_file(ready_file, emu.url)
        click.echo(f"kore-models emulator listening on {emu.url}")
        if emu.ca_file is not None:
            click.echo(f"TLS: its CA is {emu.ca_file}; trust it with:")
            click.echo(f"  --ca-bundle {emu.ca_file}")
        sys.stdout.flush()
        click.echo(
            f"data dir: {emu.state.data_dir} storage: {config.storage} "
            f"api key: {mask_key(config.api_key)}",
            err=True,
        )
        await stop.wait()
    click.echo("kore-models emulator stopped", err=True)


def _kinds(_: click.Context, __: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    bad = [k for k in kinds if k not in FAULT_KINDS]
    if bad or not kinds:
        raise click.BadParameter(f"choose from {','.join(FAULT_KINDS)}")
    return kinds


@click.command("emulator")
@click.option("--bind", "host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8700, show_default=True, type=int, help="Port (0 = any free).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep state here (default: a temp dir removed on exit).",
)
@click.option(
    "--api-key",
    envvar="KORE_EMULATOR_API_KEY",
    default="kg-emulator-local-key",
    show_default=True,
    help="Key required in x-api-key (env KORE_EMULATOR_API_KEY).",
)
@click.option(
    "--storage", type=click.Choice(["disk", "discard"]), default="disk", show_default=True
)
@click.option("--job-seconds", type=float, default=2.0, show_default=True)
@click.option("--session-ttl", type=float, default=86400.0, show_default=True, help="Seconds.")
@click.option("--max-chunk-bytes", type=int, default=DEFAULT_MAX_CHUNK_BYTES, show_default=True)
@click.option("--latency-ms", type=float, default=0.0, show_default=True)
@click.option("--throughput", type=float, default=None, help="Per-connection cap, bytes/s.")
@click.option("--failure-rate", type=float, default=0.0, show_default=True)
@click.option("--failure-kinds", callback=_kinds, default=None, help="e.g. 500,503,429,reset")
@click.option("--retry-after", type=float, default=1.0, show_default=True, help="Seconds.")
@click.option("--stall-seconds", type=float, default=30.0, show_default=True)
@click.option("--rate-limit-per-minute", type=int, default=None, help="Per API key.")
@click.option("--dock-status-rate-limit-per-minute", type=int, default=None, help="Per job id.")
@click.option("--download-base-url", default=None, help="Origin used in export download URLs.")
@click.option("--seed", type=int, default=None, help="Seed for random failures.")
@click.option("--tls", is_flag=True, help="Serve HTTPS with a certificate made for localhost.")
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve HTTPS with this PEM certificate instead of a generated one.",
)
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), help="Its PEM key.")
@click.option(
    "--tls-client-ca",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Require client certificates signed by this CA (mutual TLS).",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the URL here (atomically) once listening.",
)
def emulator_command(
    host: str,
    port: int,
    data_dir: Path | None,
    api_key: str,
    storage: str,
    job_seconds: float,
    session_ttl: float,
    max_chunk_bytes: int,
    latency_ms: float,
    throughput: float | None,
    failure_rate: float,
    failure_kinds: list[str] | None,
    retry_after: float,
    stall_seconds: float,
    rate_limit_per_minute: int | None,
    dock_status_rate_limit_per_minute: int | None,
    download_base_url: str | None,
    seed: int | None,
    tls: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_client_ca: Path | None,
    ready_file: Path | None,
) -> None:
    """Run the local Kore.ai model API emulator until SIGINT/SIGTERM.

    With --tls it serves HTTPS: the CA it generates is written to <data-dir>/tls/ca.pem.
    """
    extra = {} if failure_kinds is None else {"failure_kinds": failure_kinds}
    try:
        config = EmulatorConfig(
            api_key=api_key,
            data_dir=data_dir,
            storage=storage,
            job_seconds=job_seconds,
            session_ttl_seconds=session_ttl,
            max_chunk_bytes=max_chunk_bytes,
            latency_ms=latency_ms,
            throughput_bytes_per_second=throughput,
            failure_rate=failure_rate,
            retry_after_seconds=retry_after,
            stall_seconds=stall_seconds,
            rate_limit_per_minute=rate_limit_per_minute,
            dock_status_rate_limit_per_minute=dock_status_rate_limit_per_minute,
            download_base_url=download_base_url,
            seed=seed,
            **extra,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("give --tls-cert and --tls-key together")
    serve_tls = None
    if tls or tls_cert is not None or tls_client_ca is not None:
        serve_tls = EmulatorTLS(cert_file=tls_cert, key_file=tls_key, client_ca_file=tls_client_ca)
    try:
        asyncio.run(_serve(config, host, port, ready_file, serve_tls))
    except TLSSetupError as exc:
        raise click.UsageError(str(exc)) from None


def main() -> None:
    emulator_command(prog_name="python -m kore_models.emulator")
