"""The API key never shows: not in reprs, not in any raised error, not in any log line."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from kore_models import (
    APIStatusError,
    KoreClient,
    KoreError,
    ResponseValidationError,
    Settings,
    _retry,
)
from kore_models.errors import redact

KEY = "kg-5ecre7aa-1111-5222-9333-444455556666-c9d8e7f6-6a5b-4c3d-a2b1-777788889999"
HALVES = (KEY[:20], KEY[20:40], KEY[-20:])
BASE = "https://kore.example.test/api/public"


def assert_no_key(text: str) -> None:
    assert KEY not in text
    for piece in HALVES:  # not even a part of it
        assert piece not in text


def assert_error_clean(err: BaseException) -> None:
    assert_no_key(str(err))
    assert_no_key(repr(err))
    assert_no_key("".join(traceback.format_exception(err)))
    if isinstance(err, APIStatusError):
        assert_no_key(repr(vars(err)))


async def no_sleep(_seconds: float) -> None:
    return None


def test_reprs_of_settings_client_and_transport() -> None:
    settings = Settings.resolve(host="kore.example.test", api_key=KEY)
    client = KoreClient(settings=settings)
    for text in (
        str(settings),
        repr(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
        str(settings.api_key),
        repr(settings.api_key),
        str(client),
        repr(client),
        repr(client.transport),
        str(client.transport),
        repr(client.files),
        repr(client.models),
        repr(client.dock_status),
    ):
        assert_no_key(text)
    assert settings.api_key.get_secret_value() == KEY


def test_configuration_errors_do_not_quote_the_key() -> None:
    for kwargs in (
        {"host": "http://remote.example"},
        {"host": "https://remote.example/some/path"},
        {"host": "h.example", "chunk_size": 0},
        {"host": "h.example", "no_such": KEY},
    ):
        with pytest.raises(KoreError) as info:
            KoreClient(api_key=KEY, **kwargs)
        assert_error_clean(info.value)
    with pytest.raises(KoreError) as bad_key:
        KoreClient("h.example", KEY[:10] + "\n" + KEY[10:])
    assert_error_clean(bad_key.value)


def test_redact_helper() -> None:
    assert redact(f"a {KEY} b {KEY}", KEY) == "a *** b ***"
    assert redact("nothing", None, "") == "nothing"


ECHOES: list[dict[str, Any]] = [
    {"status": 401, "payload": {"errors": [{"msg": f"Invalid key {KEY}", "code": 4002}]}},
    {"status": 403, "payload": {"error": {"message": f"scope missing for {KEY}", "code": 1}}},
    {"status": 404, "payload": {"message": f"unknown model, key={KEY}"}},
    {"status": 400, "body": f"bad request from {KEY}"},
    {"status": 502, "body": f"<html><title>{KEY}</title><body>{KEY}</body></html>"},
    {"status": 429, "payload": {"message": "slow"}, "headers": {"x-request-id": KEY}},
    {"status": 422, "body": "x" * 490 + KEY},  # the key straddles the message cut
]


@pytest.mark.parametrize("response", ECHOES)
async def test_status_errors_whose_body_echoes_the_key(
    mocked: aioresponses, response: dict[str, Any]
) -> None:
    mocked.post(f"{BASE}/models/cm-1/export", **response)
    async with KoreClient("kore.example.test", KEY, max_attempts=1) as kore:
        with pytest.raises(APIStatusError) as info:
            await kore.models.export("cm-1")
    assert_error_clean(info.value)
    assert_no_key(str(info.value.body))
    assert_no_key(info.value.message)
    assert_no_key(str(info.value.request_id))


@pytest.mark.parametrize(
    "body",
    [
        f"<!DOCTYPE html><html>{KEY}</html>",
        "y" * 100 + KEY,  # the key straddles the 120-character snippet cut
        f"not json {KEY}",
    ],
)
async def test_non_json_success_bodies_echoing_the_key(mocked: aioresponses, body: str) -> None:
    mocked.post(f"{BASE}/models/cm-1/export", body=body, content_type="text/html")
    async with KoreClient("kore.example.test", KEY, max_attempts=1) as kore:
        with pytest.raises(ResponseValidationError) as info:
            await kore.models.export("cm-1")
    assert_error_clean(info.value)
    assert_no_key(str(info.value.body))


async def test_json_success_body_that_does_not_fit_and_echoes_the_key(
    mocked: aioresponses,
) -> None:
    mocked.post(f"{BASE}/models/cm-1/export", payload={"apiKey": KEY, "status": "SUCCESS"})
    async with KoreClient("kore.example.test", KEY, max_attempts=1) as kore:
        with pytest.raises(ResponseValidationError) as info:
            await kore.models.export("cm-1")
    assert_no_key(str(info.value))
    assert_no_key(repr(info.value))


async def test_transport_errors_mentioning_the_key(mocked: aioresponses) -> None:
    mocked.post(
        f"{BASE}/models/cm-1/export",
        exception=aiohttp.ClientConnectionError(f"proxy said: bad header x-api-key: {KEY}"),
    )
    async with KoreClient("kore.example.test", KEY, max_attempts=1) as kore:
        with pytest.raises(KoreError) as info:
            await kore.models.export("cm-1")
    assert_error_clean(info.value)


async def test_no_log_line_carries_the_key(
    mocked: aioresponses, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_retry, "_real_sleep", no_sleep)
    caplog.set_level(logging.DEBUG)
    job = {"dock-statusId": "ds-1", "status": "IN_PROGRESS"}
    mocked.post(f"{BASE}/files/session/start", status=503, body=f"busy {KEY}")
    mocked.post(f"{BASE}/files/session/start", payload={"sessionId": "s-1", "modelId": "cm-1"})
    mocked.post(
        f"{BASE}/files/session/s-1",
        exception=aiohttp.ClientConnectionError(f"reset, key {KEY}"),
    )
    mocked.post(f"{BASE}/files/session/s-1", payload={"chunkNumber": "0", "sessionId": "s-1"})
    mocked.post(f"{BASE}/files/session/s-1/complete", payload=job)
    mocked.post(f"{BASE}/models/cm-1/export", status=429, body=KEY, headers={"Retry-After": "1"})
    mocked.post(f"{BASE}/models/cm-1/export", payload={**job, "response": {"downloadUrl": "u"}})
    mocked.post(f"{BASE}/models/cm-1/deploy?modelType=openSource", payload=job)
    mocked.post(f"{BASE}/models/cm-1/undeploy", payload=job)
    mocked.get(f"{BASE}/dock-status/ds-1", payload={**job, "status": "SUCCESS"})
    mocked.get(f"{BASE}/dock-status/ds-2", status=401, payload={"message": f"bad key {KEY}"})
    mocked.get(f"{BASE}/dock-status/ds-3", body=f"<html>{KEY}</html>")
    failures: list[BaseException] = []
    async with KoreClient("kore.example.test", KEY, max_attempts=3) as kore:
        await kore.files.start_session(
            total_chunks=1, file_extension="tar", file_name="a.tar", file_size=3
        )
        await kore.files.upload_chunk("s-1", 0, b"abc")
        await kore.files.complete("s-1")
        await kore.models.export("cm-1")
        await kore.models.deploy(
            "cm-1",
            "openSource",
            {
                "name": "m",
                "hyperParameters": {"temperature": 1, "maxTokens": 1, "topP": 1, "topK": 1},
                "deviceType": "g5.xlarge",
            },
        )
        await kore.models.undeploy("cm-1")
        await kore.dock_status.get("ds-1")
        for job_id in ("ds-2", "ds-3", "ds-unmatched"):
            try:
                await kore.dock_status.get(job_id)
            except KoreError as exc:
                failures.append(exc)
    assert len(failures) == 3
    for err in failures:
        assert_error_clean(err)
    retries = [r for r in caplog.records if r.name == "kore_models.retry"]
    assert len(retries) >= 4  # 503, connection reset, 429, and the unmatched URL
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    assert_no_key(caplog.text)
    for record in caplog.records:
        assert_no_key(record.getMessage())
        assert_no_key(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            assert_error_clean(record.exc_info[1])
