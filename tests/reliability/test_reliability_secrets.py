"""The API key never leaks: every command and fault scenario with ``--verbose`` (DEBUG logs
and tracebacks on), then every byte of output and of every file the runs left is searched.

The emulator is started with a distinctive key, so that any copy of it, or of its middle
part (a key cut in half by a message limit), is found wherever it lands: stdout, stderr,
exception text and tracebacks (printed under --verbose), the resume journals, the manifest
state file, exported files, temporary files, and the emulator's own stdout and stderr.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.reliability import (
    KORE_MODELS,
    FakeServer,
    StartEmulator,
    cli_env,
    files_under,
    json_response,
    make_model_tar,
    start_cli,
    wait_until,
)

SECRET = "kg-SECRET-7f3a9c1e5b2d4068-reliability-zz"
SECRET_CORE = "7f3a9c1e5b2d4068"
WRONG = "kg-WRONG-0c9d8e7f6a5b4c3d-reliability-yy"
WRONG_CORE = "0c9d8e7f6a5b4c3d"
NEEDLES = (SECRET, SECRET_CORE, WRONG, WRONG_CORE)

DEPLOY = ["--model-type", "openSource", "--name", "n", "--device-type", "g5.xlarge",
          "--temperature", "1", "--max-tokens", "8", "--top-p", "1", "--top-k", "5"]  # fmt: skip


class Runs:
    """Runs the CLI as subprocesses with --verbose and keeps every output for the search."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.env = env
        self.cwd = cwd
        self.outputs: list[tuple[str, str]] = []

    def __call__(self, *args: str, code: int = 0, stdin: str | None = None, **env: str) -> str:
        return self.batch(Run(args, code, stdin, env))[0]

    def batch(self, *runs: Run) -> list[str]:
        """Start every run at once (they must not depend on each other), then check each."""
        processes = []
        for run in runs:
            process = subprocess.Popen(
                [KORE_MODELS, "--verbose", *run.args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**self.env, **run.env},
                cwd=self.cwd,
            )
            processes.append(process)
        results = []
        for process, run in zip(processes, runs, strict=True):
            try:
                results.append(process.communicate(input=run.stdin, timeout=90))
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate(timeout=10)
        for run, process, (out, err) in zip(runs, processes, results, strict=True):
            label = " ".join(run.args)
            self.outputs.append((label, out + err))
            assert process.returncode == run.code, f"{label}: {process.returncode}\n{err}"
            if run.code:
                assert "Traceback" in err, "--verbose prints the traceback"
        return [out for out, _ in results]

    def interrupted(self, *args: str, sig: signal.Signals, until: Callable[[], bool]) -> None:
        process = start_cli("--verbose", *args, env=self.env, cwd=self.cwd)
        try:
            wait_until(until, timeout=30)
            process.send_signal(sig)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=10)
        self.outputs.append((f"{sig.name} {' '.join(args)}", out + err))


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    code: int = 0
    stdin: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def run(*args: str, code: int = 0, stdin: str | None = None, **env: str) -> Run:
    return Run(args, code, stdin, env)


def leaks_in(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [needle for needle in NEEDLES if needle.encode() in data]


async def echo_the_key(request: web.Request) -> web.StreamResponse:
    """A server that echoes the key back in every way it can."""
    key = request.headers.get("x-api-key", "")
    if request.path.endswith("/html"):
        page = f"<html><title>{key}</title><body>{key}</body></html>"
        return web.Response(status=502, text=page, content_type="text/html")
    if request.path.endswith("/text"):
        return web.Response(status=200, text=f"hello {key} " * 50, content_type="text/plain")
    if request.path.endswith("/ok"):
        return json_response({"_id": key, "status": key, "message": key, "modelId": key})
    body = {"errors": [{"msg": f"key {key} is not allowed", "code": key}], "echo": key}
    return json_response(body, status=403, **{"x-request-id": key, "x-echo": key})


def secrets_scenarios(start_emulator: StartEmulator, tmp_path: Path, *, full: bool) -> None:
    emu = start_emulator(api_key=SECRET, stderr_path=tmp_path / "emulator.stderr")
    work = tmp_path / "work"
    (work / "tmp").mkdir(parents=True)
    env = cli_env(
        emu.url,
        work / "state",
        SECRET,
        TMPDIR=str(work / "tmp"),
        KORE_RETRY_SLEEPS="false",
        KORE_READ_TIMEOUT="1",
        KORE_STALL_TIMEOUT="1",
    )
    runs = Runs(env, work)
    for name in ("a.tar", "b.tar", "c.tar", "big.tar", "big2.tar"):
        make_model_tar(work / name, 3 << 20 if "big" in name else 200_000, seed=len(name))
    key_file = work / "key"
    key_file.write_text(SECRET + "\n")
    key_file.chmod(0o600)
    (work / "models.txt").write_text("b.tar\nc.tar\n")

    imported = json.loads(runs("import", "a.tar", "--chunk-size", "64KiB", "--json"))
    assert "DEBUG kore_models.http: -> POST" in runs.outputs[-1][1], "debug logging is on"
    model, job = imported["modelId"], imported["dockStatusId"]

    # every command, the other key sources, and the error paths that need no fault script
    emu.script({"route": "download", "action": "reset"})  # only the export downloads
    with FakeServer(echo_the_key) as fake:

        def echo(*args: str, code: int) -> Run:
            return Run(args, code, None, {"KORE_HOST": fake.url, "KORE_MAX_ATTEMPTS": "2"})

        outs = runs.batch(
            run("import", "--manifest", "models.txt", "--parallel-files", "2"),
            run("export", model, "-o", "exported.tar"),
            run("export", model, "--no-wait", "--json"),
            run("deploy", model, *DEPLOY, "--wait", "--json"),
            run("--api-key-file", str(key_file), "status", job, KORE_API_KEY=""),
            run("--api-key-stdin", "status", job, stdin=SECRET + "\n", KORE_API_KEY=""),
            run("--api-key", WRONG, "import", "a.tar", code=3),
            run("status", "ds-does-not-exist", "--json", code=4),
            echo("status", "ds-json", "--json", code=3),
            echo("status", "text", code=7),
            echo("status", "ok", "--json", code=0),
            *(
                [
                    run("status", job, code=3, KORE_API_KEY=WRONG),
                    run("export", "cm-does-not-exist", code=4),
                    echo("status", "html", code=7),
                ]
                if full
                else []
            ),
        )
    assert all(s.headers.get("x-api-key") == SECRET for s in fake.seen), "the key was sent"
    assert (work / "models.txt.state.json").exists()
    deployed = json.loads(outs[3])["dockStatusId"]
    runs("status", deployed, "--json")
    runs("undeploy", model, "--wait")
    if full:
        runs("status", json.loads(outs[2])["dockStatusId"], "--wait")
        runs("undeploy", model, code=7)  # 409: not deployed any more

    # faults: 5xx until the attempts run out; then 503, 502, reset, stall and 429 in one run
    emu.script(*[{"route": "start", "action": "500"}] * 2)
    runs("import", "a.tar", code=7, KORE_MAX_ATTEMPTS="2")
    emu.script(
        {"route": "chunk", "action": "502"},
        {"route": "chunk", "action": "reset"},
        {"route": "chunk", "action": "stall", "stall_seconds": 3},
        {"route": "complete", "action": "503"},
        {"route": "dock_status", "action": "429", "retry_after": 0.1},
    )
    runs("import", "a.tar", "--chunk-size", "64KiB")
    assert emu.control("GET", "/script")["faults"] == [], "every scripted fault was met"
    emu.script(*[{"route": "chunk", "action": "500"}] * 40)
    runs("import", "b.tar", "--chunk-size", "64KiB", code=7, KORE_UPLOAD_RETRY_BUDGET="3")
    emu.control("DELETE", "/script")
    journals = work / "state" / "journals"
    assert len(list(journals.glob("*.json"))) == 1, "the failed import kept its journal"

    # interrupted imports leave journals behind
    emu.configure(throughput_bytes_per_second=1_000_000)
    emu.reset_counters()
    runs.interrupted(
        "import", "big.tar", "--chunk-size", "256KiB", "--concurrency", "2",
        sig=signal.SIGINT, until=lambda: emu.counters()["chunks_received"] >= 2,
    )  # fmt: skip
    if full:
        emu.reset_counters()
        runs.interrupted(
            "import", "big2.tar", "--chunk-size", "256KiB", "--concurrency", "1",
            sig=signal.SIGKILL, until=lambda: emu.counters()["chunks_received"] >= 2,
        )  # fmt: skip
    emu.configure(throughput_bytes_per_second=None)
    assert len(list(journals.glob("*.json"))) == (3 if full else 2)

    emu.kill()  # collects the emulator's stdout into emu.stdout_text

    found = {label: leaks_in(text) for label, text in runs.outputs}
    assert not any(found.values()), {k: v for k, v in found.items() if v}
    assert leaks_in(emu.stdout_text) == []
    # positive control: the search does find the key where it is meant to be
    assert leaks_in(key_file.read_bytes()) == [SECRET, SECRET_CORE]
    searched = []
    for path in files_under(tmp_path):
        if path != key_file:
            assert leaks_in(path.read_bytes()) == [], f"the key is in {path}"
            searched.append(path.name)
    assert "emulator.stderr" in searched
    assert "models.txt.state.json" in searched
    assert "exported.tar" in searched
    assert sum(1 for n in searched if n.endswith(".json") and len(n) == 37) >= 2, "journals"
    print(f"secrets: {len(runs.outputs)} CLI runs, {len(searched)} files searched, no key found")


@pytest.mark.timeout(240)
def test_the_key_appears_in_no_output_log_journal_or_state_file(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    secrets_scenarios(start_emulator, tmp_path, full=False)


@pytest.mark.soak
@pytest.mark.timeout(600)
def test_the_key_appears_nowhere_in_the_full_scenario_matrix(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    secrets_scenarios(start_emulator, tmp_path, full=True)


def test_the_emulator_masks_its_key(start_emulator: StartEmulator, tmp_path: Path) -> None:
    emu = start_emulator(api_key=SECRET, stderr_path=tmp_path / "emu.err")
    config = emu.control("GET", "/config")
    assert leaks_in(json.dumps(config)) == []
    unauthorised = subprocess.run(
        ["curl", "-s", "-H", f"x-api-key: {WRONG}", f"{emu.url}/api/public/dock-status/ds-1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "UNAUTHORIZED" in unauthorised.stdout
    assert leaks_in(unauthorised.stdout) == []
    emu.kill()
    assert leaks_in(emu.stdout_text) == []
    assert leaks_in((tmp_path / "emu.err").read_bytes()) == []
