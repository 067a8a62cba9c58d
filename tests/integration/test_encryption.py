"""Encrypted payloads on a real server: history holds no plaintext (inputs, outputs, approval
comments, errors), runs still work, and the codec server decodes for the Web UI."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client

from activities.registry import ActionRegistry
from worker.client import CadenzaClient
from worker.codec import ENCRYPTED, data_converter, new_key, payload_codec
from worker.services.codec_server import codec_server
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.dsl.models import WorkflowState


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere inside a protobuf message."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            yield from payloads_in(value)
            continue
        items = value.values() if hasattr(value, "values") else value  # repeated or map
        for item in items:
            if isinstance(item, Message):
                yield from payloads_in(item)


async def test_history_holds_no_plaintext_and_the_codec_server_decodes_it(
    temporal_address: str, registry: ActionRegistry, task_queue: str
) -> None:
    keys = {"k1": base64.b64decode(new_key())}
    client = await Client.connect(temporal_address, data_converter=data_converter(keys))
    secret = f"s3cr3t-{uuid.uuid4().hex[:8]}"
    definition: dict[str, Any] = {
        "workflow_id": "sealed",
        "retry_policy": {"initial_interval": 0.1, "max_attempts": 2},
        "steps": [
            {"step_id": "a", "action": "std.echo", "input_mapping": {"card": "input.card"}},
            {"step_id": "gate", "step_type": "approval", "dependencies": ["a"]},
            {
                "step_id": "b",
                "action": "std.fail",
                "dependencies": ["gate"],
                "input_mapping": {"message": "'declined: ' + input.card", "until_attempt": "2"},
            },
        ],
    }
    async with running_worker(client, Settings(), registry, task_queue=task_queue):
        cadenza = CadenzaClient(client, task_queue)
        handle = await cadenza.start(definition, {"card": secret})
        for _ in range(100):
            if (await cadenza.status(handle.id)).pending_approvals:
                break
            await asyncio.sleep(0.1)
        await cadenza.approve(handle.id, "gate", "ops", f"card {secret} looks fine")
        result = await cadenza.result(handle.id)
    assert result.status == WorkflowState.COMPLETED
    assert result.steps["a"].output == {"card": secret}
    assert result.approvals[0].detail == f"card {secret} looks fine"
    assert result.steps["b"].attempts == 2  # attempt 1 failed with the secret in its message

    history = await client.get_workflow_handle(handle.id).fetch_history()
    found = [p for e in history.events for p in payloads_in(e)]
    assert len(found) > 10
    leaking = [p for p in found if secret.encode() in p.SerializeToString()]
    assert leaking == [], leaking[:1]
    assert secret not in history.to_json()
    first = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    assert first.metadata["encoding"] == ENCRYPTED

    # the Web UI's codec endpoint turns the workflow input back into JSON
    with codec_server(payload_codec(keys), 0, token="t0k") as url:
        body = json_format.MessageToJson(Payloads(payloads=[first]))
        cors = {"Origin": "http://localhost:8233"}
        async with httpx.AsyncClient() as http:
            refused = await http.post(f"{url}/decode", content=body, headers=cors)
            assert refused.status_code == 401
            preflight = await http.options(f"{url}/decode", headers=cors)
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-origin"] == "http://localhost:8233"
            assert "X-Namespace" in preflight.headers["access-control-allow-headers"]
            reply = await http.post(
                f"{url}/decode",
                content=body,
                headers={**cors, "Authorization": "Bearer t0k", "X-Namespace": "default"},
            )
            assert reply.status_code == 200, reply.text
            assert reply.headers["access-control-allow-origin"] == "http://localhost:8233"
            decoded = reply.json()["payloads"][0]
            assert base64.b64decode(decoded["metadata"]["encoding"]) == b"json/plain"
            run_input = json.loads(base64.b64decode(decoded["data"]))
            assert run_input["input"] == {"card": secret}
            # and encodes: what it seals decodes again
            sealed = await http.post(
                f"{url}/encode", content=reply.text, headers={"Authorization": "Bearer t0k"}
            )
            assert sealed.status_code == 200
            again = json_format.ParseDict(sealed.json(), Payloads()).payloads[0]
            assert again.metadata["encoding"] == ENCRYPTED
            bad = await http.post(
                f"{url}/decode", content=b"{not json", headers={"Authorization": "Bearer t0k"}
            )
            assert bad.status_code == 400 and "not a Payloads JSON" in bad.json()["error"]
