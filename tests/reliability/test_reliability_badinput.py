"""Bad input across the CLI, the library and servers that misbehave.

Each case must end with one clear error line (no traceback), the documented exit code or
exception class, nothing written where it should not be (no journal for refused input, no
output file for a failed export), and nothing sent that should not be.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from kore_models import KoreClient
from kore_models.cli import cli
from kore_models.errors import (
    JobTimeoutError,
    KoreConnectionError,
    KoreError,
    ResponseValidationError,
    ServerError,
)
from kore_models.transfer.journal import journal_path
from tests.support.reliability import (
    API_KEY,
    EmulatorProcess,
    FakeServer,
    assert_one_clean_error_line,
    cli_env,
    files_under,
    json_response,
    make_model_tar,
    run_cli,
    sha256_of,
    start_cli,
    wait_until,
)

MiB = 1024 * 1024
WRONG_KEY = "kg-wrong-key-for-reliability-4242"
DEPLOY_FIELDS = [
    "--model-type", "openSource", "--name", "n", "--device-type", "g5.xlarge",
    "--temperature", "1", "--max-tokens", "8", "--top-p", "1", "--top-k", "5",
]  # fmt: skip


# ---- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """One emulator subprocess for this module (jobs take 0.2 s)."""
    folder = tmp_path_factory.mktemp("badinput-emulator")
    process = EmulatorProcess(folder / "data", "--job-seconds", "0.2", api_key=API_KEY)
    process.start()
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture
def emu(emulator: EmulatorProcess) -> EmulatorProcess:
    """The module's emulator with zeroed counters, default pace and no pending faults."""
    emulator.control("DELETE", "/script")
    emulator.configure(throughput_bytes_per_second=None, max_chunk_bytes=64 * MiB + 64 * 1024)
    emulator.reset_counters()
    return emulator


Invoke = Callable[..., Result]


@pytest.fixture
def invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``invoke(url, *args, key=..., **env)``: the CLI in-process, with fast retries."""
    for name in list(os.environ):
        if name.startswith("KORE_"):
            monkeypatch.delenv(name)
    runner = CliRunner()

    def run(url: str, *args: str, key: str = API_KEY, **env: str) -> Result:
        merged = {
            "KORE_HOST": url,
            "KORE_API_KEY": key,
            "KORE_STATE_DIR": str(tmp_path / "state"),
            "KORE_RETRY_SLEEPS": "false",
            "KORE_MAX_ATTEMPTS": "2",
            "KORE_CONNECT_TIMEOUT": "2",
            "KORE_READ_TIMEOUT": "5",
            "KORE_POLL_INITIAL": "0.05",
            "KORE_POLL_MIN_INTERVAL": "0.05",
            "KORE_POLL_MAX": "0.2",
            **env,
        }
        return runner.invoke(cli, list(args), env=merged, catch_exceptions=False)

    return run


def journals(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "state" / "journals"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def requests_sent(emulator: EmulatorProcess) -> int:
    """API requests the emulator saw (known routes, and answers to unknown ones)."""
    counters = emulator.counters()
    known: int = sum(counters["requests"].values())
    answered: int = sum(counters["responses_by_status"].values())
    return max(known, answered)


def model_tar(tmp_path: Path, name: str = "model.tar", size: int = 300_000) -> Path:
    path = tmp_path / name
    make_model_tar(path, size, seed=size)
    return path


# ---- local input ----------------------------------------------------------------------


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "no-such-model.tar"


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.tar"
    path.write_bytes(b"")
    return path


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "a-folder.tar"
    path.mkdir()
    return path


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.tar"
    os.mkfifo(path)
    return path


def _unreadable(tmp_path: Path) -> Path:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading the file")
    path = model_tar(tmp_path, "locked.tar")
    path.chmod(0)
    return path


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_missing, "no such file"),
        (_empty, "is empty (0 bytes)"),
        (_directory, "the folder has no files"),  # a folder is imported as its tar
        (_fifo, "is not a regular file"),
        (_unreadable, "cannot be read"),
    ],
    ids=["missing", "empty", "directory", "fifo", "unreadable"],
)
def test_local_file_problems_exit_2_before_any_request(
    emu: EmulatorProcess,
    invoke: Invoke,
    tmp_path: Path,
    make: Callable[[Path], Path],
    problem: str,
) -> None:
    path = make(tmp_path)
    result = invoke(emu.url, "import", str(path), "--json")
    assert result.exit_code == 2, result.output
    assert_one_clean_error_line(result.stderr, str(path), problem)
    assert json.loads(result.stdout)["error"]["type"] == "LocalFileError"
    assert requests_sent(emu) == 0
    assert journals(tmp_path) == []


BAD_OPTIONS = [
    (["--chunk-size", "0"], "at least 1"),
    (["--chunk-size", "-5MiB"], "is not a size"),
    (["--chunk-size", "1TiB"], "is not a size"),
    (["--chunk-size", "1e9"], "is not a size"),
    (["--concurrency", "0"], 'must be "auto" or a number from 1 to 256'),
    (["--concurrency", "-3"], 'must be "auto" or a number from 1 to 256'),
    (["--concurrency", "100000"], 'must be "auto" or a number from 1 to 256'),
    (["--parallel-files", "0"], "not in the range"),
    (["--timeout", "0"], "not in the range"),
    (["--timeout", "-1"], "not in the range"),
]


@pytest.mark.parametrize(
    ("args", "problem"), BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS]
)
def test_bad_option_values_exit_2_and_send_nothing(
    emu: EmulatorProcess, invoke: Invoke, tmp_path: Path, args: list[str], problem: str
) -> None:
    path = model_tar(tmp_path)
    result = invoke(emu.url, "import", str(path), *args)
    assert result.exit_code == 2, result.output
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert requests_sent(emu) == 0
    assert journals(tmp_path) == []


def test_a_chunk_size_above_the_servers_limit_fails_on_the_first_chunk_without_retrying(
    emu: EmulatorProcess, invoke: Invoke, tmp_path: Path
) -> None:
    path = model_tar(tmp_path, size=3 * MiB)
    emu.configure(max_chunk_bytes=MiB)
    result = invoke(emu.url, "import", str(path), "--chunk-size", "1GiB")
    assert result.exit_code == 10, result.output
    assert_one_clean_error_line(result.stderr, "HTTP 413", "max_chunk_bytes")
    counters = emu.counters()
    assert counters["requests"]["chunk"] == 1, "a 413 is not retried"
    assert counters["requests"]["complete"] == 0
    # within the limit the same file imports fine
    emu.configure(max_chunk_bytes=64 * MiB)
    again = invoke(emu.url, "import", str(path), "--chunk-size", "1GiB", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["chunks"] == 1


@pytest.mark.parametrize("change", ["grows", "shrinks"])
def test_a_file_that_changes_during_the_upload_exits_8_and_the_rerun_sends_the_new_bytes(
    emu: EmulatorProcess, tmp_path: Path, change: str
) -> None:
    path = model_tar(tmp_path, size=3 * MiB)
    env = cli_env(emu.url, tmp_path / "state")
    emu.configure(throughput_bytes_per_second=1_000_000)
    args = ["import", str(path), "--chunk-size", "256KiB", "--concurrency", "2", "--no-wait"]
    process = start_cli(*args, env=env)
    try:
        wait_until(lambda: emu.counters()["chunks_received"] >= 1, timeout=30)
        with open(path, "r+b") as handle:
            if change == "grows":
                handle.seek(0, os.SEEK_END)
                handle.write(b"\0" * 10240)
            else:
                handle.truncate(path.stat().st_size // 2)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 8, err
    assert_one_clean_error_line(err, str(path), "the import was stopped")
    assert out == ""
    assert emu.counters()["requests"]["complete"] == 0, "a changed file is never completed"

    emu.configure(throughput_bytes_per_second=None)
    rerun = run_cli(*args, "--json", env=env)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["resumed"] is False
    assert result["bytes"] == path.stat().st_size
    assert emu.model(result["modelId"])["sha256"] == sha256_of(path)


# ---- hosts and keys -------------------------------------------------------------------


@pytest.fixture
def resolutions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names looked up; any name that is not loopback fails without leaving the machine."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in ("127.0.0.1", "::1", "localhost"):
            return real(host, *args, **kwargs)
        looked_up.append(name)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return looked_up


def test_an_unresolvable_host_exits_7_after_the_retry_budget(
    invoke: Invoke, tmp_path: Path, resolutions: list[str]
) -> None:
    path = model_tar(tmp_path)
    result = invoke("https://no-such-host.invalid", "import", str(path), "--json")
    assert result.exit_code == 7, result.output
    assert_one_clean_error_line(result.stderr, "no-such-host.invalid", "connection failed")
    assert json.loads(result.stdout)["error"]["type"] == "KoreConnectionError"
    assert resolutions == ["no-such-host.invalid"] * 2  # KORE_MAX_ATTEMPTS=2
    assert journals(tmp_path) == []


@pytest.mark.parametrize(
    "host", ["http://agent-platform.kore.ai", "http://10.1.2.3:8080", "http://127.0.0.1.nip.io"]
)
@pytest.mark.parametrize(
    "command", [["status", "ds-1"], ["export", "cm-1"], ["import", "X"]], ids=lambda c: c[0]
)
def test_plain_http_to_a_remote_host_is_refused_and_nothing_is_sent(
    invoke: Invoke, tmp_path: Path, resolutions: list[str], host: str, command: list[str]
) -> None:
    args = [str(model_tar(tmp_path)) if a == "X" else a for a in command]
    result = invoke(host, *args)
    assert result.exit_code == 2, result.output
    assert_one_clean_error_line(result.stderr, "refusing plain http")
    assert resolutions == [], "not even a DNS lookup"
    assert journals(tmp_path) == []
    assert not list(tmp_path.glob("*.part"))


def test_a_host_without_a_scheme_gets_https(
    emu: EmulatorProcess, invoke: Invoke, tmp_path: Path
) -> None:
    bare = emu.url.removeprefix("http://")  # 127.0.0.1:PORT, which speaks plain http
    result = invoke(bare, "status", "ds-1", "--json", KORE_MAX_ATTEMPTS="3")
    assert result.exit_code == 13, result.output  # TLS, not a retryable network error
    line = assert_one_clean_error_line(result.stderr, f"https://{bare}")
    assert f"Is the host http://{bare}?" in line
    # the emulator saw a TLS handshake, never an API request
    assert requests_sent(emu) == 0


@pytest.mark.parametrize(
    "command",
    [
        ["import", "MODEL"],
        ["status", "ds-1"],
        ["export", "cm-1"],
        ["undeploy", "cm-1", "--wait"],
        ["deploy", "cm-1", *DEPLOY_FIELDS],
    ],
    ids=lambda c: c[0],
)
def test_a_wrong_key_exits_3_after_exactly_one_request(
    emu: EmulatorProcess, invoke: Invoke, tmp_path: Path, command: list[str]
) -> None:
    args = [str(model_tar(tmp_path)) if a == "MODEL" else a for a in command]
    result = invoke(emu.url, *args, "--json", key=WRONG_KEY, KORE_MAX_ATTEMPTS="6")
    assert result.exit_code == 3, result.output
    assert_one_clean_error_line(result.stderr, "HTTP 401", "check the API key")
    assert WRONG_KEY not in result.output
    counters = emu.counters()
    assert sum(counters["requests"].values()) == 1, counters["requests"]
    assert counters["responses_by_status"] == {"401": 1}
    assert journals(tmp_path) == []
    assert not (tmp_path / "cm-1.tar").exists()


# ---- ids: encoded into one path segment, or refused -----------------------------------

JOB = {"_id": "ds-1", "status": "SUCCESS", "percentageComplete": 100, "modelId": "cm-1"}


async def _accept_anything(request: web.Request) -> web.StreamResponse:
    return json_response({**JOB, "dock-statusId": "ds-1"})


ENCODED = [
    (["export", "../../x", "--no-wait"], "POST /api/public/models/..%2F..%2Fx/export"),
    (["export", "a/b", "--no-wait"], "POST /api/public/models/a%2Fb/export"),
    (["export", "a b", "--no-wait"], "POST /api/public/models/a%20b/export"),
    (["export", "x?y#z", "--no-wait"], "POST /api/public/models/x%3Fy%23z/export"),
    (["undeploy", "x/../y"], "POST /api/public/models/x%2F..%2Fy/undeploy"),
    (
        ["deploy", "../cm", *DEPLOY_FIELDS],
        "POST /api/public/models/..%2Fcm/deploy?modelType=openSource",
    ),
    (["status", "../../ds 1"], "GET /api/public/dock-status/..%2F..%2Fds%201"),
]


@pytest.mark.parametrize(("args", "path"), ENCODED, ids=[" ".join(a[:2]) for a, _ in ENCODED])
def test_ids_are_encoded_into_one_path_segment(invoke: Invoke, args: list[str], path: str) -> None:
    with FakeServer(_accept_anything) as server:
        result = invoke(server.url, *args)
    assert result.exit_code == 0, result.output
    assert server.paths() == [path]


@pytest.mark.parametrize(
    "args",
    [
        ["export", ".."],
        ["export", "."],
        ["export", ""],
        ["export", "a\nb"],
        ["undeploy", " .. "],
        ["status", ".."],
        ["deploy", "..", *DEPLOY_FIELDS],
    ],
    ids=lambda v: f"{v[0]} {v[1]!r}",
)
def test_ids_that_would_address_another_url_are_refused(
    invoke: Invoke, tmp_path: Path, args: list[str]
) -> None:
    with FakeServer(_accept_anything) as server:
        result = invoke(server.url, *args)
    assert result.exit_code == 2, result.output
    assert_one_clean_error_line(result.stderr, "invalid")
    assert server.seen == []
    assert not list(tmp_path.glob("*.tar*"))


def test_exporting_an_id_with_slashes_writes_inside_the_current_folder(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = b"exported model bytes" * 1000
    work = tmp_path / "outer" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)

    with FakeServer(_accept_anything) as server:

        async def respond(request: web.Request) -> web.StreamResponse:
            if request.path.endswith("/export"):
                url = f"{server.url}/download/1?token=t"
                return json_response({**JOB, "response": {"downloadUrl": url}})
            return web.Response(body=payload, content_type="application/octet-stream")

        server.respond = respond
        result = invoke(server.url, "export", "../../x", "--json")
    assert result.exit_code == 0, result.output
    written = Path(json.loads(result.stdout)["path"])
    assert (work / written).resolve().parent == work.resolve()
    assert (work / written).read_bytes() == payload
    state = (tmp_path / "state").resolve()  # where kore-models keeps its ledger
    outside = [
        p
        for p in files_under(tmp_path)
        if not p.resolve().is_relative_to(work.resolve()) and not p.resolve().is_relative_to(state)
    ]
    assert outside == []


# ---- servers that misbehave -----------------------------------------------------------

Respond = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer(status: int, body: str | bytes, content_type: str = "application/json") -> Respond:
    async def respond(request: web.Request) -> web.StreamResponse:
        data = body.encode() if isinstance(body, str) else body
        return web.Response(status=status, body=data, content_type=content_type)

    return respond


async def _cut_short(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.content_length = 1000
    await resp.prepare(request)
    await resp.write(b'{"_id": "ds-1", "st')
    if request.transport is not None:
        request.transport.abort()
    return resp


@dataclass
class Endless:
    """A 200 whose JSON body never ends (stops by itself after 1 GiB)."""

    written: int = 0

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        block = b"x" * MiB
        try:
            await resp.write(b'{"_id": "ds-1", "padding": "')
            for _ in range(1024):
                await resp.write(block)
                self.written += len(block)
        except (ConnectionError, RuntimeError):
            pass
        return resp


HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body>\n"
    "<h1>Bad Gateway</h1>\n<p>The proxy received an invalid response.</p>\n"
    + "<!-- padding -->\n" * 200
    + "</body></html>\n"
)
LOGIN_PAGE = "<html><body><form action='/login'>Sign in</form></body></html>"


@dataclass(frozen=True)
class ServerCase:
    name: str
    respond: Respond
    exit_code: int
    message: str
    error: type[KoreError]
    attempts: int  # requests the client makes (KORE_MAX_ATTEMPTS=2)


SERVER_CASES = [
    ServerCase("non-JSON 200", answer(200, "OK, all good", "text/plain"), 7,
               "the server returned text, not JSON", ResponseValidationError, 1),
    ServerCase("truncated JSON 200", answer(200, '{"_id": "ds-1", "status": "IN_PRO'), 7,
               "not JSON", ResponseValidationError, 1),
    ServerCase("HTML login page 200", answer(200, LOGIN_PAGE, "text/html"), 7,
               "the server returned an HTML page, not JSON", ResponseValidationError, 1),
    ServerCase("HTML 502 error page", answer(502, HTML_PAGE, "text/html"), 7,
               "an HTML page instead of JSON (502 Bad Gateway)", ServerError, 2),
    ServerCase("empty 200", answer(200, ""), 7, "empty body", ResponseValidationError, 1),
    ServerCase("JSON list 200", answer(200, "[1, 2]"), 7, "expected a JSON object",
               ResponseValidationError, 1),
    ServerCase("200 without the job id", answer(200, '{"status": "SUCCESS"}'), 7,
               "does not fit the documented shape", ResponseValidationError, 1),
    ServerCase("body cut mid-way", _cut_short, 7, "connection failed", KoreConnectionError, 2),
]  # fmt: skip


@pytest.mark.parametrize("case", SERVER_CASES, ids=lambda c: c.name)
def test_cli_on_a_misbehaving_server(invoke: Invoke, case: ServerCase) -> None:
    with FakeServer(case.respond) as server:
        result = invoke(server.url, "status", "ds-1", "--json")
    assert result.exit_code == case.exit_code, result.output
    line = assert_one_clean_error_line(result.stderr, case.message)
    assert len(line) < 400, "the error stays one short line"
    assert "<html" not in line.lower() or case.error is ResponseValidationError
    assert json.loads(result.stdout)["error"]["type"] == case.error.__name__
    assert len(server.seen) == case.attempts


@pytest.mark.parametrize("case", SERVER_CASES, ids=lambda c: c.name)
async def test_library_on_a_misbehaving_server(case: ServerCase, tmp_path: Path) -> None:
    with FakeServer(case.respond) as server:
        async with KoreClient(
            server.url, API_KEY, state_dir=tmp_path, max_attempts=2, retry_sleeps=False
        ) as kore:
            with pytest.raises(case.error) as caught:
                await kore.dock_status.get("ds-1")
    assert case.message in str(caught.value)
    assert len(str(caught.value)) < 600
    assert len(server.seen) == case.attempts


def test_a_response_body_that_never_ends_is_cut_off(invoke: Invoke) -> None:
    endless = Endless()
    with FakeServer(endless) as server:
        result = invoke(server.url, "status", "ds-1", "--json", KORE_MAX_ATTEMPTS="1")
    assert result.exit_code == 7, result.output
    assert_one_clean_error_line(result.stderr, "response body is larger than")
    assert endless.written < 64 * MiB, "the client stopped reading early"


def test_a_200_without_the_session_id_leaves_no_journal(invoke: Invoke, tmp_path: Path) -> None:
    path = model_tar(tmp_path)
    with FakeServer(answer(200, '{"expirationDate": "2030-01-01T00:00:00Z"}')) as server:
        result = invoke(server.url, "import", str(path))
    assert result.exit_code == 7, result.output
    assert_one_clean_error_line(result.stderr, "sessionId")
    assert server.paths() == ["POST /api/public/files/session/start"]
    assert journals(tmp_path) == []


def _job(status: str) -> Respond:
    async def respond(request: web.Request) -> web.StreamResponse:
        return json_response({"_id": "ds-1", "status": status, "percentageComplete": 10})

    return respond


@pytest.mark.parametrize("status", ["IN_PROGRESS", "PAUSED", "queued"])
def test_a_job_that_never_ends_times_out_with_exit_6(invoke: Invoke, status: str) -> None:
    with FakeServer(_job(status)) as server:
        shown = invoke(server.url, "status", "ds-1", "--json")
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["status"] == status.upper()
        waited = invoke(server.url, "status", "ds-1", "--wait", "--timeout", "1", "--json")
    assert waited.exit_code == 6, waited.output
    assert_one_clean_error_line(waited.stderr, "after 1s")
    error = json.loads(waited.stdout)["error"]
    assert error["dockStatusId"] == "ds-1"
    assert 3 <= len(server.seen) <= 40, "polled, but not in a tight loop"


async def test_library_watch_of_an_unknown_status_times_out(tmp_path: Path) -> None:
    with FakeServer(_job("PAUSED")) as server:
        async with KoreClient(server.url, API_KEY, state_dir=tmp_path, poll_initial=0.05) as kore:
            with pytest.raises(JobTimeoutError, match=r"still PAUSED after 0\.5s"):
                await kore.dock_status.wait("ds-1", timeout=0.5)


# ---- downloads ------------------------------------------------------------------------


def _export_then(download_url: Callable[[], str]) -> Respond:
    async def respond(request: web.Request) -> web.StreamResponse:
        return json_response({**JOB, "response": {"downloadUrl": " " + download_url()}})

    return respond


def test_a_download_url_on_another_host_gets_no_key(invoke: Invoke, tmp_path: Path) -> None:
    payload = os.urandom(300_000)

    async def serve_file(request: web.Request) -> web.StreamResponse:
        return web.Response(body=payload, content_type="application/octet-stream")

    dest = tmp_path / "out.tar"
    with (
        FakeServer(serve_file) as files,
        FakeServer(_export_then(lambda: f"{files.url}/exports/1?token=abc")) as api,
    ):
        result = invoke(api.url, "export", "cm-1", "-o", str(dest), "--json")
    assert result.exit_code == 0, result.output
    assert dest.read_bytes() == payload
    assert [s.headers.get("x-api-key") for s in api.seen] == [API_KEY]
    assert [s.raw_path for s in files.seen] == ["/exports/1?token=abc"]
    assert "x-api-key" not in files.seen[0].headers


@pytest.mark.parametrize(
    ("url", "exit_code", "message"),
    [
        ("file:///etc/passwd", 7, "the download URL is not http(s)"),
        ("ftp://127.0.0.1/model.tar", 7, "the download URL is not http(s)"),
        ("FILES/500", 7, "HTTP 500"),
        ("FILES/404", 4, "HTTP 404"),
    ],
    ids=["file-url", "ftp-url", "500", "404"],
)
def test_a_failed_download_leaves_no_file(
    invoke: Invoke, tmp_path: Path, url: str, exit_code: int, message: str
) -> None:
    async def fail(request: web.Request) -> web.StreamResponse:
        status = int(request.path.rsplit("/", 1)[-1])
        return web.Response(status=status, text="<html>nope</html>", content_type="text/html")

    dest = tmp_path / "out" / "model.tar"
    with FakeServer(fail) as files:
        target = url.replace("FILES", files.url)
        with FakeServer(_export_then(lambda: target)) as api:
            result = invoke(api.url, "export", "cm-1", "-o", str(dest))
    assert result.exit_code == exit_code, result.output
    assert_one_clean_error_line(result.stderr, message)
    assert not dest.exists()
    assert not dest.with_name(dest.name + ".part").exists()


def test_a_download_cut_short_keeps_only_the_part_file(invoke: Invoke, tmp_path: Path) -> None:
    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200)
        resp.content_length = 100_000
        await resp.prepare(request)
        await resp.write(b"x" * 1000)
        if request.transport is not None:
            request.transport.abort()
        return resp

    dest = tmp_path / "model.tar"
    with FakeServer(cut) as files, FakeServer(_export_then(lambda: f"{files.url}/f")) as api:
        result = invoke(api.url, "export", "cm-1", "-o", str(dest))
    assert result.exit_code == 7, result.output
    assert_one_clean_error_line(result.stderr, "connection")
    assert not dest.exists(), "the final name is only written once the bytes are complete"
    part = dest.with_name("model.tar.part")
    assert part.exists(), "the bytes received are kept for the next run to resume"
    assert part.stat().st_size <= 100_000


# ---- manifests and journals -----------------------------------------------------------


def test_a_manifest_with_bad_entries_lists_them_all_and_sends_nothing(
    emu: EmulatorProcess, invoke: Invoke, tmp_path: Path
) -> None:
    model_tar(tmp_path, "good.tar")
    _empty(tmp_path)
    _directory(tmp_path)
    manifest = tmp_path / "models.csv"
    manifest.write_text(
        "path,isAdapter\ngood.tar,false\nempty.tar,false\na-folder.tar,true\n"
        "missing.tar,false\ngood.tar,maybe\n,true\n"
    )
    result = invoke(emu.url, "import", "--manifest", str(manifest), "--json")
    assert result.exit_code == 2, result.output
    line = assert_one_clean_error_line(result.stderr)
    assert "isAdapter" in line or "listed twice" in line, line
    assert requests_sent(emu) == 0
    assert not manifest.with_name("models.csv.state.json").exists()
    # with the bad lines fixed, the file problems are all listed together
    manifest.write_text("path,isAdapter\ngood.tar,false\nempty.tar,false\na-folder.tar,true\n")
    result = invoke(emu.url, "import", "--manifest", str(manifest))
    assert result.exit_code == 2, result.output
    line = assert_one_clean_error_line(result.stderr, "2 manifest entries cannot be imported")
    assert "is empty" in line
    assert "the folder has no files" in line  # an empty folder (folders are imported as tars)
    assert requests_sent(emu) == 0


CORRUPT_JOURNALS = {
    "garbage bytes": b"\x00\xff\xfe not json at all",
    "truncated JSON": b'{"host": "http://127.0.0.1", "file_pa',
    "a JSON list": b"[1, 2, 3]",
    "a newer version": json.dumps({"version": 99}).encode(),
    "missing fields": json.dumps({"version": 1, "host": "x"}).encode(),
    "chunks outside the plan": None,  # filled in from a real journal below
}


@pytest.mark.parametrize("kind", list(CORRUPT_JOURNALS))
def test_a_corrupt_journal_is_set_aside_and_the_import_starts_fresh(
    emu: EmulatorProcess, invoke: Invoke, tmp_path: Path, kind: str
) -> None:
    path = model_tar(tmp_path, size=2 * MiB)
    journal = journal_path(tmp_path / "state", emu.url, path)
    journal.parent.mkdir(parents=True)
    content = CORRUPT_JOURNALS[kind]
    if content is None:
        fake = {
            "version": 1, "host": emu.url, "file_path": str(path), "chunk_size": MiB,
            "total_chunks": 3, "is_adapter": False, "session_id": "s-1",
            "fingerprint": {"size": 1, "mtime_ns": 1, "sampled_sha256": "0"},
            "acknowledged": [0, 7],
        }  # fmt: skip
        content = json.dumps(fake).encode()
    journal.write_bytes(content)
    result = invoke(emu.url, "import", str(path), "--chunk-size", "1MiB", "--json")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.stderr
    assert "error:" not in result.stderr
    data = json.loads(result.stdout)
    assert data["resumed"] is False
    assert emu.model(data["modelId"])["sha256"] == sha256_of(path)
    aside = journal.with_suffix(".corrupt")
    assert aside.read_bytes() == content, "the unusable journal is kept for inspection"
    assert not journal.exists(), "the finished import removed its own journal"


def test_a_journal_that_cannot_be_read_exits_8_before_any_request(
    emu: EmulatorProcess, invoke: Invoke, tmp_path: Path
) -> None:
    path = model_tar(tmp_path)
    journal = journal_path(tmp_path / "state", emu.url, path)
    journal.mkdir(parents=True)  # a folder where the journal file should be
    result = invoke(emu.url, "import", str(path))
    assert result.exit_code == 8, result.output
    assert_one_clean_error_line(result.stderr, "cannot read the journal")
    assert requests_sent(emu) == 0


def test_a_state_dir_that_is_a_file_exits_12_before_any_request(
    emu: EmulatorProcess, invoke: Invoke, tmp_path: Path
) -> None:
    path = model_tar(tmp_path)
    blocker = tmp_path / "state-file"
    blocker.write_text("not a folder")
    result = invoke(emu.url, "import", str(path), KORE_STATE_DIR=str(blocker))
    assert result.exit_code == 12, result.output
    assert_one_clean_error_line(result.stderr, "is not writable", "Not a directory")
    assert blocker.read_text() == "not a folder"
    assert requests_sent(emu) == 0
