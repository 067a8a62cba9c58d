"""The payload codec: large payloads compressed and restored exactly; small ones untouched."""

from __future__ import annotations

from worker.codec import COMPRESS_ABOVE, ENCODING, data_converter
from workflows.dsl.models import ExecutionResult, StepRecord


async def test_large_state_is_compressed_and_round_trips() -> None:
    converter = data_converter()
    state = ExecutionResult(
        execution_id="e",
        workflow_id="w",
        version="1",
        steps={f"c{i}": StepRecord(output={"i": i}) for i in range(10_000)},
    )
    small = ExecutionResult(execution_id="e", workflow_id="w", version="1")
    encoded = await converter.encode([state, small])
    assert encoded[0].metadata["encoding"] == ENCODING
    assert encoded[0].ByteSize() < 2_000_000 / 4  # far under Temporal's 2 MB payload limit
    assert encoded[1].metadata["encoding"] == b"json/plain"
    assert encoded[1].ByteSize() < COMPRESS_ABOVE
    decoded = await converter.decode(encoded, [ExecutionResult, ExecutionResult])
    assert decoded == [state, small]
