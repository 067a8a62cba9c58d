"""`connect()` takes an address and a namespace as arguments, over envconfig's."""

from __future__ import annotations

from typing import Any

import pytest

from worker import client as client_module
from worker.client import ConnectionFailed, connect


async def test_address_and_namespace_override_envconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "elsewhere:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "from-env")
    seen: dict[str, Any] = {}

    async def fake_connect(**kwargs: Any) -> str:
        seen.update(kwargs)
        return "client"

    monkeypatch.setattr(client_module.Client, "connect", fake_connect)
    assert await connect(address="127.0.0.1:17233", namespace="payments") == "client"
    assert seen["target_host"] == "127.0.0.1:17233" and seen["namespace"] == "payments"
    await connect()
    assert seen["target_host"] == "elsewhere:7233" and seen["namespace"] == "from-env"


async def test_an_unreachable_address_is_named_in_the_error() -> None:
    with pytest.raises(ConnectionFailed, match=r"127\.0\.0\.1:1 "):
        await connect(address="127.0.0.1:1")
