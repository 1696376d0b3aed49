"""The concurrency controller on simulated links: up on a fat link, a plateau on a capped
one, down on 429s and other congestion, pinned when fixed, judged only when the work fills it."""

from __future__ import annotations

import asyncio

import pytest

from kore_models.errors import (
    KoreConnectionError,
    KoreTimeoutError,
    NotFoundError,
    ServerError,
    TLSError,
)
from kore_models.transfer.pacing import (
    ConcurrencyController,
    Congestion,
    Decision,
    PauseGate,
    TuningConfig,
)
from tests.support.tuning import Link, Transfer, run_virtual, virtual_clock

MB = 1e6
CHUNK = 16 * 1024 * 1024


def simulate(
    link: Link, count: int = 256, *, fixed: int | None = None, **knobs: float
) -> tuple[ConcurrencyController, Transfer]:
    """Send ``count`` chunks over ``link``; return the controller and the finished transfer."""

    async def main() -> tuple[ConcurrencyController, Transfer]:
        clock = virtual_clock()
        gate = PauseGate(clock=clock)
        config = TuningConfig(**knobs)  # type: ignore[arg-type]
        controller = ConcurrencyController(config, fixed=fixed, gate=gate, clock=clock)
        transfer = Transfer(controller, gate, link, size=CHUNK)
        await transfer.run(count)
        return controller, transfer

    return run_virtual(main)


def wan() -> Link:
    return Link(latency=0.05, per_connection=20 * MB)


def capped() -> Link:
    return Link(latency=0.05, per_connection=20 * MB, total=60 * MB)


def guarded() -> Link:
    return Link(guard=4, retry_after=1.0, unlimited_rate=800 * MB)


def test_fat_link_climbs_to_the_maximum_and_stays() -> None:
    controller, transfer = simulate(wan())
    steps = [(d.old, d.new) for d in controller.decisions]
    # doubling, then x4 from 8 on since each step gave as much again
    assert steps == [(2, 4), (4, 8), (8, 32)]
    assert controller.limit == controller.peak == 32
    assert transfer.link.peak_in_flight == 32
    fixed_8 = simulate(wan(), fixed=8)[1]
    assert transfer.seconds < 0.7 * fixed_8.seconds


def test_each_raise_says_why_with_the_goodput_behind_it() -> None:
    controller, _ = simulate(wan(), count=64)
    first, second = controller.decisions[0], controller.decisions[1]
    assert first.reason.startswith("37.7 MB/s at 2; trying 4")
    assert "+100% over 2" in second.reason
    # two 16 MiB chunks in flight at 20 MB/s each after 50 ms: 37.7 MB/s
    assert first.goodput == pytest.approx(2 * CHUNK / (0.05 + CHUNK / 20e6))


def test_capped_link_holds_at_the_plateau() -> None:
    controller, transfer = simulate(capped(), count=128, reprobe_interval=1000.0)
    steps = [(d.old, d.new) for d in controller.decisions]
    assert steps == [(2, 4), (4, 8), (8, 4)]
    assert "plateau: 8 gave" in controller.decisions[-1].reason
    assert controller.limit == 4
    assert transfer.link.peak_in_flight <= 8
    best_fixed = min(simulate(capped(), count=128, fixed=c)[1].seconds for c in (4, 8, 16, 32))
    assert transfer.seconds <= best_fixed / 0.9


def test_re_probes_find_more_room_when_the_link_widens() -> None:
    async def main() -> ConcurrencyController:
        clock = virtual_clock()
        gate = PauseGate(clock=clock)
        controller = ConcurrencyController(
            TuningConfig(reprobe_interval=5.0), gate=gate, clock=clock
        )
        link = capped()
        transfer = Transfer(controller, gate, link, size=CHUNK)
        sending = asyncio.ensure_future(transfer.run(2000))
        await asyncio.sleep(30)
        assert controller.limit <= 5
        link.total = 0  # the cap is lifted: only the per-connection rate is left
        await sending
        return controller

    controller = run_virtual(main)
    assert controller.limit >= 16
    assert any(d.reason.startswith("re-probe") for d in controller.decisions)


def test_re_probes_go_down_when_fewer_are_as_fast() -> None:
    controller, _ = simulate(capped(), count=400, reprobe_interval=3.0)
    downs = [d for d in controller.decisions if d.new < d.old and "re-probe" in d.reason]
    assert downs, [d.reason for d in controller.decisions]
    assert 3 <= controller.limit <= 5


def test_429s_cut_the_limit_and_the_retry_after_pauses_everyone() -> None:
    controller, transfer = simulate(guarded())
    link = transfer.link
    cuts = [d for d in controller.decisions if d.new < d.old]
    assert cuts
    assert cuts[0].reason.startswith("429 rate limited")
    assert controller.limit <= 4
    assert controller.peak == 8
    assert link.rejected <= 4
    assert link.rejected / (link.served + link.rejected) < 0.05
    assert controller.gate is not None
    assert controller.gate.pauses == link.rejected


def test_a_burst_of_429s_brings_the_limit_to_what_the_server_took() -> None:
    controller, transfer = simulate(guarded(), fixed=None, initial=16)
    assert controller.decisions[0].old == 16
    assert controller.limit <= 4
    assert transfer.link.rejected == 12


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ServerError("busy", status_code=503), Congestion.UNAVAILABLE),
        (ServerError("gateway timeout", status_code=504), Congestion.TIMEOUT),
        (KoreTimeoutError("read timed out"), Congestion.TIMEOUT),
        (KoreConnectionError("connection reset by peer"), Congestion.RESET),
        (ConnectionResetError(), Congestion.RESET),
    ],
)
def test_congestion_errors_halve_the_limit(error: BaseException, kind: Congestion) -> None:
    async def main() -> ConcurrencyController:
        controller = ConcurrencyController(TuningConfig(initial=8), clock=virtual_clock())
        with pytest.raises(type(error)):
            async with controller.slot():
                raise error
        return controller

    controller = run_virtual(main)
    assert controller.limit == 4
    assert controller.decisions[-1].reason.startswith(str(kind))


@pytest.mark.parametrize(
    "error",
    [
        ServerError("internal", status_code=500),
        NotFoundError("no session", status_code=404),
        TLSError("certificate verify failed"),
        ValueError("a bug"),
        asyncio.CancelledError(),
    ],
)
def test_other_failures_leave_the_limit_alone(error: BaseException) -> None:
    async def main() -> ConcurrencyController:
        controller = ConcurrencyController(TuningConfig(initial=8), clock=virtual_clock())
        with pytest.raises(type(error)):
            async with controller.slot():
                raise error
        assert controller.in_flight == 0
        return controller

    assert run_virtual(main).limit == 8


def test_one_burst_of_resets_cuts_once() -> None:
    async def main() -> ConcurrencyController:
        controller = ConcurrencyController(TuningConfig(initial=16), clock=virtual_clock())

        async def failing() -> None:
            async with controller.slot():
                await asyncio.sleep(0.01)
                raise KoreConnectionError("reset")

        results = await asyncio.gather(*(failing() for _ in range(16)), return_exceptions=True)
        assert all(isinstance(r, KoreConnectionError) for r in results)
        return controller

    controller = run_virtual(main)
    assert controller.limit == 8
    assert controller.congestion_signals == 16


def test_fixed_concurrency_never_moves() -> None:
    controller, transfer = simulate(guarded(), count=64, fixed=8)
    assert controller.limit == 8
    assert not controller.decisions
    assert transfer.link.peak_in_flight == 4  # the guard answered the rest with 429
    assert transfer.link.rejected > 0
    assert controller.mode == "fixed"


def test_a_level_the_work_cannot_fill_is_not_raised() -> None:
    async def main() -> ConcurrencyController:
        clock = virtual_clock()
        gate = PauseGate(clock=clock)
        controller = ConcurrencyController(TuningConfig(initial=8), gate=gate, clock=clock)
        await Transfer(controller, gate, wan(), size=CHUNK).run(64, workers=3)
        return controller

    controller = run_virtual(main)
    assert controller.limit == 8
    assert controller.peak == 8


def test_a_link_that_scales_less_than_in_proportion_doubles_only() -> None:
    # 8 connections share 120 MB/s: 2 -> 4 doubles goodput, 4 -> 8 gives +50% only
    link = Link(latency=0.05, per_connection=20 * MB, total=120 * MB)
    controller, _ = simulate(link, count=128, reprobe_interval=1000.0)
    assert [(d.old, d.new) for d in controller.decisions][:3] == [(2, 4), (4, 8), (8, 16)]
    assert controller.limit == 8


def test_limits_stay_within_minimum_and_maximum() -> None:
    controller, transfer = simulate(wan(), count=256, maximum=12, minimum=3, initial=3)
    assert controller.peak == 12
    assert max(transfer.limits) <= 12
    controller, _ = simulate(guarded(), count=64, minimum=3, initial=3)
    assert min(d.new for d in controller.decisions) >= 3


def test_listeners_get_every_decision_and_a_failing_listener_is_contained() -> None:
    seen: list[Decision] = []

    async def main() -> ConcurrencyController:
        clock = virtual_clock()
        gate = PauseGate(clock=clock)
        controller = ConcurrencyController(gate=gate, clock=clock)
        controller.add_listener(lambda d: (_ for _ in ()).throw(RuntimeError("boom")))
        controller.add_listener(seen.append)
        await Transfer(controller, gate, wan(), size=CHUNK).run(64)
        return controller

    controller = run_virtual(main)
    assert seen == list(controller.decisions)
    assert [d.new for d in seen] == [4, 8, 32]


def test_goodput_reports_bytes_per_second_over_the_window() -> None:
    async def main() -> float:
        clock = virtual_clock()
        controller = ConcurrencyController(fixed=1, clock=clock)
        for _ in range(10):
            async with controller.slot() as ticket:
                await asyncio.sleep(1.0)
                ticket.add(1_000_000)
        return controller.goodput(window=5.0)

    assert run_virtual(main) == pytest.approx(1_000_000)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="minimum <= maximum"):
        ConcurrencyController(TuningConfig(minimum=4, maximum=2))
    with pytest.raises(ValueError, match="at least 1"):
        ConcurrencyController(fixed=0)


def test_idle_time_before_the_first_request_is_not_taken_for_a_lack_of_work() -> None:
    async def main() -> ConcurrencyController:
        clock = virtual_clock()
        gate = PauseGate(clock=clock)
        controller = ConcurrencyController(gate=gate, clock=clock)
        await asyncio.sleep(60)  # a client made a minute before its first import
        await Transfer(controller, gate, wan(), size=CHUNK).run(64)
        return controller

    assert [d.new for d in run_virtual(main).decisions] == [4, 8, 32]


def test_on_a_guarded_server_probes_go_back_to_the_good_level_not_half_of_it() -> None:
    link = Link(guard=4, retry_after=1.0, per_connection=20 * MB)
    controller, transfer = simulate(link, count=600, reprobe_interval=10.0)
    cuts = [d for d in controller.decisions if d.new < d.old and "429" in d.reason]
    assert [(d.old, d.new) for d in cuts] == [(8, 4), (5, 4)]
    assert all(d.reason.endswith("back to 4") for d in cuts)
    # the ceiling learnt at 5 keeps later probes from knocking again within two minutes
    assert transfer.link.rejected == 5
    assert min(transfer.limits[50:]) >= 3
    assert controller.limit == 4
