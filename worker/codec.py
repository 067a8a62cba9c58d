"""The data converter of every cadenza client and worker: pydantic JSON, large payloads zlib'd.

Temporal refuses a payload over 2 MB. The execution state of a run with thousands of steps is
repetitive JSON that compresses about tenfold, so payloads above `COMPRESS_ABOVE` bytes are
stored compressed (encoding `binary/zlib`). Smaller payloads stay plain JSON, readable in the
Web UI; a compressed one shows as binary there unless the UI is given a codec server.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

COMPRESS_ABOVE = 64 * 1024
ENCODING = b"binary/zlib"


class CompressionCodec(PayloadCodec):
    """zlib-compresses payloads larger than `threshold` bytes; decodes what it encoded."""

    def __init__(self, threshold: int = COMPRESS_ABOVE) -> None:
        self.threshold = threshold

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
                out.append(Payload.FromString(zlib.decompress(payload.data)))
            else:
                out.append(payload)
        return out


def data_converter() -> DataConverter:
    """pydantic payloads with large ones compressed: give it to clients, workers and replayers."""
    return dataclasses.replace(pydantic_data_converter, payload_codec=CompressionCodec())
