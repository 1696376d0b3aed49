"""The retry rulebook: what is retried, how long each wait is, and what bounds the retries."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from kore_models import (
    APIStatusError,
    BadRequestError,
    ConfigurationError,
    KoreClient,
    KoreConnectionError,
    KoreTimeoutError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    Settings,
    StallError,
    _retry,
)
from kore_models._retry import (
    RetryBudget,
    RetryPolicy,
    backoff_delay,
    call_with_retry,
    is_retryable,
    parse_retry_after,
)

BASE = "https://kore.example.test/api/public"


def policy_with(**changes: Any) -> RetryPolicy:
    """The rulebook with the defaults of Settings, ``changes`` applied."""
    base = RetryPolicy.from_settings(Settings(host="kore.example.test", api_key="kg-" + "k" * 20))
    return dataclasses.replace(base, **changes)


EXPORT_URL = f"{BASE}/models/cm-1/export"
JOB = {"_id": "ds-1", "status": "IN_PROGRESS"}


def status_error(status: int, retry_after: float | None = None) -> APIStatusError:
    from kore_models.errors import error_from_response

    return error_from_response(
        status_code=status,
        headers={},
        text="x",
        method="POST",
        url="u",
        retry_after=retry_after,
    )


class Recorder:
    """A fake sleep that records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Failing:
    """An operation that raises the given errors in turn, then returns ``result``."""

    def __init__(self, errors: list[BaseException], result: str = "ok") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.result = result

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


@pytest.fixture
def recorded_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace the rulebook's real sleep (used by the transport) by a recorder."""
    recorder = Recorder()
    monkeypatch.setattr(_retry, "_real_sleep", recorder)
    return recorder.waits


# --- which errors are retried ------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (KoreConnectionError("refused"), True),
        (KoreTimeoutError("read"), True),
        (StallError("stall"), True),
        (status_error(408), True),
        (status_error(429), True),
        (status_error(500), True),
        (status_error(502), True),
        (status_error(503), True),
        (status_error(504), True),
        (status_error(501), False),  # not implemented will not start working
        (status_error(505), False),
        (status_error(400), False),
        (status_error(401), False),
        (status_error(403), False),
        (status_error(404), False),
        (status_error(409), False),
        (status_error(410), False),
        (status_error(413), False),
        (status_error(422), False),
        (status_error(418), False),
        (ConfigurationError("bad"), False),
        (ValueError("bug"), False),
        (ConnectionError("raw, not mapped"), False),
    ],
)
def test_is_retryable(error: BaseException, retried: bool) -> None:
    assert is_retryable(error) is retried


def test_status_errors_have_the_right_classes() -> None:
    assert isinstance(status_error(408), RequestTimeoutError)
    assert isinstance(status_error(429), RateLimitError)
    assert isinstance(status_error(503), ServerError)


# --- Retry-After parsing and the computed wait -------------------------------------------


def test_parse_retry_after_seconds_and_dates() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("  ") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0.0
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    past = format_datetime(datetime.fromtimestamp(now - 30, UTC), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def test_parse_retry_after_minus_zero_zone_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    # "-0000" yields a naive datetime; it must not be read in the local time zone.
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        now = datetime(2025, 2, 5, 11, 58, 3, tzinfo=UTC).timestamp()
        assert parse_retry_after("Wed, 05 Feb 2025 11:59:03 -0000", now=now) == 60.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 30.0), (50, 30.0)]:
        waits = [backoff_delay(attempt, initial=0.5, maximum=30.0, rng=rng) for _ in range(300)]
        assert all(0.0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # the jitter spans the whole range
        assert min(waits) < ceiling * 0.2


def test_wait_for_honours_and_caps_retry_after() -> None:
    policy = policy_with(retry_after_cap=60.0, backoff_initial=0.5, backoff_max=30.0)
    rng = random.Random(0)
    assert policy.wait_for(1, status_error(429, retry_after=7.0), rng) == 7.0
    assert policy.wait_for(5, status_error(503, retry_after=0.0), rng) == 0.0
    assert policy.wait_for(1, status_error(429, retry_after=3600.0), rng) == 60.0
    no_hint = policy.wait_for(3, status_error(429), rng)
    assert 0.0 <= no_hint <= 2.0
    assert 0.0 <= policy.wait_for(1, KoreConnectionError("x"), rng) <= 0.5


async def test_call_with_retry_waits_are_backoff_then_retry_after_capped() -> None:
    sleep = Recorder()
    policy = policy_with(
        max_attempts=5, backoff_initial=1.0, backoff_max=8.0, retry_after_cap=20.0, seed=3
    )
    op = Failing(
        [
            KoreConnectionError("a"),
            status_error(503),
            status_error(429, retry_after=12.0),
            status_error(429, retry_after=500.0),
        ]
    )
    assert await call_with_retry(op, policy, sleep=sleep) == "ok"
    assert op.calls == 5
    assert len(sleep.waits) == 4
    assert 0.0 <= sleep.waits[0] <= 1.0
    assert 0.0 <= sleep.waits[1] <= 2.0
    assert sleep.waits[2:] == [12.0, 20.0]


async def test_retry_sleeps_false_removes_every_wait() -> None:
    sleep = Recorder()
    policy = policy_with(max_attempts=4, sleeps=False, backoff_initial=100.0, backoff_max=100.0)
    op = Failing([status_error(503), status_error(429, retry_after=100.0), status_error(502)])
    # the recorder would receive every wait (100 s each) if sleeps=False were ignored
    assert await call_with_retry(op, policy, sleep=sleep) == "ok"
    assert sleep.waits == []
    assert op.calls == 4


# --- bounds -----------------------------------------------------------------------------


@pytest.mark.parametrize("attempts", [1, 2, 5])
async def test_attempts_are_bounded(attempts: int) -> None:
    sleep = Recorder()
    op = Failing([status_error(503) for _ in range(10)])
    with pytest.raises(ServerError):
        await call_with_retry(op, policy_with(max_attempts=attempts), sleep=sleep)
    assert op.calls == attempts
    assert len(sleep.waits) == attempts - 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 413, 422])
async def test_client_errors_are_never_retried(status: int) -> None:
    sleep = Recorder()
    op = Failing([status_error(status)])
    with pytest.raises(APIStatusError):
        await call_with_retry(op, policy_with(max_attempts=5), sleep=sleep)
    assert op.calls == 1
    assert sleep.waits == []


async def test_retry_false_makes_one_attempt() -> None:
    op = Failing([status_error(503)])
    with pytest.raises(ServerError):
        await call_with_retry(op, policy_with(max_attempts=5, sleeps=False), retry=False)
    assert op.calls == 1


async def test_the_deadline_bounds_retries() -> None:
    calls = 0

    async def slow_failure() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.04)
        raise status_error(503)

    policy = policy_with(max_attempts=100, deadline=0.1, sleeps=False)
    with pytest.raises(ServerError):
        await call_with_retry(slow_failure, policy)
    # each attempt takes at least 0.04 s, so a 0.1 s deadline allows at most 4 of the 100
    # (a slower machine only makes fewer)
    assert 1 <= calls <= 4


async def test_a_wait_never_runs_past_the_deadline() -> None:
    sleep = Recorder()
    policy = policy_with(max_attempts=2, deadline=5.0, retry_after_cap=120.0)
    op = Failing([status_error(429, retry_after=100.0)])
    assert await call_with_retry(op, policy, sleep=sleep) == "ok"
    assert len(sleep.waits) == 1
    assert 4.0 < sleep.waits[0] <= 5.0


async def test_the_budget_stops_retries_when_exhausted() -> None:
    budget = RetryBudget(2)
    policy = policy_with(max_attempts=10, sleeps=False)
    first = Failing([status_error(503) for _ in range(10)])
    with pytest.raises(ServerError):
        await call_with_retry(first, policy, budget=budget)
    assert first.calls == 3  # one attempt plus the two retries of the budget
    assert budget.exhausted
    assert budget.used == 2
    second = Failing([KoreConnectionError("down"), KoreConnectionError("down")])
    with pytest.raises(KoreConnectionError):
        await call_with_retry(second, policy, budget=budget)
    assert second.calls == 1  # the shared budget is spent: no retry at all


async def test_on_retry_sees_each_error_and_wait() -> None:
    seen: list[tuple[str, float]] = []
    sleep = Recorder()
    op = Failing([status_error(429, retry_after=2.0), KoreTimeoutError("t")])
    policy = policy_with(max_attempts=3, backoff_initial=0.0, backoff_max=0.0)
    await call_with_retry(
        op, policy, sleep=sleep, on_retry=lambda e, w: seen.append((type(e).__name__, w))
    )
    assert seen == [("RateLimitError", 2.0), ("KoreTimeoutError", 0.0)]
    assert sleep.waits == [2.0, 0.0]


# --- through the transport, with aioresponses sequences -----------------------------------


def make_client(**kwargs: Any) -> KoreClient:
    return KoreClient("kore.example.test", "kg-key", **kwargs)


def attempts_to(mock: aioresponses, url: str, method: str = "POST") -> int:
    return sum(
        len(calls) for (m, u), calls in mock.requests.items() if (m, str(u)) == (method, url)
    )


async def test_503_then_200_is_retried(mocked: aioresponses, recorded_sleeps: list[float]) -> None:
    mocked.post(EXPORT_URL, status=503, body="busy")
    mocked.post(EXPORT_URL, payload=JOB)
    async with make_client(max_attempts=3) as kore:
        job = await kore.models.export("cm-1")
    assert job.dock_status_id == "ds-1"
    assert attempts_to(mocked, EXPORT_URL) == 2
    assert len(recorded_sleeps) == 1


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "body": "x"},
        {"status": 502, "body": "x"},
        {"status": 504, "body": "x"},
        {"status": 408, "body": "x"},
        {"status": 429, "body": "x"},
        {"exception": aiohttp.ClientConnectionError("refused")},
        {"exception": aiohttp.ServerDisconnectedError()},
        {"exception": TimeoutError()},
    ],
)
async def test_retryable_failures_then_success(
    mocked: aioresponses, recorded_sleeps: list[float], failure: dict[str, Any]
) -> None:
    mocked.post(EXPORT_URL, **failure)
    mocked.post(EXPORT_URL, **failure)
    mocked.post(EXPORT_URL, payload=JOB)
    async with make_client(max_attempts=5) as kore:
        await kore.models.export("cm-1")
    assert attempts_to(mocked, EXPORT_URL) == 3
    assert len(recorded_sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 413, 422])
async def test_a_4xx_is_not_retried(
    mocked: aioresponses, recorded_sleeps: list[float], status: int
) -> None:
    mocked.post(EXPORT_URL, status=status, payload={"message": "no"})
    mocked.post(EXPORT_URL, payload=JOB)
    async with make_client(max_attempts=5) as kore:
        with pytest.raises(APIStatusError) as info:
            await kore.models.export("cm-1")
    assert info.value.status_code == status
    assert attempts_to(mocked, EXPORT_URL) == 1
    assert recorded_sleeps == []


async def test_attempts_are_bounded_through_the_transport(
    mocked: aioresponses, recorded_sleeps: list[float]
) -> None:
    mocked.post(EXPORT_URL, status=503, body="down", repeat=True)
    async with make_client(max_attempts=4) as kore:
        with pytest.raises(ServerError):
            await kore.models.export("cm-1")
    assert attempts_to(mocked, EXPORT_URL) == 4
    assert len(recorded_sleeps) == 3


async def test_retry_after_is_honoured_and_capped_through_the_transport(
    mocked: aioresponses, recorded_sleeps: list[float]
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=40)
    mocked.post(EXPORT_URL, status=429, body="slow", headers={"Retry-After": "7"})
    mocked.post(EXPORT_URL, status=503, body="down", headers={"Retry-After": "9999"})
    mocked.post(
        EXPORT_URL,
        status=429,
        body="slow",
        headers={"Retry-After": format_datetime(when, usegmt=True)},
    )
    mocked.post(EXPORT_URL, payload=JOB)
    async with make_client(max_attempts=5, retry_after_cap=50.0) as kore:
        await kore.models.export("cm-1")
    assert recorded_sleeps[:2] == [7.0, 50.0]
    assert 35.0 <= recorded_sleeps[2] <= 40.0


async def test_retry_sleeps_false_through_the_client(
    mocked: aioresponses, recorded_sleeps: list[float]
) -> None:
    mocked.post(EXPORT_URL, status=429, body="slow", headers={"Retry-After": "60"})
    mocked.post(EXPORT_URL, payload=JOB)
    async with make_client(max_attempts=3, retry_sleeps=False) as kore:
        await kore.models.export("cm-1")
    assert attempts_to(mocked, EXPORT_URL) == 2
    assert recorded_sleeps == []


async def test_upload_chunk_rebuilds_its_body_for_each_attempt(
    mocked: aioresponses,
    recorded_sleeps: list[float],
    render_wire: Callable[[Any], Awaitable[bytes]],
) -> None:
    url = f"{BASE}/files/session/s-1"
    mocked.post(url, status=502, body="bad gateway")
    mocked.post(url, exception=aiohttp.ClientOSError(104, "reset"))
    mocked.post(url, payload={"chunkNumber": "4", "sessionId": "s-1"})
    retries: list[str] = []
    budget = RetryBudget(5)
    async with make_client(max_attempts=5) as kore:
        accepted = await kore.files.upload_chunk(
            "s-1", 4, b"chunk-bytes", budget=budget, on_retry=lambda e, w: retries.append(str(e))
        )
    assert accepted.chunk_number == 4
    calls = next(iter(mocked.requests.values()))
    assert len(calls) == 3
    forms = [c.kwargs["data"] for c in calls]
    assert len({id(f) for f in forms}) == 3  # a fresh multipart body per attempt
    for form in forms:
        wire = await render_wire(form)
        assert b"chunk-bytes" in wire
        assert b'name="chunkNumber"' in wire
        assert wire.endswith(b"\r\n\r\n4\r\n--" + form.boundary.encode() + b"--\r\n")
    assert len(retries) == 2
    assert budget.used == 2


async def test_upload_chunk_retry_false(mocked: aioresponses, recorded_sleeps: list[float]) -> None:
    url = f"{BASE}/files/session/s-1"
    mocked.post(url, status=503, body="x")
    mocked.post(url, payload={"chunkNumber": 0})
    async with make_client(max_attempts=5) as kore:
        with pytest.raises(ServerError):
            await kore.files.upload_chunk("s-1", 0, b"x", retry=False)
    assert attempts_to(mocked, url) == 1


async def test_not_found_after_a_retry_stops(
    mocked: aioresponses, recorded_sleeps: list[float]
) -> None:
    mocked.post(EXPORT_URL, status=503, body="x")
    mocked.post(EXPORT_URL, status=404, body="gone")
    mocked.post(EXPORT_URL, payload=JOB)
    async with make_client(max_attempts=5) as kore:
        with pytest.raises(NotFoundError):
            await kore.models.export("cm-1")
    assert attempts_to(mocked, EXPORT_URL) == 2


async def test_bad_request_is_raised_at_once(mocked: aioresponses) -> None:
    mocked.post(EXPORT_URL, status=400, payload={"errors": [{"msg": "bad", "code": 1}]})
    async with make_client() as kore:
        with pytest.raises(BadRequestError):
            await kore.models.export("cm-1")
    assert attempts_to(mocked, EXPORT_URL) == 1
