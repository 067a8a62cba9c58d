"""Property tests of the inbox's HTTP API from its own OpenAPI document (schemathesis, positive
and negative cases, bounded): whatever the path, query, headers and body, the API answers
without a server error, against a real inbox over HTTP on loopback, the session's Temporal server
and a worker with a run waiting for the token's approver."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from temporalio.client import Client

from activities.registry import ActionRegistry
from tests.support.flows import status_when
from worker.client import CadenzaClient, connect
from worker.inbox.app import create_app
from worker.inbox.settings import InboxSettings
from worker.services.dev_server import free_port
from worker.settings import Settings
from worker.wiring import running_worker
from workflows.contracts import StepStatus

TOKEN = "fuzz-token-" + "f" * 30
SECRET = "fuzz-secret-" + "s" * 32
EXAMPLES = 40
"""Per operation and generation mode: 3 operations x 2 modes x 40 = 240 cases at most."""


@pytest.fixture
def inbox_url(temporal_address: str, task_queue: str) -> Iterator[str]:
    """The inbox under uvicorn in a thread of its own (its own loop and Temporal client): the
    fuzzer's requests are synchronous."""

    async def cadenza() -> CadenzaClient:
        return CadenzaClient(await connect(), task_queue)

    app = create_app(
        InboxSettings(inbox_secret=SECRET, inbox_tokens=f"fuzzer={TOKEN}", task_queue=task_queue),
        cadenza,
        secret=SECRET.encode(),
        public_url="http://127.0.0.1",
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the inbox did not start"
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def fuzz(base: str) -> tuple[Counter[int], list[str]]:
    """Every operation of the document, positive and negative cases; status counts, failures."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in schemathesis.GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                own = {
                    k: v for k, v in (case.headers or {}).items() if k.lower() == "authorization"
                }
                if own and sum(statuses.values()) % 4 == 0:
                    pass  # one case in four keeps its own (fuzzed) credentials
                else:
                    case.headers = {
                        **{k: v for k, v in (case.headers or {}).items() if k not in own},
                        "Authorization": f"Bearer {TOKEN}",
                    }
                response = case.call(base_url=base, timeout=30)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

            check()
    return statuses, failures


async def test_no_input_makes_the_api_fail(
    client: Client, registry: ActionRegistry, task_queue: str, inbox_url: str
) -> None:
    cadenza = CadenzaClient(client, task_queue)
    definition = {
        "workflow_id": "fuzzed",
        "timeout": 600,
        "steps": [
            {"step_id": "ok", "step_type": "approval", "approval": {"approvers": ["fuzzer"]}}
        ],
    }
    async with running_worker(client, Settings(), registry, task_queue=task_queue):
        run_id = (await cadenza.start(definition)).id
        await status_when(
            cadenza,
            run_id,
            lambda s: "ok" in s.steps and s.steps["ok"].status == StepStatus.WAITING,
            "waiting",
        )
        statuses, failures = await asyncio.to_thread(fuzz, inbox_url)
    total = sum(statuses.values())
    print(f"inbox API fuzz: {total} requests, {len(failures)} server errors, {dict(statuses)}")
    assert not failures, failures[:10]
    assert total >= 100 and statuses[200] > 0 and statuses[401] + statuses[422] > 0
