"""One measurement epoch of the controller: goodput of a level by Little's law."""

from __future__ import annotations

__all__ = ["Epoch"]


class Epoch:
    """Goodput of one level, from the requests that started at it.

    By Little's law a path moves ``mean requests in flight x bytes per request-second``;
    both factors come from this epoch only: the in-flight count integrated over its time,
    and the bytes and durations of the requests that started after it began.
    """

    def __init__(self, level: int, start: float, in_flight: int):
        self.level = level
        self.start = start
        self.area = 0.0
        self.last = start
        self.in_flight = in_flight
        self.bytes = 0
        self.busy = 0.0
        self.samples = 0

    def note_in_flight(self, now: float, in_flight: int) -> None:
        if self.in_flight == 0 and self.area == 0 and not self.samples:
            self.start = now  # an idle start (no work yet) is not part of the measure
        self.area += self.in_flight * (now - self.last)
        self.last = now
        self.in_flight = in_flight

    def add(self, started: float, now: float, count: int) -> None:
        if started >= self.start:
            self.bytes += count
            self.busy += now - started
            self.samples += 1

    def mean_in_flight(self, now: float) -> float:
        span = now - self.start
        if span <= 0:
            return float(self.in_flight)
        return (self.area + self.in_flight * (now - self.last)) / span

    def goodput(self, now: float) -> float:
        if self.busy <= 0:
            return 0.0
        return self.mean_in_flight(now) * self.bytes / self.busy
