"""The CLI's network options and exit codes: emulator --tls, --ca-bundle, --proxy, --trust, mTLS."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kore_models.cli import cli
from kore_models.cli.errors import EXIT_PROXY, EXIT_TLS
from tests.network.network_support import KEY, PROXY_PASSWORD, EmulatorProcess, ProxyPy

Run = Callable[..., Result]


@pytest.fixture(scope="module")
def tls_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    server = EmulatorProcess(tmp_path_factory.mktemp("cli") / "data", "--tls").start()
    yield server
    server.stop()


@pytest.fixture
def run(tmp_path: Path) -> Run:
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        base = {
            "KORE_API_KEY": KEY,
            "KORE_STATE_DIR": str(tmp_path / "state"),
            "KORE_RETRY_SLEEPS": "false",
            "KORE_POLL_INITIAL": "0.05",
            "KORE_POLL_MIN_INTERVAL": "0.05",
        }
        return runner.invoke(cli, list(args), env={**base, **(env or {})})

    return invoke


def test_emulator_tls_writes_its_ca_and_prints_a_ready_line(tls_process: EmulatorProcess) -> None:
    ca = tls_process.data_dir / "tls" / "ca.pem"
    assert tls_process.url.startswith("https://127.0.0.1:")
    assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert f"  export KORE_CA_BUNDLE={ca}  # or --ca-bundle {ca}\n" in tls_process.banner()


def test_an_untrusted_host_exits_13_and_names_ca_bundle(
    tls_process: EmulatorProcess, run: Run
) -> None:
    result = run("--host", tls_process.url, "status", "ds-1")
    assert result.exit_code == EXIT_TLS, result.output
    assert "--ca-bundle" in result.output
    assert result.output.count("error:") == 1


def test_ca_bundle_option_and_env_var_make_the_import_work(
    tls_process: EmulatorProcess, run: Run, model: Callable[..., Path]
) -> None:
    ca = str(tls_process.data_dir / "tls" / "ca.pem")
    source = model()
    result = run("--host", tls_process.url, "--ca-bundle", ca, "import", str(source), "--json")
    assert result.exit_code == 0, result.output
    again = run("--host", tls_process.url, "status", "no-such-job", env={"KORE_CA_BUNDLE": ca})
    assert again.exit_code == 4, again.output  # TLS worked; the job is unknown


def test_trust_system_does_not_trust_the_emulator_ca(
    tls_process: EmulatorProcess, run: Run
) -> None:
    result = run("--host", tls_process.url, "--trust", "system", "status", "ds-1")
    assert result.exit_code == EXIT_TLS, result.output
    assert "operating system" in result.output


def test_a_wrong_proxy_password_exits_14_without_the_password(
    tls_process: EmulatorProcess, run: Run, auth_proxy: ProxyPy
) -> None:
    ca = str(tls_process.data_dir / "tls" / "ca.pem")
    wrong = auth_proxy.url("alice:Wr0ng-password")
    args = ["--host", tls_process.url, "--ca-bundle", ca, "--proxy", wrong, "status", "ds-1"]
    result = run(*args, "--json")
    assert result.exit_code == EXIT_PROXY, result.output
    assert "407" in result.output
    assert "Wr0ng-password" not in result.output
    good = run(*args[:4], "--proxy", auth_proxy.url(f"alice:{PROXY_PASSWORD}"), "status", "x")
    assert good.exit_code == 4, good.output
    assert auth_proxy.requests() == [f"CONNECT 127.0.0.1:{tls_process.url.rsplit(':', 1)[1]}"]


def test_a_proxy_password_from_the_environment_is_never_printed(
    tls_process: EmulatorProcess, run: Run, tmp_path: Path
) -> None:
    secret = "env-proxy-secret-42"
    env = {"HTTPS_PROXY": f"http://dave:{secret}@127.0.0.1:9", "NO_PROXY": ""}
    result = run("-v", "--host", tls_process.url, "status", "ds-1", env=env)
    assert result.exit_code == EXIT_PROXY, result.output
    assert "cannot reach the proxy http://dave:***@127.0.0.1:9" in result.output
    assert secret not in result.output


def test_mutual_tls_from_the_command_line(tmp_path: Path, run: Run) -> None:
    data = tmp_path / "mtls"
    ca = data / "tls" / "ca.pem"
    server = EmulatorProcess(data, "--tls", "--tls-client-ca", str(ca)).start()
    try:
        base = ["--host", server.url, "--ca-bundle", str(ca)]
        refused = run(*base, "status", "ds-1")
        assert refused.exit_code == EXIT_TLS, refused.output
        assert "--client-cert" in refused.output
        cert, key = data / "tls" / "client.pem", data / "tls" / "client-key.pem"
        accepted = run(*base, "--client-cert", str(cert), "--client-key", str(key), "status", "x")
        assert accepted.exit_code == 4, accepted.output
    finally:
        server.stop()


def test_demo_tls_runs_the_whole_journey_over_https(run: Run) -> None:
    result = run("demo", "--tls", "--size", "2MiB", "--job-seconds", "0", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["tls"] is True
    emulator_step = next(step for step in doc["steps"] if step["name"] == "start emulator")
    assert emulator_step["detail"].startswith("https://127.0.0.1:")


def test_the_emulator_refuses_tls_files_it_cannot_use(run: Run, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    base = ["emulator", "--port", "0", "--data-dir", str(tmp_path / "emu")]
    alone = run(*base, "--tls-cert", str(missing))
    assert alone.exit_code == 2
    assert "give --tls-cert and --tls-key together" in alone.output
    absent = run(*base, "--tls-cert", str(missing), "--tls-key", str(missing))
    assert absent.exit_code == 2
    assert f"cannot serve TLS with {missing}" in absent.output
