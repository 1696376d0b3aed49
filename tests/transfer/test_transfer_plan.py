"""Property tests of the pure chunk planner."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kore_models import Settings
from kore_models.errors import ConfigurationError
from kore_models.transfer.plan import ChunkPlan, plan_chunks
from kore_models.units import MiB

DEFAULTS = Settings(host="kore.example.test", api_key="kg-plan-test-key-0123")


def _assert_exact_cover(plan: ChunkPlan, size: int) -> None:
    assert plan.file_size == size
    assert plan.chunks[0].offset == 0
    assert plan.chunks[-1].end == size
    for number, chunk in enumerate(plan.chunks):
        assert chunk.number == number
        assert 1 <= chunk.length <= plan.chunk_size
    for before, after in zip(plan.chunks, plan.chunks[1:], strict=False):
        assert after.offset == before.end  # no gap, no overlap
        assert before.length == plan.chunk_size  # only the last chunk may be short
    assert sum(c.length for c in plan.chunks) == size
    assert plan.total_chunks == -(-size // plan.chunk_size)


@given(
    chunk_size=st.integers(min_value=1, max_value=4 * MiB),
    count=st.integers(min_value=1, max_value=3000),
    short=st.integers(min_value=0, max_value=4 * MiB),
)
def test_plan_covers_the_file_exactly(chunk_size: int, count: int, short: int) -> None:
    size = max(1, chunk_size * count - short % chunk_size)
    plan = plan_chunks(size, chunk_size, max_chunks=10**7, max_chunk_size=64 * MiB)
    assert plan.chunk_size == chunk_size
    _assert_exact_cover(plan, size)


@given(
    size=st.integers(min_value=1, max_value=10**13),
    chunk_size=st.integers(min_value=1, max_value=64 * MiB),
    max_chunks=st.integers(min_value=1, max_value=10_000),
)
def test_chunk_size_is_raised_to_stay_under_max_chunks(
    size: int, chunk_size: int, max_chunks: int
) -> None:
    try:
        plan = plan_chunks(size, chunk_size, max_chunks=max_chunks, max_chunk_size=64 * MiB)
    except ConfigurationError:
        # impossible only when even the largest chunk needs too many
        assert -(-size // (64 * MiB)) > max_chunks
        return
    assert plan.total_chunks <= max_chunks
    assert plan.chunk_size >= chunk_size
    assert plan.chunk_size <= 64 * MiB
    if plan.chunk_size != chunk_size:
        assert -(-size // chunk_size) > max_chunks  # raised only when it had to be
        assert plan.chunk_size % MiB == 0
    if plan.total_chunks <= 2000:
        _assert_exact_cover(plan, size)


def test_default_chunk_size_is_under_the_documented_25_mb_request_limit() -> None:
    assert DEFAULTS.chunk_size < 25 * 1000 * 1000
    plan = plan_chunks(  # 200 GiB: raised above the default to fit
        200 * 1024**3,
        DEFAULTS.chunk_size,
        max_chunks=DEFAULTS.max_chunks,
        max_chunk_size=DEFAULTS.max_chunk_size,
    )
    assert plan.total_chunks <= 10_000
    assert plan.chunk_size > DEFAULTS.chunk_size


@pytest.mark.parametrize(
    ("size", "chunk_size"), [(0, 1), (-1, 1), (10, 0), (10, -3), (True, 1), (10, 1.5)]
)
def test_invalid_inputs_are_configuration_errors(size: object, chunk_size: object) -> None:
    with pytest.raises(ConfigurationError):
        plan_chunks(size, chunk_size, max_chunks=10, max_chunk_size=MiB)  # type: ignore[arg-type]


def test_a_file_too_large_for_any_plan_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="too large"):
        plan_chunks(10_001 * 64 * MiB, 16 * MiB, max_chunks=10_000, max_chunk_size=64 * MiB)
