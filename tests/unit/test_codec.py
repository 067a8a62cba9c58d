"""The payload codec: large payloads compressed and restored exactly; small ones untouched."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from tests.support.processes import cadenza
from worker.codec import (
    COMPRESS_ABOVE,
    ENCODING,
    ENCRYPTED,
    KEY_ID,
    MAX_INFLATED_BYTES,
    CodecKeyError,
    EncryptionCodec,
    PayloadRefused,
    data_converter,
    inflate,
    new_key,
    parse_keys,
    payload_codec,
)
from worker.services.codec_server import CodecServerConfigError, codec_server
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


# --- hostile payloads: zlib bombs and unencrypted payloads where keys are set ---


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@pytest.fixture(scope="module")
def bomb() -> Payload:
    """A `binary/zlib` payload of about 189 KB whose Payload inflates to 190 MiB of zeros
    (made in chunks: the test never holds the inflated bytes)."""
    size = 190 * 2**20
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(b"\x12" + _varint(size))]  # Payload.data, field 2
    zeros = b"\0" * 2**20
    parts += [compressor.compress(zeros) for _ in range(size // len(zeros))]
    parts.append(compressor.flush())
    return Payload(metadata={"encoding": ENCODING}, data=b"".join(parts))


def _peak_mib(work: Callable[[], Awaitable[Any]]) -> tuple[BaseException | None, float]:
    tracemalloc.start()
    try:
        asyncio.run(work())
        error = None
    except BaseException as exc:
        error = exc
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return error, peak


def test_a_zlib_bomb_is_refused_by_the_workers_codec_with_bounded_memory(bomb: Payload) -> None:
    assert len(bomb.data) < 200_000
    error, peak = _peak_mib(lambda: data_converter().payload_codec.decode([bomb]))  # type: ignore[union-attr]
    assert isinstance(error, PayloadRefused), error
    assert f"inflates past {MAX_INFLATED_BYTES} bytes" in str(error)
    assert peak < 2.5 * MAX_INFLATED_BYTES / 2**20
    assert inflate(zlib.compress(b"x" * 1000), limit=1000) == b"x" * 1000
    with pytest.raises(PayloadRefused, match="truncated"):
        inflate(zlib.compress(b"x" * 1000)[:-4])
    with pytest.raises(PayloadRefused, match="not zlib data"):
        inflate(b"not zlib")


async def test_with_keys_set_an_unencrypted_compressed_payload_is_refused(bomb: Payload) -> None:
    key = keys("k1")
    converter = data_converter(key)
    small = Payload(metadata={"encoding": ENCODING}, data=zlib.compress(b"\x12\x02hi"))
    for payload in (small, bomb):
        with pytest.raises(PayloadRefused, match="unencrypted binary/zlib payload"):
            await converter.decode([payload], [str])
    # sealed with the key, a bomb is still refused by the bound (a writer with the key and a bug)
    sealed = await EncryptionCodec(key).encode([bomb])
    with pytest.raises(PayloadRefused, match="inflates past"):
        await converter.decode(sealed, [str])
    short = Payload(metadata={"encoding": ENCRYPTED, KEY_ID: b"k1"}, data=b"x" * 20)
    with pytest.raises(PayloadRefused, match="too short"):
        await converter.decode([short], [str])


# --- the codec server: auth, CORS, body limits, bombs ---

UI = "http://localhost:8233"


def _raw(url: str, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One request written by hand (headers a client library would not send), the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    head_part, _, content = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in head_part.decode().splitlines():
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, content


@pytest.fixture
def served() -> Iterator[tuple[str, dict[str, bytes]]]:
    key = keys("k1")
    with codec_server(payload_codec(key), 0, origins=[UI], token="t0k") as url:
        yield url, key


def test_the_codec_server_needs_a_token_or_an_explicit_insecure_flag_and_exact_origins() -> None:
    codec = payload_codec(keys("k1"))
    with pytest.raises(CodecServerConfigError, match="--insecure-no-auth"), codec_server(codec, 0):
        pass
    for bad in ("*", "http://ui.example/", "ui.example", "http://ui.example/path"):
        with (
            pytest.raises(CodecServerConfigError, match="origin"),
            codec_server(codec, 0, origins=[bad], token="t"),
        ):
            pass
    with codec_server(codec, 0, insecure_no_auth=True) as url:
        status, _, body = _raw(url, POST.format(len(EMPTY)), EMPTY)
        assert status == 200, body


POST = "POST /decode HTTP/1.1\nHost: x\nAuthorization: Bearer t0k\nContent-Length: {}\n"
EMPTY = b'{"payloads": []}'


def test_cors_answers_only_configured_origins_and_refuses_others(
    served: tuple[str, dict[str, bytes]],
) -> None:
    url, _ = served
    status, headers, _ = _raw(url, f"OPTIONS /decode HTTP/1.1\nHost: x\nOrigin: {UI}\n")
    assert status == 204 and headers["access-control-allow-origin"] == UI
    for evil in ("https://evil.example", "null", "*"):
        preflight = f"OPTIONS /decode HTTP/1.1\nHost: x\nOrigin: {evil}\n"
        status, headers, _ = _raw(url, preflight)
        assert status == 403 and "access-control-allow-origin" not in headers
        post = POST.format(len(EMPTY)) + f"Origin: {evil}\n"
        status, headers, _ = _raw(url, post, EMPTY)
        assert status == 403 and "access-control-allow-origin" not in headers
    status, _, _ = _raw(url, POST.format(len(EMPTY)).replace("t0k", "wrong"), EMPTY)
    assert status == 401


@pytest.mark.parametrize(
    ("length", "status", "message"),
    [
        ("-1", 400, "non-negative decimal"),
        ("abc", 400, "non-negative decimal"),
        ("+16", 400, "non-negative decimal"),
        ("1e3", 400, "non-negative decimal"),
        ("16\nContent-Length: 17", 400, "one non-negative"),
        ("9000000", 413, "the limit is 8388608"),
        (None, 411, "Content-Length is required"),
    ],
)
def test_content_length_that_cannot_be_trusted_is_refused_clearly(
    served: tuple[str, dict[str, bytes]], length: str | None, status: int, message: str
) -> None:
    url, _ = served
    head = POST.format(length) if length else POST.replace("Content-Length: {}\n", "")
    got, _, body = _raw(url, head, EMPTY)
    assert (got, message in json.loads(body)["error"]) == (status, True), body
    assert _raw(url, POST.format(len(EMPTY)), EMPTY)[0] == 200  # and it still serves


def test_the_codec_server_refuses_a_zlib_bomb_sealed_or_not(
    served: tuple[str, dict[str, bytes]], bomb: Payload
) -> None:
    url, key = served
    sealed = asyncio.run(EncryptionCodec(key).encode([bomb]))[0]
    for payload, message in ((bomb, "unencrypted binary/zlib"), (sealed, "inflates past")):
        document = json_format.MessageToJson(Payloads(payloads=[payload])).encode()
        status, _, body = _raw(url, POST.format(len(document)), document)
        assert status == 400 and message in json.loads(body)["error"], body[:300]


def test_cadenza_codec_server_without_a_token_exits_2_naming_the_fix() -> None:
    env = {"CADENZA_CODEC_KEYS": f"k1:{new_key()}", "CADENZA_CODEC_SERVER_TOKEN": ""}
    done = cadenza("codec-server", "--port", "0", **env)
    assert done.returncode == 2 and "CADENZA_CODEC_SERVER_TOKEN" in done.stderr, done.stderr
    assert "--insecure-no-auth" in done.stderr and "Traceback" not in done.stderr
    done = cadenza(
        "codec-server", "--port", "0", "--origin", "*", **{**env, "CADENZA_CODEC_SERVER_TOKEN": "t"}
    )
    assert done.returncode == 2 and "'*' is refused" in done.stderr, done.stderr
