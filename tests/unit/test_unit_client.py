"""Client lifecycle (async with, aclose, closed client, injected session) and path ids."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from kore_models import ConfigurationError, KoreClient, KoreError, NotFoundError

BASE = "https://kore.example.test/api/public"
JOB = {"_id": "ds-1", "status": "SUCCESS"}


def client(**kwargs: Any) -> KoreClient:
    return KoreClient("kore.example.test", "kg-key", max_attempts=1, **kwargs)


async def test_async_with_returns_the_client_and_closes_its_session(
    mocked: aioresponses,
) -> None:
    mocked.post(f"{BASE}/models/m/export", payload=JOB)
    kore = client()
    async with kore as entered:
        assert entered is kore
        await kore.models.export("m")
        session = kore.transport.session
        assert not session.closed
    assert session.closed


async def test_the_session_is_created_lazily_and_reused(mocked: aioresponses) -> None:
    mocked.post(f"{BASE}/models/m/export", payload=JOB, repeat=True)
    async with client() as kore:
        assert kore.transport._session is None
        await kore.models.export("m")
        first = kore.transport.session
        await kore.models.export("m")
        assert kore.transport.session is first


async def test_aclose_is_idempotent_and_a_closed_client_refuses_calls(
    mocked: aioresponses,
) -> None:
    mocked.post(f"{BASE}/models/m/export", payload=JOB, repeat=True)
    kore = KoreClient("kore.example.test", "kg-key", max_attempts=5, retry_sleeps=False)
    await kore.models.export("m")
    await kore.aclose()
    await kore.aclose()
    async with kore:  # entering again does not reopen it
        pass
    with pytest.raises(KoreError, match="closed"):
        await kore.models.export("m")
    with pytest.raises(KoreError, match="closed"):
        await kore.dock_status.get("ds-1")
    with pytest.raises(KoreError, match="closed"):
        await kore.files.upload_chunk("s", 0, b"x")
    assert sum(len(c) for c in mocked.requests.values()) == 1  # nothing sent, nothing retried


async def test_closing_an_unused_client_is_fine() -> None:
    kore = client()
    await kore.aclose()
    assert kore.transport._session is None
    with pytest.raises(KoreError):
        await kore.models.undeploy("m")


async def test_an_injected_session_is_used_and_never_closed(mocked: aioresponses) -> None:
    mocked.post(f"{BASE}/models/m/export", payload=JOB, repeat=True)
    async with aiohttp.ClientSession() as session:
        async with client(session=session) as kore:
            assert kore.transport.session is session
            await kore.models.export("m")
        assert not session.closed
        await kore.aclose()
        assert not session.closed
        with pytest.raises(KoreError, match="closed"):
            await kore.models.export("m")  # the client is closed, the session is not
        second = client(session=session)
        await second.models.export("m")  # the caller's session still works
        await second.aclose()
        assert not session.closed


async def test_an_injected_session_that_raises_for_status_still_maps_errors(
    mocked: aioresponses,
) -> None:
    mocked.post(f"{BASE}/models/m/export", status=404, payload={"message": "no model"})
    async with (
        aiohttp.ClientSession(raise_for_status=True) as session,
        client(session=session) as kore,
    ):
        with pytest.raises(NotFoundError) as info:
            await kore.models.export("m")
    assert info.value.message == "no model"


async def test_exit_closes_even_when_the_body_raised(mocked: aioresponses) -> None:
    kore = client()

    async def use_then_fail() -> None:
        async with kore:
            _ = kore.transport.session
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await use_then_fail()
    assert kore.transport._session is not None
    assert kore.transport._session.closed
    with pytest.raises(KoreError):
        await kore.models.export("m")


# --- ids in the path --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "encoded"),
    [
        ("cm-9f0e", "cm-9f0e"),
        ("a/b", "a%2Fb"),
        ("../../files/session/start", "..%2F..%2Ffiles%2Fsession%2Fstart"),
        ("a/../b", "a%2F..%2Fb"),
        ("with space", "with%20space"),
        ("q?modelType=fineTune", "q%3FmodelType%3DfineTune"),
        ("frag#x", "frag%23x"),
        ("pct%2F", "pct%252F"),
        ("back\\slash", "back%5Cslash"),
        ("ünï", "%C3%BCn%C3%AF"),
        ("...", "..."),
        (" lead", "%20lead"),
    ],
)
async def test_ids_are_percent_encoded_into_one_segment(
    mocked: aioresponses, model_id: str, encoded: str
) -> None:
    export = f"{BASE}/models/{encoded}/export"
    undeploy = f"{BASE}/models/{encoded}/undeploy"
    deploy = f"{BASE}/models/{encoded}/deploy?modelType=openSource"
    dock = f"{BASE}/dock-status/{encoded}"
    chunk = f"{BASE}/files/session/{encoded}"
    complete = f"{BASE}/files/session/{encoded}/complete"
    # registered pre-encoded, so the mock compares the exact bytes of the path
    for url in (export, undeploy, deploy, complete):
        mocked.post(URL(url, encoded=True), payload=JOB)
    mocked.get(URL(dock, encoded=True), payload=JOB)
    mocked.post(URL(chunk, encoded=True), payload={"chunkNumber": 0})
    config = {
        "name": "m",
        "hyperParameters": {"temperature": 1, "maxTokens": 1, "topP": 1, "topK": 1},
        "deviceType": "g5.xlarge",
    }
    async with client() as kore:
        await kore.models.export(model_id)
        await kore.models.undeploy(model_id)
        await kore.models.deploy(model_id, "openSource", config)
        await kore.dock_status.get(model_id)
        await kore.files.upload_chunk(model_id, 0, b"x")
        await kore.files.complete(model_id)
    sent = sorted((m, str(u)) for m, u in mocked.requests)
    assert sent == sorted(
        [
            ("POST", export),
            ("POST", undeploy),
            ("POST", deploy),
            ("GET", dock),
            ("POST", chunk),
            ("POST", complete),
        ]
    )


@pytest.mark.parametrize("bad", ["", " ", ".", "..", " .. ", "a\nb", "a\rb", "nul\x00", "del\x7f"])
async def test_ids_that_would_address_another_url_are_refused(
    mocked: aioresponses, bad: str
) -> None:
    async with client() as kore:
        for call in (
            kore.models.export(bad),
            kore.models.undeploy(bad),
            kore.dock_status.get(bad),
            kore.files.complete(bad),
            kore.files.upload_chunk(bad, 0, b"x"),
        ):
            with pytest.raises(ConfigurationError):
                await call
    assert mocked.requests == {}


@pytest.mark.parametrize("bad", [None, 12, b"cm-1"])
async def test_non_string_ids_are_refused(mocked: aioresponses, bad: Any) -> None:
    async with client() as kore:
        with pytest.raises(ConfigurationError):
            await kore.models.export(bad)
    assert mocked.requests == {}
