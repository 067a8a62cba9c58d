"""What schedules take and give back: times (cron expressions, intervals, durations, instants)
parsed for Temporal and printed back, overlap policies, what describe and list return, errors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import (
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    ScheduleRange,
    ScheduleSpec,
)

from cadenza.errors import EXIT_USAGE, CadenzaError
from workflows.dsl.diagnostics import ValidationReport

Overlap = Literal[
    "skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other", "allow_all"
]
OVERLAPS: dict[str, ScheduleOverlapPolicy] = {
    "skip": ScheduleOverlapPolicy.SKIP,
    "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE,
    "buffer_all": ScheduleOverlapPolicy.BUFFER_ALL,
    "cancel_other": ScheduleOverlapPolicy.CANCEL_OTHER,
    "terminate_other": ScheduleOverlapPolicy.TERMINATE_OTHER,
    "allow_all": ScheduleOverlapPolicy.ALLOW_ALL,
}
DURATION_FORMS = "a number and a unit (ms, s, m, h, d), e.g. 30s, 5m, 1h, 1d or 1h30m"
CRON_FORMS = (
    "5 fields (minute hour day-of-month month day-of-week, e.g. '0 9 * * 1-5'), 6 (and year) "
    "or 7 (second first, then year), or @hourly, @daily, @weekly, @monthly, @yearly, "
    "'@every 10m'; prefix 'CRON_TZ=Europe/Paris ' for a time zone (default UTC)"
)
TIME_FORMS = "ISO 8601, e.g. 2025-05-01 or 2025-05-01T09:00Z (UTC unless it has an offset), or now"
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


class ScheduleError(CadenzaError):
    """A schedule request refused before anything changed: an invalid definition or input
    (`report` holds the located diagnostics), a bad cron expression, duration or time, an id
    already taken. The message says what to change."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, report: ValidationReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class UnknownSchedule(ScheduleError):
    """No schedule has this id; the message lists those that exist (`cadenza schedule list`)."""


class ScheduledRun(BaseModel):
    """One run a schedule started."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    execution_id: str = Field(description="The run's workflow id (prefix and scheduled time).")
    run_id: str = ""
    scheduled_at: datetime = Field(description="When the spec said to start it.")
    started_at: datetime = Field(description="When it started (later with jitter, buffering).")
    status: str = Field(description="Temporal's status: running, completed, failed, ...")


class ScheduleSummary(BaseModel):
    """A schedule as `cadenza schedule list` shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schedule_id: str
    workflow_id: str = Field("", description="The scheduled definition's workflow_id.")
    version: str = ""
    spec: str = Field(description="When it runs: 'every 30s' or 'cron 0 9 * * 1-5'.")
    paused: bool = False
    note: str = Field("", description="The note of the last pause, unpause or create.")
    next_run_times: list[datetime] = Field(default_factory=list)
    recent_runs: list[ScheduledRun] = Field(default_factory=list)


class ScheduleView(ScheduleSummary):
    """A schedule as `cadenza schedule describe` shows it: the summary, its policies, counts and
    the definition and input it starts."""

    overlap: str = Field("skip", description="What happens when a run is due while one runs.")
    jitter_seconds: float = 0
    catchup_window_seconds: float = Field(
        0, description="How late a missed run (server down) may still start."
    )
    task_queue: str = ""
    execution_id_prefix: str = Field("", description="Run ids: this, '-', the scheduled time.")
    created_at: datetime | None = None
    updated_at: datetime | None = None
    actions: int = Field(0, description="Runs started so far.")
    skipped_overlap: int = Field(0, description="Runs not started by the overlap policy.")
    missed_catchup_window: int = 0
    running: list[str] = Field(default_factory=list, description="Execution ids still running.")
    definition: dict[str, Any] = Field(default_factory=dict)
    input: dict[str, Any] = Field(default_factory=dict)


def parse_duration(text: str, option: str = "duration") -> timedelta:
    """`30s`, `5m`, `1h30m`, `1d` as a timedelta; ScheduleError for anything else."""
    value = text.strip().replace(" ", "")
    parts = _DURATION.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise ScheduleError(f"{option} {text!r} is not a duration; give {DURATION_FORMS}")
    seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds <= 0:
        raise ScheduleError(f"{option} {text!r} must be longer than 0")
    return timedelta(seconds=seconds)


def parse_time(text: str, option: str = "time") -> datetime:
    """An ISO 8601 date or time (UTC unless it has an offset); ScheduleError otherwise."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ScheduleError(f"{option} {text!r} is not a time; give {TIME_FORMS}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def schedule_spec(
    cron: str | None = None, every: str | timedelta | None = None, jitter: str | None = None
) -> ScheduleSpec:
    """When runs start: a cron expression or an interval (exactly one), with optional jitter."""
    if (cron is None) == (every is None):
        raise ScheduleError("give exactly one of --cron EXPR or --every DURATION")
    spread = parse_duration(jitter, "--jitter") if jitter else None
    if every is not None:
        interval = every if isinstance(every, timedelta) else parse_duration(every, "--every")
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)], jitter=spread)
    expression = (cron or "").strip()
    fields = expression.split()
    if fields and fields[0].startswith("CRON_TZ="):
        fields = fields[1:]
    if not (fields and (fields[0].startswith("@") or 5 <= len(fields) <= 7)):
        raise ScheduleError(f"--cron {cron!r} is not a cron expression; give {CRON_FORMS}")
    return ScheduleSpec(cron_expressions=[expression], jitter=spread)


def spec_text(spec: ScheduleSpec) -> str:
    """A spec as a person reads it: 'every 30s', 'cron 0 9 * * 1-5' (Temporal stores a cron
    expression as calendars; this writes them back as cron fields)."""
    parts = [f"every {duration_text(i.every.total_seconds())}" for i in spec.intervals]
    parts += [f"cron {c}" for c in spec.cron_expressions]
    parts += [f"cron {_calendar_text(c)}" for c in spec.calendars]
    text = "; ".join(parts) or "never (no times)"
    return f"{text} ({spec.time_zone_name})" if spec.time_zone_name else text


def _calendar_text(calendar: ScheduleCalendarSpec) -> str:
    fields = [
        _ranges(calendar.minute, 0, 59),
        _ranges(calendar.hour, 0, 23),
        _ranges(calendar.day_of_month, 1, 31),
        _ranges(calendar.month, 1, 12),
        _ranges(calendar.day_of_week, 0, 6),
    ]
    second = _ranges(calendar.second, 0, 59)
    if calendar.year:
        fields = [second, *fields, _ranges(calendar.year, 0, 0)]
    elif second != "0":
        fields = [second, *fields, "*"]
    return " ".join(fields)


def _ranges(ranges: Sequence[ScheduleRange], low: int, high: int) -> str:
    if not ranges:
        return "*"
    out = []
    for r in ranges:
        end = max(r.end, r.start)
        step = f"/{r.step}" if r.step > 1 else ""
        if (r.start, end) == (low, high) and high:
            out.append(f"*{step}")
        else:
            out.append(f"{r.start}{step}" if end == r.start else f"{r.start}-{end}{step}")
    return ",".join(out)


def overlap_policy(name: str) -> ScheduleOverlapPolicy:
    try:
        return OVERLAPS[name]
    except KeyError:
        raise ScheduleError(
            f"--overlap {name!r} is not a policy; give one of {', '.join(OVERLAPS)}"
        ) from None


def overlap_name(policy: ScheduleOverlapPolicy) -> str:
    names = {v: k for k, v in OVERLAPS.items()}
    return names.get(policy, "skip")


def seconds_of(delta: timedelta | None) -> float:
    return delta.total_seconds() if delta else 0.0


def duration_text(seconds: float) -> str | None:
    """Seconds as the shortest duration text (90 -> '1m30s'); None for 0."""
    if not seconds:
        return None
    out, rest = "", seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            count = int(rest // size)
            out, rest = out + f"{count}{unit}", rest - count * size
    if rest:
        out += f"{rest:g}s"
    return out
