"""The concurrency controller: how many requests run at once, found by plateau seeking.

How it decides. Every request holds a slot (:meth:`ConcurrencyController.slot`) from the
moment it starts until its answer is in. The controller measures goodput, the bytes
acknowledged per second, separately for each *epoch* (the time since the limit last
changed) from the requests that started inside it: by Little's law the link moves
``mean requests in flight x bytes per request-second``, so an epoch has its figure as soon
as half its requests have finished once, about one request time after the change, instead
of waiting for a full window.

- Slow start: begin low (2), double while each level beats the one below it by a clear
  margin (10 %); the first level that does not is a plateau: go back to the level below
  and hold.
- Hold: stay; every ``reprobe_interval`` try one step up or (alternately) one step down,
  keep the new level only if it is clearly faster (up) or no slower (down), else go back.
- Cut: a 429, 503, timeout or connection reset halves the limit at once (right after a
  step up: goes back to the level before it), at most once per request time, so one burst
  of failures counts once, and remembers the level that failed as a ceiling for a while;
  a Retry-After reported through the pause gate does the same.
- A level that the work cannot fill (fewer requests waiting than slots) proves nothing:
  the controller holds it without judging it.

An integer ``fixed`` pins the limit: the controller then only counts.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .epoch import Epoch
from .gate import PauseGate
from .signals import Congestion, congestion_of
from .slots import SlotContext, SlotPool, SlotTicket

__all__ = ["ConcurrencyController", "Decision", "SlotContext", "SlotTicket", "TuningConfig"]

log = logging.getLogger("kore_models.pacing")

DecisionListener = Callable[["Decision"], None]


@dataclass(frozen=True)
class TuningConfig:
    """The controller's knobs; the defaults suit chunk and range requests of MiBs."""

    initial: int = 2
    minimum: int = 1
    maximum: int = 32
    margin: float = 0.10
    decrease: float = 0.5
    reprobe_interval: float = 30.0
    min_window: float = 0.2
    max_window: float = 10.0
    ceiling_seconds: float = 120.0


@dataclass(frozen=True)
class Decision:
    """One change of the limit: when, from what to what, why, and the goodput behind it."""

    at: float
    old: int
    new: int
    reason: str
    goodput: float = 0.0


class _Mode(StrEnum):
    FIXED = "fixed"
    RAMP = "ramp"
    PROBE_UP = "probe up"
    PROBE_DOWN = "probe down"
    HOLD = "hold"


class ConcurrencyController:
    """Sets how many requests of one client run at once (see the module docstring)."""

    def __init__(
        self,
        config: TuningConfig | None = None,
        *,
        fixed: int | None = None,
        gate: PauseGate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config = config or TuningConfig()
        if not 1 <= config.minimum <= config.maximum:
            raise ValueError("need 1 <= minimum <= maximum")
        if fixed is not None and fixed < 1:
            raise ValueError(f"a fixed concurrency must be at least 1, not {fixed}")
        self._clock = clock
        self.gate = gate
        self.adaptive = fixed is None
        level = (
            fixed if fixed is not None else min(config.maximum, max(config.minimum, config.initial))
        )
        self._pool = SlotPool(level)
        now = clock()
        self._mode = _Mode.RAMP if self.adaptive else _Mode.FIXED
        self._epoch = Epoch(level, now, 0)
        self._baseline: tuple[int, float] | None = None
        self._slow_start = True
        self._ceiling: int | None = None
        self._ceiling_until = float("-inf")
        self._last_cut = float("-inf")
        self._burst_from = level
        self._burst = 0
        self._seen_errors: deque[BaseException] = deque(maxlen=64)
        self._next_probe = now + config.reprobe_interval
        self._probe_up_next = True
        self._latency: float | None = None
        self._recent: deque[tuple[float, int]] = deque()
        self._first_use: float | None = None
        self._listeners: list[DecisionListener] = []
        self.decisions: deque[Decision] = deque(maxlen=1000)
        self.peak = level
        self.congestion_signals = 0
        if gate is not None and self.adaptive:
            gate.add_listener(self._on_pause)

    # ----------------------------------------------------------------- reading
    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        return self._pool.limit

    @property
    def in_flight(self) -> int:
        """Requests in flight now."""
        return self._pool.in_use

    @property
    def mode(self) -> str:
        """What the controller is doing: fixed, ramp, probe up, probe down or hold."""
        return str(self._mode)

    def goodput(self, window: float = 5.0) -> float:
        """Bytes acknowledged per second over the last ``window`` seconds."""
        now = self._clock()
        while self._recent and self._recent[0][0] <= now - window:
            self._recent.popleft()
        if self._first_use is None:
            return 0.0
        span = min(window, now - self._first_use)
        return sum(n for _, n in self._recent) / span if span > 0 else 0.0

    def add_listener(self, listener: DecisionListener) -> None:
        """Call ``listener(decision)`` on every change of the limit."""
        self._listeners.append(listener)

    def remove_listener(self, listener: DecisionListener) -> None:
        """Stop calling ``listener`` (no error when it was not added)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    # ------------------------------------------------------------------ slots
    def slot(self, *, honour_pause: bool = True) -> SlotContext:
        """``async with controller.slot() as ticket:`` around one request attempt.

        Waits for the pause gate (unless ``honour_pause`` is false: the request already
        waited out its own Retry-After) and a free slot; on a clean exit the bytes given
        to ``ticket.add`` count as goodput; an exception that signals congestion cuts.
        """
        gate = self.gate if honour_pause else None
        return SlotContext(lambda: self._enter(gate), self._leave)

    async def _enter(self, gate: PauseGate | None) -> SlotTicket:
        while True:
            if gate is not None:
                await gate.wait()
            await self._pool.acquire()
            if gate is None or gate.is_open:
                break
            self._pool.release()  # the gate closed while we queued: wait again
        now = self._clock()
        if self._first_use is None:
            self._first_use = now
        self._epoch.note_in_flight(now, self._pool.in_use)
        return SlotTicket(now)

    def _leave(self, ticket: SlotTicket, exc: BaseException | None) -> None:
        now = self._clock()
        self._pool.release()
        self._epoch.note_in_flight(now, self._pool.in_use)
        if exc is None:
            duration = now - ticket.started
            self._latency = (
                duration if self._latency is None else 0.8 * self._latency + 0.2 * duration
            )
            if ticket.bytes:
                self._epoch.add(ticket.started, now, ticket.bytes)
                self._recent.append((now, ticket.bytes))
            self._evaluate(now)
            return
        kind = congestion_of(exc)
        if kind is not None:
            self._seen_errors.append(exc)
            self.congestion(kind)

    # -------------------------------------------------------------- decisions
    def congestion(self, kind: Congestion, detail: str = "") -> None:
        """A request met congestion: cut the limit (once per request time)."""
        self.congestion_signals += 1
        if not self.adaptive:
            return
        now = self._clock()
        cooldown = min(5.0, max(self.config.min_window, self._latency or 0.0))
        if now - self._last_cut < cooldown:
            # The same burst: each further rejection says one request too many.
            self._burst += 1
            lower = max(self.config.minimum, self._burst_from - self._burst)
            if kind is Congestion.RATE_LIMITED and lower < self.limit:
                self._ceiling = min(self._ceiling or lower + 1, lower + 1)
                why = f"{self._burst} {kind} in one burst at {self._burst_from}"
                self._change(now, lower, why, _Mode.HOLD, self._epoch.goodput(now))
            return
        self._last_cut = now
        self._burst_from, self._burst = self.limit, 1
        old = self.limit
        self._ceiling = old
        self._ceiling_until = now + self.config.ceiling_seconds
        self._slow_start = False
        base, self._baseline = self._baseline, None
        what = f"{kind}{': ' + detail if detail else ''}"
        if self._mode in (_Mode.RAMP, _Mode.PROBE_UP) and base is not None and base[0] < old:
            # right after a step up: the level before it was fine, go back to it
            new, why = base[0], f"{what}; back to {base[0]}"
        else:
            new = max(self.config.minimum, math.floor(old * self.config.decrease))
            why = f"{what}; cut"
        self._change(now, new, why, _Mode.HOLD, self._epoch.goodput(now))

    def _on_pause(self, seconds: float, reason: str, source: BaseException | None) -> None:
        resume = self._clock() + seconds + self.config.reprobe_interval
        self._next_probe = max(self._next_probe, resume)
        if source is not None and any(source is seen for seen in self._seen_errors):
            return
        self.congestion(Congestion.RATE_LIMITED, f"{reason} {seconds:.1f}s")

    def _cap(self, now: float) -> int:
        if self._ceiling is not None and now < self._ceiling_until:
            return max(self.config.minimum, min(self.config.maximum, self._ceiling - 1))
        return self.config.maximum

    def _step_up(self, level: int, now: float, scaled: bool = False) -> int:
        """The next level to try: in slow start twice as many (four times as many from 8
        on while goodput grew in proportion, ``scaled``), else a quarter more."""
        if not self._slow_start:
            return min(self._cap(now), level + max(1, level // 4))
        return min(self._cap(now), level * (4 if scaled and level >= 8 else 2))

    def _ready(self, now: float) -> bool:
        epoch = self._epoch
        elapsed = now - epoch.start
        need = max(2, math.ceil(epoch.level / 2))
        if epoch.samples >= need and elapsed >= self.config.min_window:
            return True
        return epoch.samples >= 1 and elapsed >= self.config.max_window

    def _evaluate(self, now: float) -> None:
        if self._mode is _Mode.FIXED or not self._ready(now):
            return
        estimate = self._epoch.goodput(now)
        level = self.limit
        if self._mode is _Mode.HOLD:
            if now >= self._next_probe:
                self._probe(now, estimate)
            return
        if self._epoch.mean_in_flight(now) < 0.75 * level:
            self._hold(now, f"only {self._epoch.mean_in_flight(now):.1f} requests to run", level)
            return
        base = self._baseline
        if self._mode is _Mode.PROBE_DOWN and base is not None:
            if estimate >= base[1] * (1 - self.config.margin / 2):
                self._baseline = (level, estimate)
                self._hold(now, f"{level} is as fast as {base[0]} ({_mbps(estimate)})", level)
            else:
                self._hold(
                    now, f"{level} was slower ({_mbps(estimate)} vs {_mbps(base[1])})", base[0]
                )
            return
        if base is None or estimate >= base[1] * (1 + self.config.margin):
            gain = "" if base is None else f", +{estimate / base[1] - 1:.0%} over {base[0]}"
            # goodput that grew nearly as much as the level (a per-connection limit)
            scaled = base is not None and estimate >= base[1] * (1 + 0.8 * (level / base[0] - 1))
            self._baseline = (level, estimate)
            up = self._step_up(level, now, scaled)
            if up <= level:
                self._hold(now, f"{_mbps(estimate)} at {level}{gain}; at the maximum", level)
            else:
                self._change(
                    now,
                    up,
                    f"{_mbps(estimate)} at {level}{gain}; trying {up}",
                    _Mode.RAMP,
                    estimate,
                )
            return
        self._slow_start = False
        change = estimate / base[1] - 1 if base[1] > 0 else 0.0
        self._hold(now, f"plateau: {level} gave {change:+.0%} over {base[0]}", base[0], estimate)

    def _probe(self, now: float, estimate: float) -> None:
        """Try one step up or (every other time) one step down from the held level."""
        level = self.limit
        self._baseline = (level, estimate)
        up, self._probe_up_next = self._probe_up_next, not self._probe_up_next
        if up:
            new, mode = self._step_up(level, now), _Mode.PROBE_UP
        else:
            new, mode = max(self.config.minimum, level - max(1, level // 4)), _Mode.PROBE_DOWN
        if new == level:  # at the maximum, under a ceiling, or at the minimum
            self._next_probe = now + self.config.reprobe_interval
            return
        why = f"re-probe: {_mbps(estimate)} at {level}; trying {new}"
        self._change(now, new, why, mode, estimate)

    def _hold(self, now: float, why: str, level: int, goodput: float | None = None) -> None:
        self._next_probe = now + self.config.reprobe_interval
        if level == self.limit:
            self._mode = _Mode.HOLD
            self._epoch = Epoch(level, now, self._pool.in_use)
            log.debug("concurrency holds at %d: %s", level, why)
            return
        self._change(
            now, level, why, _Mode.HOLD, self._epoch.goodput(now) if goodput is None else goodput
        )

    def _change(self, now: float, new: int, why: str, mode: _Mode, goodput: float) -> None:
        old = self.limit
        self._mode = mode
        if mode is _Mode.HOLD:
            self._next_probe = max(self._next_probe, now + self.config.reprobe_interval)
        if new == old:
            self._epoch = Epoch(new, now, self._pool.in_use)
            return
        self._pool.resize(new)
        self._epoch = Epoch(new, now, self._pool.in_use)
        self.peak = max(self.peak, new)
        decision = Decision(at=now, old=old, new=new, reason=why, goodput=goodput)
        self.decisions.append(decision)
        log.info("concurrency %d -> %d: %s", old, new, why)
        for listener in self._listeners:
            try:
                listener(decision)
            except Exception:
                log.warning("a concurrency listener raised", exc_info=True)


def _mbps(rate: float) -> str:
    return f"{rate / 1e6:.1f} MB/s"
