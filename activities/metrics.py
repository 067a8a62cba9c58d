"""Custom metrics of a step: what an action records through `ctx.metrics`, checked against the
step's `custom_metrics` declaration and published on the attempt's span for the worker's monitor.

A step declares its metrics by name, optionally with a kind (`orders_processed:counter`,
`basket_size:histogram`, `queue_depth:gauge`); the validator checks the names and kinds
(workflows/dsl/rules.py). An action records them during its attempt:

    ctx.metrics.counter("orders_processed")          # add 1
    ctx.metrics.counter("orders_processed", 3)
    ctx.metrics.histogram("basket_size", 42.5)
    ctx.metrics.gauge("queue_depth", 17)

Recording a name the step did not declare, with another kind than declared, or a value that is
not a finite number (negative for a counter) raises a non-retryable `ActionError` saying which
names the step declares. Values are kept per attempt (a counter's sum, a gauge's last value, a
histogram's observations) and published when the action returns or fails, as one
`cadenza.metric` event per metric on the `cadenza.attempt` span; the monitor
(worker/observability/monitor.py) turns those events into OpenTelemetry metrics with the step and
the workflow as attributes. A step with `metrics_enabled: false` checks what its action records
and publishes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from opentelemetry import trace

from activities.contracts import ErrorType
from activities.registry import ActionError

MetricKind = Literal["counter", "histogram", "gauge"]
KINDS: tuple[MetricKind, ...] = ("counter", "histogram", "gauge")
METRIC_EVENT = "cadenza.metric"
"""The span event a step's metric is published as (attributes: the ones below)."""
E_NAME = "cadenza.metric.name"
E_KIND = "cadenza.metric.kind"
E_VALUE = "cadenza.metric.value"
"""A counter's sum or a gauge's last value (a float); a histogram's observations (floats)."""
E_WORKFLOW = "cadenza.workflow_id"
E_STEP = "cadenza.step_id"
MAX_OBSERVATIONS = 10_000
"""Histogram observations one attempt may record per metric (they travel in one span event)."""


def parse_declaration(entry: str) -> tuple[str, MetricKind | None]:
    """`name` or `name:kind` as the validator accepted it; kind None: any kind, fixed by the
    first recording."""
    name, _, kind = entry.partition(":")
    return name, (kind if kind in KINDS else None)  # type: ignore[return-value]


@dataclass
class _Recorded:
    kind: MetricKind
    total: float = 0.0
    values: list[float] = field(default_factory=list)


class StepMetrics:
    """The metrics one attempt of a step records (`ctx.metrics`).

    Args:
        workflow_id: the definition's workflow_id (the `workflow` attribute of the metric).
        step_id: the step (the `step` attribute).
        declared: the step's `custom_metrics` entries.
        enabled: the step's `metrics_enabled`; off, recordings are checked and not published.
    """

    def __init__(
        self, workflow_id: str, step_id: str, declared: Sequence[str] = (), enabled: bool = True
    ) -> None:
        self.workflow_id = workflow_id
        self.step_id = step_id
        self.enabled = enabled
        self.declared: dict[str, MetricKind | None] = dict(map(parse_declaration, declared))
        self._recorded: dict[str, _Recorded] = {}

    def counter(self, name: str, value: float = 1) -> None:
        """Add `value` (a finite number, not negative) to the counter `name`."""
        number = self._checked(name, "counter", value)
        if number < 0:
            raise self._refused(f"counter {name!r} got {value!r}: a counter only goes up")
        self._entry(name, "counter").total += number

    def histogram(self, name: str, value: float) -> None:
        """Record one observation `value` (a finite number) in the histogram `name`."""
        number = self._checked(name, "histogram", value)
        entry = self._entry(name, "histogram")
        if len(entry.values) >= MAX_OBSERVATIONS:
            raise self._refused(
                f"histogram {name!r}: more than {MAX_OBSERVATIONS} observations in one attempt; "
                "aggregate them in the action and record fewer"
            )
        entry.values.append(number)

    def gauge(self, name: str, value: float) -> None:
        """Set the gauge `name` to `value` (a finite number); the last value set is published."""
        self._entry(name, "gauge").total = self._checked(name, "gauge", value)

    def recorded(self) -> dict[str, tuple[MetricKind, float | list[float]]]:
        """What this attempt recorded so far, by name: (kind, sum, last value or observations)."""
        return {
            name: (e.kind, list(e.values) if e.kind == "histogram" else e.total)
            for name, e in self._recorded.items()
        }

    def publish(self) -> int:
        """Add one `cadenza.metric` event per recorded metric to the current span (the attempt's);
        returns how many. Nothing when the step's metrics are off."""
        if not self.enabled or not self._recorded:
            return 0
        span = trace.get_current_span()
        for name, (kind, value) in self.recorded().items():
            span.add_event(
                METRIC_EVENT,
                {
                    E_NAME: name,
                    E_KIND: kind,
                    E_VALUE: value,
                    E_WORKFLOW: self.workflow_id,
                    E_STEP: self.step_id,
                },
            )
        published = len(self._recorded)
        self._recorded.clear()
        return published

    def _entry(self, name: str, kind: MetricKind) -> _Recorded:
        entry = self._recorded.get(name)
        if entry is None:
            entry = self._recorded[name] = _Recorded(kind)
        return entry

    def _checked(self, name: str, kind: MetricKind, value: object) -> float:
        if name not in self.declared:
            declared = ", ".join(sorted(self.declared)) or "none"
            raise self._refused(
                f"metric {name!r} is not declared by step {self.step_id!r} (declared: "
                f"{declared}); add it to the step's custom_metrics, e.g. '{name}:{kind}'"
            )
        wanted = self.declared[name]
        recorded = self._recorded.get(name)
        fixed = wanted or (recorded.kind if recorded else None)
        if fixed is not None and fixed != kind:
            raise self._refused(
                f"metric {name!r} of step {self.step_id!r} is a {fixed}; record it with "
                f"ctx.metrics.{fixed}(...), not ctx.metrics.{kind}(...)"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._refused(f"metric {name!r} got {value!r}: a value must be a number")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self._refused(f"metric {name!r} got {value!r}: a value must be finite")
        return number

    def _refused(self, message: str) -> ActionError:
        return ActionError(message, type=ErrorType.STEP_FAILED, non_retryable=True)
