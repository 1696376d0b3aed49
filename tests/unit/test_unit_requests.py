"""The exact request of every endpoint: method, URL, x-api-key, JSON or multipart body."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import MultipartWriter
from aioresponses import aioresponses

from kore_models import ConfigurationError, DeployConfig, KoreClient
from kore_models._body import FileSlice, FileSlicePayload, build_chunk_form

Render = Callable[[Any], Awaitable[bytes]]

BASE = "https://kore.example.test/api/public"
JOB = {"dock-statusId": "ds-1", "modelId": "cm-1", "status": "IN_PROGRESS"}

DEPLOY_SAMPLE: dict[str, Any] = {
    "name": "Flant5_model",
    "isDeployedPreviously": True,
    "hyperParameters": {
        "temperature": 1,
        "maxTokens": 512,
        "topP": 1,
        "topK": 50,
        "stopSequence": [],
    },
    "scalingParameters": {
        "maxBatchSize": 10,
        "minReplicas": 1,
        "maxReplicas": 2,
        "scaleUpDelay": 30,
        "scaleDownDelay": 600,
    },
    "deviceType": "g5.xlarge",
    "optimizationInfo": {"optimizationType": "", "quantizationType": ""},
}


def single_call(mock: aioresponses, method: str, url: str) -> Any:
    """The one request the client sent; fails when it sent to any other URL or twice."""
    sent = [(m, str(u)) for (m, u) in mock.requests]
    assert sent == [(method, url)]
    calls = next(iter(mock.requests.values()))
    assert len(calls) == 1
    return calls[0]


def check_headers(call: Any, api_key: str, *, json_body: bool) -> None:
    headers = {k.lower(): v for k, v in call.kwargs["headers"].items()}
    assert headers["x-api-key"] == api_key
    assert headers["accept"] == "application/json"
    if json_body:
        assert headers["content-type"] == "application/json"
    else:
        assert "content-type" not in headers  # multipart sets its own, no-body calls none


def sent_json(call: Any) -> Any:
    data = call.kwargs["data"]
    assert isinstance(data, bytes)
    return json.loads(data)


def parse_form(raw: bytes, writer: MultipartWriter) -> list[tuple[dict[str, str], bytes]]:
    """Split a rendered multipart/form-data body into (headers, content) per part."""
    boundary = writer.boundary.encode()
    first, closing = b"--" + boundary + b"\r\n", b"\r\n--" + boundary + b"--\r\n"
    assert raw.startswith(first)
    assert raw.endswith(closing)
    parts = []
    for chunk in raw[len(first) : -len(closing)].split(b"\r\n--" + boundary + b"\r\n"):
        head, content = chunk.split(b"\r\n\r\n", 1)
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        parts.append(({k.lower(): v for k, v in headers.items()}, content))
    return parts


def check_chunk_form(
    raw: bytes, writer: MultipartWriter, *, content: bytes, number: str, filename: str
) -> None:
    assert writer.content_type == f"multipart/form-data; boundary={writer.boundary}"
    parts = parse_form(raw, writer)
    assert [h["content-disposition"] for h, _ in parts] == [
        f'form-data; name="file"; filename="{filename}"',
        'form-data; name="chunkNumber"',
    ]
    (file_headers, file_bytes), (_, number_bytes) = parts
    assert file_headers["content-type"] == "application/octet-stream"
    assert file_bytes == content
    assert number_bytes == number.encode()


# --- start session -----------------------------------------------------------------------


async def test_start_session_sends_the_documented_json(
    mocked: aioresponses, kore: KoreClient, api_key: str
) -> None:
    mocked.post(f"{BASE}/files/session/start", payload={"sessionId": "s-1", "modelId": "cm-1"})
    started = await kore.files.start_session(
        file_context="model",
        total_chunks=1,
        file_extension="tar",
        file_name="sample-1.tar",
        file_size=1100,
        is_adapter=False,
    )
    call = single_call(mocked, "POST", f"{BASE}/files/session/start")
    check_headers(call, api_key, json_body=True)
    assert sent_json(call) == {
        "fileContext": "model",
        "totalChunks": 1,
        "fileExtension": "tar",
        "fileName": "sample-1.tar",
        "fileSize": 1100,
        "isAdapter": False,
    }
    assert started.session_id == "s-1"


async def test_start_session_adapter_and_dataset(mocked: aioresponses, kore: KoreClient) -> None:
    mocked.post(f"{BASE}/files/session/start", payload={"sessionId": "s-2"})
    await kore.files.start_session(
        file_context="dataset",
        total_chunks=3,
        file_extension="zip",
        file_name="lora.zip",
        file_size=3 * 1024,
        is_adapter=True,
    )
    body = sent_json(single_call(mocked, "POST", f"{BASE}/files/session/start"))
    assert body["isAdapter"] is True
    assert body["fileContext"] == "dataset"
    assert body["totalChunks"] == 3


async def test_start_session_without_is_adapter_leaves_it_out(
    mocked: aioresponses, kore: KoreClient
) -> None:
    mocked.post(f"{BASE}/files/session/start", payload={"sessionId": "s-3"})
    await kore.files.start_session(
        total_chunks=1, file_extension="tar", file_name="a.tar", file_size=1, is_adapter=None
    )
    body = sent_json(single_call(mocked, "POST", f"{BASE}/files/session/start"))
    assert "isAdapter" not in body
    assert body["fileContext"] == "model"  # the default context


@pytest.mark.parametrize(
    "override",
    [
        {"total_chunks": 0},
        {"file_size": 0},
        {"file_size": -5},
        {"file_name": "dir/a.tar"},
        {"file_name": ".."},
        {"file_extension": ".tar"},
        {"file_extension": ""},
        {"file_context": ""},
    ],
)
async def test_start_session_rejects_bad_fields_before_sending(
    mocked: aioresponses, kore: KoreClient, override: dict[str, Any]
) -> None:
    fields: dict[str, Any] = {
        "total_chunks": 1,
        "file_extension": "tar",
        "file_name": "a.tar",
        "file_size": 10,
        **override,
    }
    with pytest.raises(ConfigurationError):
        await kore.files.start_session(**fields)
    assert mocked.requests == {}


# --- upload chunk ------------------------------------------------------------------------


async def test_upload_chunk_bytes_is_multipart_file_and_decimal_chunk_number(
    mocked: aioresponses, kore: KoreClient, api_key: str, render_wire: Render
) -> None:
    url = f"{BASE}/files/session/5c-session"
    mocked.post(url, payload={"chunkNumber": "0", "sessionId": "5c-session"})
    content = bytes(range(256)) * 4 + b"\r\n--not-a-boundary\r\n"
    accepted = await kore.files.upload_chunk("5c-session", 0, content, filename="sample-1.tar")
    call = single_call(mocked, "POST", url)
    check_headers(call, api_key, json_body=False)
    form = call.kwargs["data"]
    assert isinstance(form, MultipartWriter)
    wire = await render_wire(form)
    check_chunk_form(wire, form, content=content, number="0", filename="sample-1.tar")
    assert await form.as_bytes() == wire
    assert accepted.chunk_number == 0


@pytest.mark.parametrize("number", [1, 9, 10, 12345])
async def test_upload_chunk_number_is_sent_as_plain_decimal(
    mocked: aioresponses, kore: KoreClient, render_wire: Render, number: int
) -> None:
    url = f"{BASE}/files/session/s"
    mocked.post(url, payload={"chunkNumber": number, "sessionId": "s"})
    await kore.files.upload_chunk("s", number, b"abc")
    form = single_call(mocked, "POST", url).kwargs["data"]
    check_chunk_form(
        await render_wire(form), form, content=b"abc", number=str(number), filename="chunk"
    )


async def test_upload_chunk_streams_a_file_slice_at_an_offset(
    mocked: aioresponses, tmp_path: Path, render_wire: Render
) -> None:
    content = os.urandom(400_000)
    path = tmp_path / "model.tar"
    path.write_bytes(content)
    stat = path.stat()
    piece = FileSlice(path, 5_000, 300_000, file_size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    url = f"{BASE}/files/session/sess-9"
    mocked.post(url, payload={"chunkNumber": "1", "sessionId": "sess-9"})
    seen: list[int] = []
    async with KoreClient(
        "kore.example.test", "kg-k", max_attempts=1, read_block_size=128 * 1024
    ) as kore:
        accepted = await kore.files.upload_chunk(
            "sess-9", 1, piece, filename="model.tar", on_bytes=seen.append
        )
    assert accepted.chunk_number == 1
    form = single_call(mocked, "POST", url).kwargs["data"]
    wire = await render_wire(form)
    check_chunk_form(wire, form, content=content[5_000:305_000], number="1", filename="model.tar")
    assert seen == [131072, 131072, 37856]  # streamed block by block, never whole
    assert await form.as_bytes() == wire


async def test_file_slice_payload_refuses_a_changed_file(
    tmp_path: Path, render_wire: Render
) -> None:
    from kore_models import FileChangedError

    path = tmp_path / "m.tar"
    path.write_bytes(b"x" * 100)
    for piece in (
        FileSlice(path, 0, 50, file_size=99),  # size differs from the plan
        FileSlice(path, 60, 50),  # runs past the end of the file
        FileSlice(path, 0, 10, mtime_ns=path.stat().st_mtime_ns + 1),
    ):
        payload = FileSlicePayload(piece, block_size=4096, stall_timeout=5)
        form = build_chunk_form(0, payload, filename="m.tar")
        with pytest.raises(FileChangedError):
            await render_wire(form)
        assert isinstance(payload.error, FileChangedError)
        with pytest.raises(FileChangedError):
            await form.as_bytes()


@pytest.mark.parametrize("number", [-1, True, 1.0, "0"])
async def test_upload_chunk_rejects_a_bad_chunk_number(
    mocked: aioresponses, kore: KoreClient, number: Any
) -> None:
    with pytest.raises(ConfigurationError):
        await kore.files.upload_chunk("s", number, b"x")
    assert mocked.requests == {}


# --- complete, export, undeploy, dock status --------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("POST", "/files/session/sess-1/complete", ("files", "complete", "sess-1")),
        ("POST", "/models/cm-1/export", ("models", "export", "cm-1")),
        ("POST", "/models/cm-1/undeploy", ("models", "undeploy", "cm-1")),
        ("GET", "/dock-status/ds-1", ("dock_status", "get", "ds-1")),
    ],
)
async def test_bodyless_calls(
    mocked: aioresponses,
    kore: KoreClient,
    api_key: str,
    method: str,
    path: str,
    call: tuple[str, str, str],
) -> None:
    url = BASE + path
    mocked.add(url, method=method, payload=JOB)
    namespace, name, ident = call
    doc = await getattr(getattr(kore, namespace), name)(ident)
    sent = single_call(mocked, method, url)
    check_headers(sent, api_key, json_body=False)
    assert sent.kwargs.get("data") is None
    assert not sent.kwargs.get("params")
    assert doc.dock_status_id == "ds-1"


# --- deploy --------------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", ["openSource", "fineTune"])
async def test_deploy_sends_model_type_query_and_the_full_camel_case_body(
    mocked: aioresponses, kore: KoreClient, api_key: str, model_type: Any
) -> None:
    url = f"{BASE}/models/cm-7/deploy?modelType={model_type}"
    mocked.post(url, payload={**JOB, "action": "DEPLOY"})
    config = DeployConfig.model_validate(DEPLOY_SAMPLE)
    doc = await kore.models.deploy("cm-7", model_type, config)
    call = single_call(mocked, "POST", url)
    check_headers(call, api_key, json_body=True)
    assert call.kwargs["params"] == {"modelType": model_type}
    assert sent_json(call) == DEPLOY_SAMPLE
    assert doc.action == "DEPLOY"


async def test_deploy_accepts_a_snake_case_dict_and_omits_unset_optionals(
    mocked: aioresponses, kore: KoreClient
) -> None:
    url = f"{BASE}/models/cm-8/deploy?modelType=fineTune"
    mocked.post(url, payload=JOB)
    await kore.models.deploy(
        "cm-8",
        "fineTune",
        {
            "name": "gpt2",
            "hyper_parameters": {"temperature": 0.5, "max_tokens": 0, "top_p": 0, "top_k": 100},
            "device_type": "g4dn.metal",
            "optimization_info": {
                "optimization_type": "ctranslate2",
                "quantization_type": "int8_float16",
            },
        },
    )
    assert sent_json(single_call(mocked, "POST", url)) == {
        "name": "gpt2",
        "hyperParameters": {"temperature": 0.5, "maxTokens": 0, "topP": 0, "topK": 100},
        "deviceType": "g4dn.metal",
        "optimizationInfo": {
            "optimizationType": "ctranslate2",
            "quantizationType": "int8_float16",
        },
    }


def _deploy_with(path: str, value: Any) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(json.dumps(DEPLOY_SAMPLE))
    *parents, leaf = path.split(".")
    target = config
    for key in parents:
        target = target[key]
    target[leaf] = value
    return config


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("hyperParameters.temperature", 2.01),
        ("hyperParameters.temperature", -0.1),
        ("hyperParameters.maxTokens", 513),
        ("hyperParameters.maxTokens", -1),
        ("hyperParameters.topP", 1.5),
        ("hyperParameters.topK", 0),
        ("hyperParameters.topK", 101),
        ("scalingParameters.maxBatchSize", 0),
        ("scalingParameters.maxBatchSize", 257),
        ("scalingParameters.minReplicas", 11),
        ("scalingParameters.maxReplicas", 51),
        ("scalingParameters.minReplicas", 3),  # more than maxReplicas 2
        ("scalingParameters.scaleUpDelay", 0),
        ("scalingParameters.scaleUpDelay", 1001),
        ("scalingParameters.scaleDownDelay", 49),
        ("scalingParameters.scaleDownDelay", 2001),
        ("deviceType", "p3.2xlarge"),
        ("optimizationInfo.optimizationType", "awq"),
        ("optimizationInfo.quantizationType", "int4"),
        ("name", ""),
        ("unknownField", 1),
    ],
)
async def test_deploy_rejects_out_of_range_config_before_sending(
    mocked: aioresponses, kore: KoreClient, path: str, value: Any
) -> None:
    with pytest.raises(ConfigurationError):
        await kore.models.deploy("cm-1", "openSource", _deploy_with(path, value))
    assert mocked.requests == {}


@pytest.mark.parametrize("model_type", ["opensource", "fine_tune", ""])
async def test_deploy_rejects_an_unknown_model_type(
    mocked: aioresponses, kore: KoreClient, model_type: Any
) -> None:
    with pytest.raises(ConfigurationError):
        await kore.models.deploy("cm-1", model_type, DEPLOY_SAMPLE)
    assert mocked.requests == {}


@pytest.mark.parametrize("device", ["g4dn.xlarge", "g5.2xlarge", "g6e.xlarge", "g5.48xlarge"])
def test_every_documented_device_type_validates(device: str) -> None:
    config = DeployConfig.model_validate(_deploy_with("deviceType", device))
    assert config.to_api()["deviceType"] == device
