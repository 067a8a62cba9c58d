"""Record the histories replayed by tests/replay: `python -m tests.replay.record`.

Re-record when the engine changes its command sequence on purpose (and guard the change with
`workflow.patched`, keeping the old histories so old runs keep replaying).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

from activities.registry import default_registry
from worker.client import CadenzaClient, connect
from worker.run import ensure_search_attributes, running_worker
from worker.server import EmbeddedServer, ServerConfig, free_port
from worker.settings import Settings
from workflows.dsl.loader import parse_document

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = Path(__file__).resolve().parent / "histories"
FAST = {"initial_interval": 0.1, "maximum_interval": 0.2}

CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "order-fulfilment": (
        parse_document((ROOT / "examples/order-fulfilment.yaml").read_bytes(), "order.yaml"),
        {"order_id": "A-1", "amount": 3, "address": "1 Main St", "email": "a@example.org"},
    ),
    "order-fulfilment-compensated": (
        parse_document((ROOT / "examples/order-fulfilment.yaml").read_bytes(), "order.yaml"),
        {"order_id": "A-2", "amount": 3},
    ),
    "data-pipeline": (
        parse_document((ROOT / "examples/data-pipeline.yaml").read_bytes(), "pipeline.yaml"),
        {"rows": [3, 1, 4, 1, 5]},
    ),
    "handlers-guards-timeout": (
        {
            "workflow_id": "replay-mix",
            "retry_policy": FAST,
            "timeout": 3,
            "steps": [
                {
                    "step_id": "a",
                    "action": "std.fail",
                    "error_handlers": ["std.echo"],
                    "retry_policy": {"max_attempts": 2},
                    "rollback_actions": ["std.log"],
                },
                {
                    "step_id": "b",
                    "action": "std.echo",
                    "dependencies": ["a"],
                    "conditions": [{"when": "input.go"}],
                },
                {"step_id": "c", "action": "std.echo", "dependencies": ["b"]},
                {
                    "step_id": "d",
                    "action": "std.sleep",
                    "dependencies": ["a"],
                    "input_mapping": {"seconds": "30"},
                },
            ],
        },
        {"go": False},
    ),
}


async def main() -> None:
    config = ServerConfig(port=free_port(), headless=True, db_path=None)
    server = EmbeddedServer(config)
    server.start()
    os.environ["TEMPORAL_ADDRESS"] = config.address
    try:
        client = await connect()
        await ensure_search_attributes(client)
        task_queue = f"record-{uuid.uuid4().hex[:8]}"
        async with running_worker(client, Settings(), default_registry(), task_queue=task_queue):
            cadenza = CadenzaClient(client, task_queue)
            for name, (definition, run_input) in CASES.items():
                handle = await cadenza.start(definition, run_input, execution_id=f"replay-{name}")
                result = await cadenza.result(handle.id)
                history = await handle.fetch_history()
                (HISTORIES / f"{name}.json").write_text(history.to_json())
                print(f"{name}: {result.status.value}, {len(history.events)} events")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
