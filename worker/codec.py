"""The data converter of every cadenza client and worker: pydantic JSON, large payloads zlib'd,
and every payload encrypted when keys are configured.

Temporal refuses a payload over 2 MB. The execution state of a run with thousands of steps is
repetitive JSON that compresses about tenfold, so payloads above `COMPRESS_ABOVE` bytes are
stored compressed (encoding `binary/zlib`). Smaller payloads stay plain JSON, readable in the
Web UI; a compressed one shows as binary there unless the UI is given a codec server. No payload
inflates past `MAX_INFLATED_BYTES` (zlib bombs are refused, not decoded).

Encryption (`CADENZA_CODEC_KEYS="id1:BASE64KEY,id0:BASE64KEY"`, 32-byte AES-256 keys): every
payload is sealed with AES-GCM under the first key (encoding `binary/encrypted`, metadata
`encryption-key-id`), so inputs, outputs, vars and approval comments are ciphertext in history;
failure messages and stack traces move into encoded attributes too ("Encoded failure" in the UI).
The other keys still decrypt what they sealed: rotate by putting a new key first and keeping the
old ones until no open run or retained history needs them. `cadenza codec-server` lets the Web UI
read payloads. Keys live only in the environment of workers and clients, never in history.
With keys set, a compressed payload that is not sealed is refused: none of ours is.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import zlib
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from cadenza.errors import EXIT_USAGE, CadenzaError

COMPRESS_ABOVE = 64 * 1024
ENCODING = b"binary/zlib"
MAX_INFLATED_BYTES = 64 * 1024 * 1024
"""What one compressed payload may inflate to. Temporal keeps payloads under 2 MB and cadenza's
state compresses about tenfold, so this leaves room; a zlib bomb (189 KB inflating to 960 MiB)
is refused after 64 MiB instead of exhausting the process."""


class PayloadRefused(CadenzaError, ValueError):
    """A payload this process will not decode: it inflates past the bound, is not valid zlib,
    or arrives unencrypted while encryption keys are configured.

    Payloads cadenza wrote never do this; look at what wrote this one (another client, a
    process without the keys, a tampered history).
    """

    exit_code = EXIT_USAGE


def inflate(data: bytes, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """zlib-decompress `data`, refusing to produce more than `limit` bytes.

    Raises:
        PayloadRefused: invalid or truncated zlib data, or more than `limit` bytes of output.
    """
    decompressor = zlib.decompressobj()
    try:
        out = decompressor.decompress(data, limit + 1)
    except zlib.error as exc:
        raise PayloadRefused(f"a {ENCODING.decode()} payload is not zlib data: {exc}") from None
    if len(out) > limit or decompressor.unconsumed_tail:
        raise PayloadRefused(
            f"a {ENCODING.decode()} payload of {len(data)} bytes inflates past {limit} bytes; "
            "refused (a zlib bomb?)"
        )
    if not decompressor.eof:
        raise PayloadRefused(f"a {ENCODING.decode()} payload of {len(data)} bytes is truncated")
    return out


class CompressionCodec(PayloadCodec):
    """zlib-compresses payloads larger than `threshold` bytes; decodes what it encoded, inflating
    no payload past `max_inflated` bytes."""

    def __init__(
        self, threshold: int = COMPRESS_ABOVE, max_inflated: int = MAX_INFLATED_BYTES
    ) -> None:
        self.threshold = threshold
        self.max_inflated = max_inflated

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.ByteSize() <= self.threshold:
                out.append(payload)
                continue
            data = zlib.compress(payload.SerializeToString(), level=6)
            out.append(Payload(metadata={"encoding": ENCODING}, data=data))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") == ENCODING:
                out.append(Payload.FromString(inflate(payload.data, self.max_inflated)))
            else:
                out.append(payload)
        return out


ENCRYPTED = b"binary/encrypted"
KEY_ID = "encryption-key-id"
KEYS_VARIABLE = "CADENZA_CODEC_KEYS"


class CodecKeyError(CadenzaError, ValueError):
    """The key configuration is unusable, or a payload needs a key this process lacks.

    Fix the key list the message names (`cadenza codec-key` makes a key), or give this
    process the key the payload was encrypted with.
    """

    exit_code = EXIT_USAGE


def parse_keys(text: str) -> dict[str, bytes]:
    """`id:base64key,id:base64key` (first = the key that encrypts) -> {id: key}, in order."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise CodecKeyError(
                f"{KEYS_VARIABLE}: {item[:12]!r}... is not 'id:base64key'; "
                "make a key with `cadenza codec-key`"
            )
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise CodecKeyError(f"{KEYS_VARIABLE}: key {key_id!r} is not base64") from None
        if len(key) != 32:
            raise CodecKeyError(
                f"{KEYS_VARIABLE}: key {key_id!r} has {len(key)} bytes; AES-256 needs 32"
            )
        if key_id in keys:
            raise CodecKeyError(f"{KEYS_VARIABLE}: key id {key_id!r} appears twice")
        keys[key_id] = key
    return keys


def new_key() -> str:
    """A fresh random AES-256 key, base64."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


class EncryptionCodec(PayloadCodec):
    """AES-GCM: seals every payload under the first key; opens any payload of a known key.

    Compression runs inside the encryption, so a compressed payload that is not sealed did not
    come from a process with the keys: it is refused rather than inflated and trusted.
    """

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise CodecKeyError("an encryption codec needs at least one key")
        self.key_id = next(iter(keys))
        self.ciphers = {k: AESGCM(v) for k, v in keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self.ciphers[self.key_id]
        out = []
        for payload in payloads:
            nonce = os.urandom(12)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), self.key_id.encode())
            out.append(
                Payload(
                    metadata={"encoding": ENCRYPTED, KEY_ID: self.key_id.encode()},
                    data=nonce + sealed,
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            encoding = payload.metadata.get("encoding")
            if encoding == ENCODING:
                raise PayloadRefused(
                    f"an unencrypted {ENCODING.decode()} payload, while encryption keys are set: "
                    "every payload this codec compresses is sealed too; refused"
                )
            if encoding != ENCRYPTED:
                out.append(payload)
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode()
            cipher = self.ciphers.get(key_id)
            if cipher is None:
                raise CodecKeyError(
                    f"payload sealed with key {key_id!r}, which this process lacks; "
                    f"add it to {KEYS_VARIABLE} (keys known: {sorted(self.ciphers)})"
                )
            if len(payload.data) < 12 + 16:  # nonce and tag
                raise PayloadRefused(f"payload sealed with key {key_id!r} is too short to open")
            try:
                plain = cipher.decrypt(payload.data[:12], payload.data[12:], key_id.encode())
            except InvalidTag:
                raise CodecKeyError(
                    f"payload sealed with key {key_id!r} does not authenticate: altered, or "
                    "the key under that id changed"
                ) from None
            out.append(Payload.FromString(plain))
        return out


class ChainCodec(PayloadCodec):
    """Codecs applied in order when encoding, in reverse when decoding."""

    def __init__(self, codecs: Sequence[PayloadCodec]) -> None:
        self.codecs = list(codecs)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = list(payloads)
        for codec in self.codecs:
            out = list(await codec.encode(out))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = list(payloads)
        for codec in reversed(self.codecs):
            out = list(await codec.decode(out))
        return out


def payload_codec(keys: Mapping[str, bytes] | None = None) -> PayloadCodec:
    """Compression, then encryption when keys are given or `CADENZA_CODEC_KEYS` is set."""
    if keys is None:
        keys = parse_keys(os.environ.get(KEYS_VARIABLE, ""))
    if not keys:
        return CompressionCodec()
    return ChainCodec([CompressionCodec(), EncryptionCodec(keys)])


def data_converter(keys: Mapping[str, bytes] | None = None) -> DataConverter:
    """pydantic payloads, large ones compressed, all encrypted when keys are configured: give it
    to clients, workers and replayers."""
    codec = payload_codec(keys)
    if isinstance(codec, ChainCodec):  # encrypting: error messages and stack traces too
        return dataclasses.replace(
            pydantic_data_converter,
            payload_codec=codec,
            failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
        )
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)
