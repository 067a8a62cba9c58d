"""Circuit breakers: an action that keeps failing is not called again for a while.

One breaker per action per worker process. After `failure_threshold` consecutive retryable
failures the circuit opens: calls fail at once with a retryable `CircuitOpen` error whose
`next_retry_delay` is the time left, so Temporal's retry waits it out instead of hammering a
dependency that is down. When the time is up the circuit half-opens: one call goes through;
success closes it, failure opens it again for another `reset_timeout`. Input errors
(non-retryable) say nothing about the dependency and do not count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CIRCUIT_OPEN = "CircuitOpen"


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    trial: bool = False  # a half-open trial call is in flight


class CircuitBreaker:
    """Breakers by action name. `failure_threshold=0` turns them off."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self._circuits: dict[str, _Circuit] = {}
        self._lock = threading.Lock()

    def check(self, action: str) -> float | None:
        """None when a call may go ahead; else the seconds until the circuit half-opens."""
        if self.failure_threshold <= 0:
            return None
        with self._lock:
            circuit = self._circuits.get(action)
            if circuit is None or circuit.opened_at is None:
                return None
            left = circuit.opened_at + self.reset_timeout - self.clock()
            if left > 0:
                return left
            if circuit.trial:  # someone is already trying: wait for its outcome
                return min(1.0, self.reset_timeout)
            circuit.trial = True
            return None

    def succeeded(self, action: str) -> None:
        with self._lock:
            self._circuits.pop(action, None)

    def failed(self, action: str) -> None:
        if self.failure_threshold <= 0:
            return
        with self._lock:
            circuit = self._circuits.setdefault(action, _Circuit())
            circuit.failures += 1
            if circuit.trial or circuit.failures >= self.failure_threshold:
                circuit.opened_at = self.clock()
                circuit.trial = False

    def state(self, action: str) -> str:
        """closed, open or half-open (for logs and tests)."""
        with self._lock:
            circuit = self._circuits.get(action)
            if circuit is None or circuit.opened_at is None:
                return "closed"
            if self.clock() - circuit.opened_at >= self.reset_timeout:
                return "half-open"
            return "open"
