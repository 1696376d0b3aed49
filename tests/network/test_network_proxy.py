"""The client through a real forward proxy (proxy.py) on loopback: routes, auth, errors, the key."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web

from kore_models.emulator import RunningEmulator
from kore_models.errors import ProxyError
from kore_models.transfer.download import download_file
from kore_models.transfer.journal import Journal, journal_path
from kore_models.transfer.progress import ProgressEvent
from tests.network.network_support import (
    KEY,
    PROXY_PASSWORD,
    EmuControl,
    ProxyPy,
    Relay,
    closed_port,
    sha256_file,
)

if TYPE_CHECKING:
    from tests.network.network_support import ClientFactory

DEPLOY = {
    "name": "through-the-proxy",
    "hyperParameters": {"temperature": 1, "maxTokens": 8, "topP": 1, "topK": 5},
    "deviceType": "g5.xlarge",
}


async def _import_export_deploy(kore: Any, source: Path, dest: Path) -> str:
    imported = await kore.models.import_file(source)
    assert imported.status == "SUCCESS"
    exported = await kore.models.export_to_file(imported.model_id, dest)
    assert sha256_file(exported.path) == sha256_file(source)
    job = await kore.models.deploy(imported.model_id, "openSource", DEPLOY, wait=True)
    assert job.status == "SUCCESS"
    return str(imported.model_id)


async def test_https_import_export_and_deploy_go_through_the_proxy(
    tls_emu: RunningEmulator,
    proxy: ProxyPy,
    clients: ClientFactory,
    model: Callable[..., Path],
    tmp_path: Path,
) -> None:
    kore = clients(tls_emu, ca_bundle=tls_emu.ca_file, proxy=proxy.url())
    await _import_export_deploy(kore, model(), tmp_path / "back.tar")
    tunnels = proxy.requests()
    assert tunnels, "nothing went through the proxy"
    assert set(tunnels) == {f"CONNECT 127.0.0.1:{tls_emu.port}"}
    counters = await EmuControl(tls_emu).counters()
    assert counters["requests"]["start"] == 1


async def test_http_proxy_from_the_environment_carries_plain_http_calls(
    plain_emu: RunningEmulator,
    proxy: ProxyPy,
    clients: ClientFactory,
    model: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    await _import_export_deploy(clients(plain_emu), model(), tmp_path / "back.tar")
    carried = proxy.requests()
    origin = f"127.0.0.1:{plain_emu.port}/api/public"
    assert f"POST {origin}/files/session/start" in carried
    assert sum(line.startswith(f"POST {origin}/files/session/") for line in carried) > 20
    for path in ("/export", "/deploy?modelType=openSource"):
        assert any(line.startswith("POST ") and line.endswith(path) for line in carried), path
    download = f"GET 127.0.0.1:{plain_emu.port}/api/v1/account/exports/"
    assert any(line.startswith(download) for line in carried), carried


async def test_no_proxy_bypasses_the_proxy(
    tls_emu: RunningEmulator,
    proxy: ProxyPy,
    clients: ClientFactory,
    model: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.0/8")
    kore = clients(tls_emu, ca_bundle=tls_emu.ca_file)
    assert (await kore.models.import_file(model())).status == "SUCCESS"
    assert proxy.requests() == []


async def test_an_authenticating_proxy_gets_its_credentials_and_never_the_key(
    tls_emu: RunningEmulator,
    auth_proxy: ProxyPy,
    clients: ClientFactory,
    model: Callable[..., Path],
) -> None:
    async with Relay(auth_proxy.port) as relay:
        proxy_url = f"http://alice:{PROXY_PASSWORD}@127.0.0.1:{relay.port}"
        kore = clients(tls_emu, ca_bundle=tls_emu.ca_file, proxy=proxy_url)
        assert (await kore.models.import_file(model())).status == "SUCCESS"
        await kore.aclose()
    seen = bytes(relay.sent)
    assert f"CONNECT 127.0.0.1:{tls_emu.port}".encode() in seen
    token = base64.b64encode(f"alice:{PROXY_PASSWORD}".encode())
    assert b"Proxy-Authorization: Basic " + token in seen
    assert KEY.encode() not in seen, "the API key must travel only inside the TLS tunnel"
    assert b"x-api-key" not in seen.lower()
    assert PROXY_PASSWORD not in repr(kore.settings)


async def test_a_wrong_proxy_password_is_a_proxy_error_without_the_password(
    tls_emu: RunningEmulator, auth_proxy: ProxyPy, clients: ClientFactory
) -> None:
    wrong = "not-the-Pa55word"
    async with Relay(auth_proxy.port) as relay:
        proxy_url = f"http://alice:{wrong}@127.0.0.1:{relay.port}"
        kore = clients(tls_emu, ca_bundle=tls_emu.ca_file, proxy=proxy_url, max_attempts=5)
        with pytest.raises(ProxyError) as caught:
            await kore.dock_status.get("ds-1")
    message = str(caught.value)
    assert "407" in message
    assert f"the proxy http://alice:***@127.0.0.1:{relay.port} refused" in message
    assert wrong not in message
    assert wrong not in repr(caught.value)
    assert relay.connections == 1, "a refused proxy is not retried"
    assert auth_proxy.requests() == []


async def test_a_plain_http_407_is_a_proxy_error_too(
    plain_emu: RunningEmulator, auth_proxy: ProxyPy, clients: ClientFactory
) -> None:
    kore = clients(plain_emu, proxy=auth_proxy.url())
    with pytest.raises(ProxyError, match=r"407.*http://USER:PASSWORD@HOST:PORT"):
        await kore.dock_status.get("ds-1")


async def test_an_unreachable_proxy_is_named(
    tls_emu: RunningEmulator, clients: ClientFactory
) -> None:
    port = closed_port()
    proxy_url = f"http://bob:{PROXY_PASSWORD}@127.0.0.1:{port}"
    kore = clients(tls_emu, ca_bundle=tls_emu.ca_file, proxy=proxy_url)
    with pytest.raises(ProxyError) as caught:
        await kore.dock_status.get("ds-1")
    message = str(caught.value)
    assert f"cannot reach the proxy http://bob:***@127.0.0.1:{port}" in message
    assert PROXY_PASSWORD not in message


async def test_plain_http_through_a_proxy_warns_that_the_proxy_can_read_the_key(
    plain_emu: RunningEmulator,
    proxy: ProxyPy,
    clients: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kore = clients(plain_emu, proxy=proxy.url("carol:hunter2-secret"))
    with (
        caplog.at_level(logging.WARNING, logger="kore_models.network"),
        pytest.raises(Exception, match="dock status not found"),
    ):
        await kore.dock_status.get("x")
    assert "the proxy can read the API key" in caplog.text
    assert "hunter2-secret" not in caplog.text


class Recorder:
    """Two plain-http origins: the API, whose /export-file redirects to the other one."""

    def __init__(self) -> None:
        self.other_headers: list[dict[str, str]] = []
        self.api_url = ""
        self.other_url = ""

    async def api(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{self.other_url}/blob")

    async def other(self, request: web.Request) -> web.StreamResponse:
        self.other_headers.append({k.lower(): v for k, v in request.headers.items()})
        return web.Response(body=b"model bytes")


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    api_app, other_app = web.Application(), web.Application()
    api_app.router.add_get("/export-file", rec.api)
    other_app.router.add_get("/blob", rec.other)
    runners = [web.AppRunner(api_app), web.AppRunner(other_app)]
    ports = []
    for runner in runners:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.append(int(runner.addresses[0][1]))
    rec.api_url = f"http://127.0.0.1:{ports[0]}"
    rec.other_url = f"http://localhost:{ports[1]}"  # another origin, same loopback
    yield rec
    for runner in runners:
        await runner.cleanup()


async def test_a_redirect_through_the_proxy_does_not_carry_the_key_to_another_origin(
    recorder: Recorder, proxy: ProxyPy, clients: ClientFactory, tmp_path: Path
) -> None:
    kore = clients(recorder.api_url, proxy=proxy.url())
    result = await download_file(kore.transport, f"{recorder.api_url}/export-file", tmp_path / "m")
    assert result.path is not None
    assert result.path.read_bytes() == b"model bytes"
    assert len(recorder.other_headers) == 1
    assert "x-api-key" not in recorder.other_headers[0]
    api, other = recorder.api_url.split("//")[1], recorder.other_url.split("//")[1]
    assert proxy.requests() == [f"GET {api}/export-file", f"GET {other}/blob"]


async def test_the_key_guard_is_needed_for_that_redirect(recorder: Recorder) -> None:
    """Without the client's guard, aiohttp re-sends the custom key header to the new origin."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{recorder.api_url}/export-file", headers={"x-api-key": KEY}) as response,
    ):
        assert response.status == 200
    assert recorder.other_headers[0].get("x-api-key") == KEY


async def test_a_proxy_that_goes_away_mid_import_stops_it_and_a_new_one_resumes_it(
    tls_emu: RunningEmulator, clients: ClientFactory, model: Callable[..., Path], tmp_path: Path
) -> None:
    control = EmuControl(tls_emu)
    await control.configure(throughput_bytes_per_second=1_000_000)  # ~65 ms per chunk
    source = model(40 * 64 * 1024)
    first = ProxyPy(tmp_path / "first").start()
    reached = asyncio.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.chunks_done >= 5:
            reached.set()

    kore = clients(tls_emu, ca_bundle=tls_emu.ca_file, proxy=first.url())
    task = asyncio.create_task(kore.models.import_file(source, on_progress=on_progress))
    try:
        await asyncio.wait_for(reached.wait(), 30)
    finally:
        first.stop()  # the proxy disappears with chunks in flight
    with pytest.raises(ProxyError, match=f"cannot reach the proxy http://127.0.0.1:{first.port}"):
        await task
    journal = Journal(journal_path(kore.settings.state_dir, kore.settings.host, source))
    before = journal.load()
    assert before is not None
    assert len(before.acknowledged) >= 5
    await control.configure(throughput_bytes_per_second=None)

    second = ProxyPy(tmp_path / "second").start()
    try:
        fixed = clients(tls_emu, ca_bundle=tls_emu.ca_file, proxy=second.url())
        result = await fixed.models.import_file(source)
    finally:
        second.stop()
    assert result.resumed is True
    assert result.session_id == before.session_id
    assert result.chunks_resumed >= len(before.acknowledged)
    assert result.model_id is not None
    assert await control.stored_sha256(result.model_id) == sha256_file(source)
    assert second.requests(), "the resumed import went through the new proxy"
