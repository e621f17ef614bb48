"""A circuit breaker: after repeated failures, stop calling a provider for a while. Pure state."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Closed until `failure_threshold` failures in a row; then open (calls skipped) for
    `reset_after_s`; then half-open: one call is let through, and its outcome closes or reopens it.

    Args:
        failure_threshold: consecutive failures that open the circuit.
        reset_after_s: how long it stays open before a trial call.
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(self, *, failure_threshold: int = 3, reset_after_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failure_threshold < 1 or reset_after_s <= 0:
            raise ValueError(
                f"failure_threshold must be >= 1 and reset_after_s > 0, got {failure_threshold}, {reset_after_s}"
            )
        self._threshold, self._reset_after_s, self._clock = failure_threshold, reset_after_s, clock
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self._reset_after_s else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self._failures >= self._threshold or self._opened_at is not None:
            self._opened_at = self._clock()
