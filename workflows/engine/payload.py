"""Results that always fit Temporal's payload limit: the largest step values give way first."""

from __future__ import annotations

import json
import zlib

from workflows.contracts import ExecutionResult

# What a run may return. Temporal refuses payloads over 2 MB; the data converter compresses
# large ones (worker/codec.py), so this is checked on the compressed size, with a margin.
MAX_RESULT_BYTES = 1_500_000


def fit_payload(state: ExecutionResult) -> ExecutionResult:
    """The state, or a copy with the largest step inputs/outputs replaced by markers, so that
    the result always fits Temporal's payload limit: a result that does not fit would fail the
    workflow task again and again instead of ending the run."""
    text = state.model_dump_json()
    if len(text) <= MAX_RESULT_BYTES:
        return state
    compressed = len(zlib.compress(text.encode()))
    if compressed <= MAX_RESULT_BYTES:
        return state
    trimmed = state.model_copy(deep=True)
    sizes = sorted(
        (
            (len(json.dumps(r.output, default=str)) + len(json.dumps(r.input, default=str)), sid)
            for sid, r in trimmed.steps.items()
        ),
        reverse=True,
    )
    # remove about enough raw bytes for the compressed size to fit, then check; a few rounds
    ratio = compressed / len(text)
    goal = (compressed - MAX_RESULT_BYTES) / ratio * 1.2
    removed, index = 0.0, 0
    while index < len(sizes):
        while index < len(sizes) and removed < goal:
            size, sid = sizes[index]
            record = trimmed.steps[sid]
            record.output = {
                "truncated": True,
                "bytes": size,
                "reason": "the run's result exceeded the payload limit; the full value is in "
                "the step's activity result in the history",
            }
            record.input = None
            removed += size
            index += 1
        if len(zlib.compress(trimmed.model_dump_json().encode())) <= MAX_RESULT_BYTES:
            return trimmed
        goal *= 2
    trimmed.vars = {"truncated": True, "reason": "the run's vars exceed the payload limit"}
    return trimmed
