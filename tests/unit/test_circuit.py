"""The circuit breaker: opens after N consecutive failures, fails fast while open, half-opens
after the timeout for one trial, closes on success and reopens on failure."""

from __future__ import annotations

from activities.circuit import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_fails_fast_half_opens_and_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=clock)
    for _ in range(2):
        assert breaker.check("pay") is None
        breaker.failed("pay")
    assert breaker.state("pay") == "closed"
    breaker.failed("pay")  # the third consecutive failure opens it
    assert breaker.state("pay") == "open"
    clock.now += 10
    assert breaker.check("pay") == 20  # the time left, for next_retry_delay
    assert breaker.check("other") is None  # per action
    clock.now += 20
    assert breaker.state("pay") == "half-open"
    assert breaker.check("pay") is None  # one trial goes through
    assert breaker.check("pay") == 1.0  # others wait for its outcome
    breaker.succeeded("pay")
    assert breaker.state("pay") == "closed" and breaker.check("pay") is None


def test_a_failed_trial_reopens_and_success_resets_the_count() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=5, clock=clock)
    breaker.failed("x")
    breaker.succeeded("x")
    breaker.failed("x")
    assert breaker.state("x") == "closed"  # not consecutive
    breaker.failed("x")
    assert breaker.state("x") == "open"
    clock.now += 5
    assert breaker.check("x") is None
    breaker.failed("x")  # the trial failed
    assert breaker.state("x") == "open" and breaker.check("x") == 5


def test_threshold_zero_turns_it_off() -> None:
    breaker = CircuitBreaker(failure_threshold=0)
    for _ in range(100):
        breaker.failed("x")
    assert breaker.check("x") is None
