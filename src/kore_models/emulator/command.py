"""The `kore-models emulator` click command (also `python -m kore_models.emulator`)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
from pydantic import ByteSize, TypeAdapter, ValidationError

from .config import DEFAULT_API_KEY, DEFAULT_MAX_CHUNK_BYTES, FAULT_KINDS, EmulatorConfig, mask_key
from .errors import ListenError
from .guards import CONTROL_TOKEN_HEADER
from .server import RunningEmulator, run_emulator
from .tls import EmulatorTLS, TLSSetupError

EXIT_USAGE = 2
EPILOG = """\b
Examples (one per option):
  kore-models emulator                                  # 127.0.0.1:8700, temp data folder
  kore-models emulator --bind ::1 --port 0              # any free port on IPv6 loopback
  kore-models emulator --data-dir ./emu-data            # keep models between runs
  kore-models emulator --api-key kg-my-test-key         # or KORE_EMULATOR_API_KEY=...
  kore-models emulator --storage discard                # count bytes, store nothing
  kore-models emulator --max-data-size 20GiB            # refuse imports beyond (507)
  kore-models emulator --job-seconds 0                  # jobs finish at once
  kore-models emulator --session-ttl 600                # sessions expire after 10 min
  kore-models emulator --max-chunk-bytes 16MiB          # smaller chunks only (413)
  kore-models emulator --latency-ms 50                  # each request waits 50 ms
  kore-models emulator --throughput 20MB                # 20 MB/s per connection
  kore-models emulator --total-throughput 60MB          # 60 MB/s over all connections
  kore-models emulator --max-chunks-in-flight 4         # 429 + Retry-After beyond 4
  kore-models emulator --failure-rate 0.05              # 5% of requests fail
  kore-models emulator --failure-kinds 503,reset        # ... with these faults
  kore-models emulator --retry-after 2                  # Retry-After of 429s, seconds
  kore-models emulator --stall-seconds 10               # how long a "stall" fault lasts
  kore-models emulator --rate-limit-per-minute 100      # per API key, then 429
  kore-models emulator --dock-status-rate-limit-per-minute 30  # per job, then 429
  kore-models emulator --download-base-url http://localhost:8700  # origin in export URLs
  kore-models emulator --seed 7                         # repeatable random failures
  kore-models emulator --header-timeout 10              # close connections idle 10 s
  kore-models emulator --body-timeout 30                # 408 when a body stalls 30 s
  kore-models emulator --bind 0.0.0.0 --control-token s3cret-token  # /_emulator needs it
  kore-models emulator --port 0 --ready-file /tmp/emu.url  # URL written once listening
  kore-models emulator --tls --data-dir ./emu-data      # HTTPS; CA in ./emu-data/tls/ca.pem
  kore-models emulator --tls-cert c.pem --tls-key k.pem # HTTPS with your own certificate
  kore-models emulator --tls --tls-client-ca ca.pem     # mutual TLS: client certs required

\b
Network profiles (as in the benchmarks):
  WAN:             --latency-ms 50 --throughput 20MB
  capped uplink:   --latency-ms 50 --throughput 20MB --total-throughput 60MB
  guarded server:  --max-chunks-in-flight 4 --retry-after 1

Exit codes: 0 stopped by SIGINT/SIGTERM, 2 bad option or the address cannot be used.
"""


class ByteSizeParam(click.ParamType):  # type: ignore[type-arg]  # generic only in click>=8.2
    """A size such as 1048576, 16MiB or 20MB (an optional "/s" is ignored)."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().removesuffix("/s")
        try:
            return int(float(text))  # a plain number of bytes, also 1e6 or 500000.0
        except ValueError:
            pass
        try:
            return int(TypeAdapter(ByteSize).validate_python(text))
        except ValidationError:
            self.fail(f"{value!r} is not a size (examples: 1048576, 16MiB, 20MB)", param, ctx)


SIZE = ByteSizeParam()


def _write_ready_file(path: Path, url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(url + "\n")
    os.replace(tmp, path)


def banner(emu: RunningEmulator, given_key: bool) -> list[str]:
    """The stderr lines after start-up: where the data is and how to point the client at it."""
    config = emu.config
    lines = [
        f"data dir: {emu.state.data_dir} (storage: {config.storage})",
        "point kore-models at it (paste into your shell):",
        f"  export KORE_HOST={emu.url}",
    ]
    if emu.ca_file is not None:  # generated TLS: the CA to trust, ready to paste
        lines.append(f"  export KORE_CA_BUNDLE={emu.ca_file}  # or --ca-bundle {emu.ca_file}")
    if given_key:
        lines.append(f"  export KORE_API_KEY=...  # the key you gave ({mask_key(config.api_key)})")
    else:
        lines.append(f"  export KORE_API_KEY={config.api_key}")
    if config.control_token is not None:
        shown = config.control_token if emu.generated_control_token else "the token you gave"
        lines.append(f"control API /_emulator needs header {CONTROL_TOKEN_HEADER}: {shown}")
    return lines


async def _serve(
    config: EmulatorConfig,
    host: str,
    port: int,
    ready_file: Path | None,
    given_key: bool,
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
        sys.stdout.flush()
        for line in banner(emu, given_key):
            click.echo(line, err=True)
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


@click.command("emulator", epilog=EPILOG)
@click.option(
    "--bind",
    "host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Beyond loopback the control API needs a token.",
)
@click.option(
    "--port",
    default=8700,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port; 0 picks a free one (read it from stdout or --ready-file).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep models, sessions and jobs here across runs "
    "[default: a temporary folder removed on exit].",
)
@click.option(
    "--api-key",
    envvar="KORE_EMULATOR_API_KEY",
    default=None,
    help=f"Key clients must send in x-api-key (env KORE_EMULATOR_API_KEY) "
    f"[default: {DEFAULT_API_KEY}].",
)
@click.option(
    "--storage",
    type=click.Choice(["disk", "discard"]),
    default="disk",
    show_default=True,
    help="disk keeps uploaded bytes (exports work); discard only counts them.",
)
@click.option(
    "--max-data-size",
    type=SIZE,
    default=None,
    help="Cap the data folder; imports that do not fit get 507 [default: no cap].",
)
@click.option(
    "--job-seconds",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="How long each import/export/deploy job stays IN_PROGRESS.",
)
@click.option(
    "--session-ttl",
    type=click.FloatRange(min=0, min_open=True),
    default=86400.0,
    show_default=True,
    help="Seconds before an unfinished upload session expires.",
)
@click.option(
    "--max-chunk-bytes",
    type=SIZE,
    default=DEFAULT_MAX_CHUNK_BYTES,
    show_default=True,
    help="Largest chunk accepted; bigger ones get 413.",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Delay added before each API request is handled.",
)
@click.option(
    "--throughput",
    type=SIZE,
    default=None,
    help="Per-connection cap in bytes/s on uploads and downloads [default: none].",
)
@click.option(
    "--total-throughput",
    type=SIZE,
    default=None,
    help="Cap in bytes/s shared by all connections [default: none].",
)
@click.option(
    "--max-chunks-in-flight",
    type=click.IntRange(min=1),
    default=None,
    help="Chunk uploads handled at once; more get 429 + Retry-After [default: no limit].",
)
@click.option(
    "--failure-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of API requests answered with a random fault.",
)
@click.option(
    "--failure-kinds",
    callback=_kinds,
    default=None,
    help=f"Faults to pick from, comma-separated: {','.join(FAULT_KINDS)} "
    "[default: 500,502,503,429].",
)
@click.option(
    "--retry-after",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Retry-After seconds sent with 429 answers.",
)
@click.option(
    "--stall-seconds",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="How long a 'stall' fault neither reads nor answers.",
)
@click.option(
    "--rate-limit-per-minute",
    type=click.IntRange(min=1),
    default=None,
    help="Requests per API key per rolling minute, then 429 [default: none].",
)
@click.option(
    "--dock-status-rate-limit-per-minute",
    type=click.IntRange(min=1),
    default=None,
    help="Dock-status polls per job per rolling minute, then 429 [default: none].",
)
@click.option(
    "--download-base-url",
    default=None,
    help="Origin written into export download URLs [default: the request's host].",
)
@click.option("--seed", type=int, default=None, help="Seed for random failures (repeatable runs).")
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a connection may take to send a request head, or sit idle.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds a request or response body may stall before 408 / disconnect.",
)
@click.option(
    "--control-token",
    envvar="KORE_EMULATOR_CONTROL_TOKEN",
    default=None,
    help=f"Require this in the {CONTROL_TOKEN_HEADER} header on /_emulator "
    "(env KORE_EMULATOR_CONTROL_TOKEN) [default: none on loopback, a random "
    "one printed at start beyond it].",
)
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
    api_key: str | None,
    storage: str,
    max_data_size: int | None,
    job_seconds: float,
    session_ttl: float,
    max_chunk_bytes: int,
    latency_ms: float,
    throughput: int | None,
    total_throughput: int | None,
    max_chunks_in_flight: int | None,
    failure_rate: float,
    failure_kinds: list[str] | None,
    retry_after: float,
    stall_seconds: float,
    rate_limit_per_minute: int | None,
    dock_status_rate_limit_per_minute: int | None,
    download_base_url: str | None,
    seed: int | None,
    header_timeout: float,
    body_timeout: float,
    control_token: str | None,
    tls: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_client_ca: Path | None,
    ready_file: Path | None,
) -> None:
    """Run the local Kore.ai model API emulator until SIGINT/SIGTERM.

    The one stdout line is "kore-models emulator listening on URL"; everything else goes to
    stderr. Every option marked as changeable in the docs can also be set while it runs with
    PATCH /_emulator/config. With --tls it serves HTTPS and writes its CA to
    <data-dir>/tls/ca.pem.
    """
    extra: dict[str, Any] = {} if failure_kinds is None else {"failure_kinds": failure_kinds}
    try:
        config = EmulatorConfig(
            api_key=api_key or DEFAULT_API_KEY,
            data_dir=data_dir,
            storage=storage,
            max_data_size=max_data_size,
            job_seconds=job_seconds,
            session_ttl_seconds=session_ttl,
            max_chunk_bytes=max_chunk_bytes,
            latency_ms=latency_ms,
            throughput_bytes_per_second=throughput,
            total_throughput_bytes_per_second=total_throughput,
            max_chunks_in_flight=max_chunks_in_flight,
            failure_rate=failure_rate,
            retry_after_seconds=retry_after,
            stall_seconds=stall_seconds,
            rate_limit_per_minute=rate_limit_per_minute,
            dock_status_rate_limit_per_minute=dock_status_rate_limit_per_minute,
            download_base_url=download_base_url,
            seed=seed,
            header_timeout_seconds=header_timeout,
            body_timeout_seconds=body_timeout,
            control_token=control_token,
            **extra,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise click.UsageError(problems) from None
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("give --tls-cert and --tls-key together")
    serve_tls = None
    if tls or tls_cert is not None or tls_client_ca is not None:
        serve_tls = EmulatorTLS(cert_file=tls_cert, key_file=tls_key, client_ca_file=tls_client_ca)
    try:
        asyncio.run(
            _serve(config, host, port, ready_file, given_key=api_key is not None, tls=serve_tls)
        )
    except ListenError as exc:
        click.echo(f"kore-models emulator: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except TLSSetupError as exc:
        raise click.UsageError(str(exc)) from None


def main() -> None:
    emulator_command(prog_name="python -m kore_models.emulator")
