"""The payload codec: large payloads compressed and restored exactly; small ones untouched."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload

from worker.codec import (
    COMPRESS_ABOVE,
    ENCODING,
    ENCRYPTED,
    KEY_ID,
    CodecKeyError,
    data_converter,
    new_key,
    parse_keys,
)
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


def keys(*ids: str) -> dict[str, bytes]:
    return {i: base64.b64decode(new_key()) for i in ids}


async def test_encryption_seals_every_payload_and_opens_it_again() -> None:
    key = keys("k1")
    converter = data_converter(key)
    secret = {"card": "4111-1111-1111-1111"}
    big = {"rows": ["4111-1111-1111-1111"] * 20_000}
    encoded = await converter.encode([secret, big])
    for payload in encoded:
        assert payload.metadata["encoding"] == ENCRYPTED
        assert payload.metadata[KEY_ID] == b"k1"
        assert b"4111" not in payload.SerializeToString()
    assert encoded[1].ByteSize() < 100_000  # compressed before sealing
    assert await converter.decode(encoded, [dict, dict]) == [secret, big]


async def test_rotated_keys_still_open_old_payloads_and_unknown_or_altered_ones_fail() -> None:
    old, new = keys("k1"), keys("k2")
    sealed = await data_converter(old).encode(["hello"])
    rotated = data_converter({**new, **old})  # k2 encrypts now; k1 still decrypts
    assert await rotated.decode(sealed, [str]) == ["hello"]
    assert (await rotated.encode(["x"]))[0].metadata[KEY_ID] == b"k2"
    with pytest.raises(CodecKeyError, match="sealed with key 'k1', which this process lacks"):
        await data_converter(new).decode(sealed, [str])
    altered = Payload()
    altered.CopyFrom(sealed[0])
    altered.data = altered.data[:-1] + bytes([altered.data[-1] ^ 1])
    with pytest.raises(CodecKeyError, match="does not authenticate"):
        await data_converter(old).decode([altered], [str])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k1", "is not 'id:base64key'"),
        ("k1:not base64!", "is not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "has 5 bytes; AES-256 needs 32"),
        (f"k1:{new_key()},k1:{new_key()}", "appears twice"),
    ],
)
def test_bad_key_configuration_is_refused_with_the_fix(text: str, message: str) -> None:
    with pytest.raises(CodecKeyError, match=message):
        parse_keys(text)
    assert parse_keys("") == {}
