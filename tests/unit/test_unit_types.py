"""Parsing every documented sample response and every variant spelling of its fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aioresponses import aioresponses

from kore_models import (
    ChunkAccepted,
    JobDocument,
    JobStatus,
    KoreClient,
    ResponseValidationError,
    SessionStarted,
)
from kore_models.types import normalise_status

BASE = "https://kore.example.test/api/public"

# The sample responses, verbatim from the public API docs (import, export, deploy, dock status).
START_SAMPLE = {
    "sessionId": "dxxxxxx0-0xx2-4xx2-9xxd-5xxxxxxxxxx8",
    "expirationDate": "2025-02-05T11:58:03.638Z",
    "modelId": "cm-3xxxxxx6-axx6-5xx2-9xx6-0xxxxxxxxxx9",
}
START_BULK_SAMPLE = {
    "sessionId": "dxxxxxx0-0xx2-4xx2-9xxd-5xxxxxxxxxx8",
    "expirationDate": "2025-02-05T11:58:03.638Z",
}
CHUNK_SAMPLE = {"chunkNumber": "0", "sessionId": "dxxxxxx0-0xx2-4xx2-9xxd-51xxxxxxxxx8"}
COMPLETE_SAMPLE = {
    "dock-statusId": "ds-dxxxxxxd-bxx9-5xx0-8xx5-5bxxxxxxxxx1",
    "modelId": "cm-3xxxxxxa-bxx9-5xxf-axxc-73xxxxxxxxx2",
    "jobType": "MODELS",
    "action": "EXPORT",
    "status": "IN_PROGRESS",
}
COMPLETE_FILES_SAMPLE = {
    "url": "http://host/api/getMediaStream/orgFiles/f-1.jpg?e=1&n=2&del=false&s=3&fileName=a.jpg",
    "fileId": "657aaaaaaaaaaaaaaaaaaaa6",
}
EXPORT_SAMPLE = {
    "_id": "ds-fxxxxxx0-6xxf-5xxb-9xxf-ebxxxxxxxxx0",
    "modelId": "cm-ddxxxxxb-0xxb-5xxe-bxx2-51xxxxxxxxx6",
    "jobType": "MODELS",
    "action": "EXPORT",
    "status": "SUCCESS",
    "percentageComplete": 100,
    "response": {"downloadUrl": " https://gale.kore.ai/api/v1/account/xxxxxx"},
}
DEPLOY_SAMPLE = {
    "dock-statusId": "ds-dxxxxxxd-bxx9-5xx0-8xx5-5bxxxxxxxxx1",
    "modelId": "cm-20xxxxxf-0xx9-5xx0-8xx1-81xxxxxxxx80",
    "jobType": "MODELS",
    "action": "DEPLOY",
    "status": "IN_PROGRESS",
}
UNDEPLOY_SAMPLE = {
    "dock-statusId": "ds-d0xxxxxd-bxx9-5xx0-8xx5-5bxxxxxxxxx1",
    "modelId": "cm-77xxxxxb-exx9-5xxc-8xx6-52xxxxxxxxx1",
    "jobType": "MODELS",
    "action": "UNDEPLOY",
    "status": "SUCCESS",
}
DOCK_SAMPLE_AFP = {
    "_id": "ds-24xxxxx3-0000",
    "workflowId": "wf-1",
    "jobType": "WORKFLOWS",
    "action": "IMPORT",
    "status": "IN_PROGRESS",
}
DOCK_SAMPLE_AP = {
    "_id": "ds-24xxxxx3-0001",
    "toolId": "a-1",
    "jobType": "TOOLS",
    "action": "EXPORT",
    "status": "FAILED",
}
DEPLOY_BODY: dict[str, Any] = {
    "name": "gpt2",
    "hyperParameters": {"temperature": 1, "maxTokens": 512, "topP": 1, "topK": 50},
    "deviceType": "g5.xlarge",
}
GUARDRAIL_UNDEPLOY_SAMPLE = {
    "dockStatusId": "ds-g",
    "toolId": "a-2",
    "jobType": "GUARDRAILS",
    "action": "UNDEPLOY",
    "status": "SUCCESS",
}


# --- through the client ------------------------------------------------------------------


async def test_start_session_sample(mocked: aioresponses, kore: KoreClient) -> None:
    mocked.post(f"{BASE}/files/session/start", payload=START_SAMPLE)
    started = await kore.files.start_session(
        total_chunks=1, file_extension="tar", file_name="sample-1.tar", file_size=1100
    )
    assert started.session_id == START_SAMPLE["sessionId"]
    assert started.model_id == START_SAMPLE["modelId"]
    assert started.expiration_date == datetime(2025, 2, 5, 11, 58, 3, 638000, tzinfo=UTC)


def test_start_session_general_file_sample_has_no_model_id() -> None:
    started = SessionStarted.model_validate(START_BULK_SAMPLE)
    assert started.model_id is None
    assert started.session_id == START_BULK_SAMPLE["sessionId"]


@pytest.mark.parametrize("echoed", ["0", 0, " 0 "])
async def test_chunk_sample_with_string_or_int_chunk_number(
    mocked: aioresponses, kore: KoreClient, echoed: Any
) -> None:
    url = f"{BASE}/files/session/{CHUNK_SAMPLE['sessionId']}"
    mocked.post(url, payload={**CHUNK_SAMPLE, "chunkNumber": echoed})
    accepted = await kore.files.upload_chunk(CHUNK_SAMPLE["sessionId"], 0, b"data")
    assert accepted.chunk_number == 0
    assert isinstance(accepted.chunk_number, int)
    assert accepted.session_id == CHUNK_SAMPLE["sessionId"]


async def test_complete_sample_dash_key_and_wrong_action(
    mocked: aioresponses, kore: KoreClient
) -> None:
    mocked.post(f"{BASE}/files/session/s-1/complete", payload=COMPLETE_SAMPLE)
    job = await kore.files.complete("s-1")
    assert job.dock_status_id == COMPLETE_SAMPLE["dock-statusId"]
    assert job.model_id == COMPLETE_SAMPLE["modelId"]
    assert job.job_type == "MODELS"
    assert job.action == "EXPORT"  # the doc's wrong action is kept, not fatal
    assert job.status == JobStatus.IN_PROGRESS
    assert not job.is_terminal
    assert job.download_url is None
    assert job.percentage_complete is None


def test_complete_general_file_sample() -> None:
    job = JobDocument.model_validate(COMPLETE_FILES_SAMPLE)
    assert job.file_id == COMPLETE_FILES_SAMPLE["fileId"]
    assert job.file_url == COMPLETE_FILES_SAMPLE["url"]
    assert job.dock_status_id is None
    assert job.download_url is None


async def test_export_sample_underscore_id_and_nested_url_with_space(
    mocked: aioresponses, kore: KoreClient
) -> None:
    mocked.post(f"{BASE}/models/cm-1/export", payload=EXPORT_SAMPLE)
    job = await kore.models.export("cm-1")
    assert job.dock_status_id == EXPORT_SAMPLE["_id"]
    assert job.download_url == "https://gale.kore.ai/api/v1/account/xxxxxx"
    assert job.percentage_complete == 100
    assert job.status == JobStatus.SUCCESS
    assert job.is_terminal
    assert job.succeeded
    assert not job.failed
    assert job.action == "EXPORT"


async def test_deploy_sample(mocked: aioresponses, kore: KoreClient) -> None:
    mocked.post(f"{BASE}/models/cm-2/deploy?modelType=openSource", payload=DEPLOY_SAMPLE)
    job = await kore.models.deploy("cm-2", "openSource", DEPLOY_BODY)
    assert job.dock_status_id == DEPLOY_SAMPLE["dock-statusId"]
    assert job.action == "DEPLOY"
    assert job.status == JobStatus.IN_PROGRESS


async def test_undeploy_sample(mocked: aioresponses, kore: KoreClient) -> None:
    mocked.post(f"{BASE}/models/cm-3/undeploy", payload=UNDEPLOY_SAMPLE)
    job = await kore.models.undeploy("cm-3")
    assert job.dock_status_id == UNDEPLOY_SAMPLE["dock-statusId"]
    assert job.model_id == UNDEPLOY_SAMPLE["modelId"]
    assert job.action == "UNDEPLOY"
    assert job.succeeded


@pytest.mark.parametrize("sample", [DOCK_SAMPLE_AFP, DOCK_SAMPLE_AP, EXPORT_SAMPLE])
async def test_dock_status_samples(
    mocked: aioresponses, kore: KoreClient, sample: dict[str, Any]
) -> None:
    mocked.get(f"{BASE}/dock-status/{sample['_id']}", payload=sample)
    job = await kore.dock_status.get(sample["_id"])
    assert job.dock_status_id == sample["_id"]
    assert job.job_type == sample["jobType"]
    assert job.status == sample["status"]
    for entity in ("workflowId", "toolId"):
        if entity in sample:
            assert job.extra[entity] == sample[entity]


def test_guardrail_camel_case_id_sample() -> None:
    job = JobDocument.model_validate(GUARDRAIL_UNDEPLOY_SAMPLE)
    assert job.dock_status_id == "ds-g"
    assert job.extra["toolId"] == "a-2"


# --- variant spellings --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["dockStatusId", "dock-statusId", "dockstatusId", "_id"])
def test_every_job_id_spelling(key: str) -> None:
    job = JobDocument.model_validate({key: "  ds-42 ", "status": "SUCCESS"})
    assert job.dock_status_id == "ds-42"


def test_a_blank_id_spelling_does_not_hide_another() -> None:
    job = JobDocument.model_validate({"dockStatusId": " ", "_id": "ds-7"})
    assert job.dock_status_id == "ds-7"


@pytest.mark.parametrize(
    "placement",
    [
        {"response": {"downloadUrl": " https://h/dl "}},
        {"response": {"downloadURL": "https://h/dl"}},
        {"downloadUrl": "https://h/dl\n"},
        {"downloadURL": "\thttps://h/dl"},
    ],
)
def test_every_download_url_spelling_is_found_and_trimmed(placement: dict[str, Any]) -> None:
    job = JobDocument.model_validate({"_id": "ds-1", **placement})
    assert job.download_url == "https://h/dl"


def test_nested_download_url_wins_over_a_blank_top_level_one() -> None:
    job = JobDocument.model_validate(
        {"_id": "ds-1", "downloadUrl": "  ", "response": {"downloadUrl": "https://h/x"}}
    )
    assert job.download_url == "https://h/x"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("IN_PROGRESS", "IN_PROGRESS"),
        ("in_progress", "IN_PROGRESS"),
        ("In Progress", "IN_PROGRESS"),
        ("IN_PROGRES S", "IN_PROGRESS"),
        ("IN PROGRES S", "IN_PROGRESS"),
        ("IN_ PROGRESS", "IN_PROGRESS"),
        ("success", "SUCCESS"),
        (" Success ", "SUCCESS"),
        ("FAILED", "FAILED"),
        ("failed", "FAILED"),
    ],
)
def test_status_in_any_case_and_the_documented_typos(given: str, expected: str) -> None:
    assert normalise_status(given) == expected
    job = JobDocument.model_validate({"_id": "ds-1", "status": given})
    assert job.status == expected
    assert job.is_terminal == (expected != "IN_PROGRESS")


@pytest.mark.parametrize("unknown", ["QUEUED", "pending", "CANCELLED", "VALIDATING"])
def test_unknown_status_is_kept_and_not_terminal(unknown: str) -> None:
    job = JobDocument.model_validate({"_id": "ds-1", "status": unknown})
    assert job.status == unknown.upper()
    assert not job.is_terminal
    assert not job.succeeded
    assert not job.failed


def test_missing_status_is_not_terminal() -> None:
    job = JobDocument.model_validate({"_id": "ds-1"})
    assert job.status is None
    assert not job.is_terminal


def test_extra_fields_are_kept() -> None:
    job = JobDocument.model_validate(
        {
            **EXPORT_SAMPLE,
            "exportJobId": "e-1",
            "nested": {"a": [1, 2]},
            "createdOn": "2025-01-01",
        }
    )
    assert job.extra["exportJobId"] == "e-1"
    assert job.extra["nested"] == {"a": [1, 2]}
    assert job.extra["createdOn"] == "2025-01-01"
    assert job.response == {"downloadUrl": " https://gale.kore.ai/api/v1/account/xxxxxx"}


@pytest.mark.parametrize("key", ["message", "error", "reason"])
def test_failure_message_is_surfaced(key: str) -> None:
    job = JobDocument.model_validate({"_id": "ds", "status": "FAILED", key: " bad tar "})
    assert job.message == "bad tar"
    nested = JobDocument.model_validate({"_id": "ds", "response": {key: "inside"}})
    assert nested.message == "inside"


def test_extra_fields_on_start_and_chunk_responses_are_kept() -> None:
    started = SessionStarted.model_validate({**START_SAMPLE, "maxChunkSize": 5})
    assert started.extra == {"maxChunkSize": 5}
    accepted = ChunkAccepted.model_validate({**CHUNK_SAMPLE, "received": 10})
    assert accepted.extra == {"received": 10}


# --- responses that do not fit -------------------------------------------------------------

ENDPOINTS: list[tuple[str, str, str]] = [
    ("POST", "/files/session/start", "start"),
    ("POST", "/files/session/s/complete", "complete"),
    ("POST", "/models/m/export", "export"),
    ("POST", "/models/m/undeploy", "undeploy"),
    ("GET", "/dock-status/d", "dock"),
    ("POST", "/files/session/s", "chunk"),
]


async def _call(kore: KoreClient, which: str) -> Any:
    if which == "start":
        return await kore.files.start_session(
            total_chunks=1, file_extension="tar", file_name="a.tar", file_size=1
        )
    if which == "complete":
        return await kore.files.complete("s")
    if which == "export":
        return await kore.models.export("m")
    if which == "undeploy":
        return await kore.models.undeploy("m")
    if which == "chunk":
        return await kore.files.upload_chunk("s", 0, b"x")
    return await kore.dock_status.get("d")


@pytest.mark.parametrize(("method", "path", "which"), ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"modelId": "cm-1", "status": "SUCCESS", "chunk": "x"}', "application/json"),
        ("OK", "text/plain"),
        ('{"_id": "ds-1", "sessionId": "s", "chunkNumber": "0"', "application/json"),
        (
            "<!DOCTYPE html><html><body>Welcome to the login page</body></html>",
            "text/html",
        ),
        ("", "application/json"),
        ("   \n", "application/json"),
        ('["ds-1"]', "application/json"),
        ('"ds-1"', "application/json"),
        ("null", "application/json"),
    ],
    ids=["no-id", "text", "truncated", "html", "empty", "blank", "array", "string", "null"],
)
async def test_a_response_that_does_not_fit_raises_response_validation_error(
    mocked: aioresponses,
    kore: KoreClient,
    method: str,
    path: str,
    which: str,
    body: str,
    content_type: str,
) -> None:
    mocked.add(
        BASE + path,
        method=method,
        body=body,
        content_type=content_type,
        headers={"x-request-id": "rq-1"},
    )
    with pytest.raises(ResponseValidationError) as info:
        await _call(kore, which)
    assert info.value.request_id == "rq-1"
    if body.startswith("<!DOCTYPE"):
        assert "HTML" in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [
        {"chunkNumber": "abc", "sessionId": "s"},
        {"chunkNumber": None},
        {"sessionId": "s"},
        {"chunkNumber": "1.5"},
    ],
)
async def test_chunk_response_with_a_bad_chunk_number(
    mocked: aioresponses, kore: KoreClient, payload: dict[str, Any]
) -> None:
    mocked.post(f"{BASE}/files/session/s", payload=payload)
    with pytest.raises(ResponseValidationError) as info:
        await kore.files.upload_chunk("s", 0, b"x")
    assert info.value.body == payload


@pytest.mark.parametrize(
    "payload",
    [{"sessionId": ""}, {"sessionId": "   "}, {"modelId": "cm-1"}, {"sessionId": 12}],
)
def test_start_response_without_a_usable_session_id(payload: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="session"):
        SessionStarted.model_validate(payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"modelId": "cm-1", "status": "SUCCESS"},
        {"dockStatusId": "", "status": "SUCCESS"},
        {"_id": 123},
        {"dock-statusId": None},
    ],
)
def test_job_without_an_id_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no job id"):
        JobDocument.model_validate(payload)
