"""The production topology: a server, `cadenza worker` in a process of its own, a plain
Temporal worker in another (benchmarks/plain_floor.py), and this process as the service that
starts runs (CadenzaClient for cadenza, a plain Client for the floor).

`Topology` starts and stops the processes; `CadenzaSystem` and `FloorSystem` run the scenarios
(`SCENARIOS`) and return seconds; `interleave` runs systems A B A B ... and keeps each one's
wall times and the CPU its worker process used.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from benchmarks.common import run_cadenza
from benchmarks.run import dag, dag_spec
from worker.client import CadenzaClient, connect
from worker.services.dev_server import EmbeddedServer, ServerConfig, free_port

ROOT = Path(__file__).resolve().parent.parent
CHAIN = 100
FAN = 100
WORKFLOWS = 100
WORKFLOW_STEPS = 5
CLOCK = os.sysconf("SC_CLK_TCK")

# scenario -> (label, unit, seconds -> metric, higher is better)
SCENARIOS: dict[str, tuple[str, str, Any, bool]] = {
    "chain": (f"chain of {CHAIN}", "ms/step", lambda s: s * 1000 / CHAIN, False),
    "fan": (f"fan of {FAN} + join", "s", lambda s: s, False),
    "dag": ("DAG of 200 (mappings, guards)", "s", lambda s: s, False),
    "throughput": (
        f"{WORKFLOWS} workflows of {WORKFLOW_STEPS} steps at once",
        "wf/s",
        lambda s: WORKFLOWS / s,
        True,
    ),
}


# ---------------------------------------------------------------------------- definitions


def with_execution(definition: dict[str, Any], execution: str | None) -> dict[str, Any]:
    """`execution` set on every action step (None: left unset, the action's own default)."""
    if execution is None:
        return definition

    def walk(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**s, "parallel_steps": walk(s["parallel_steps"])}
            if "parallel_steps" in s
            else {**s, "execution": execution}
            for s in steps
        ]

    return {**definition, "steps": walk(definition["steps"])}


def mapped_chain(n: int) -> dict[str, Any]:
    """n `std.echo` steps; each one's input is the previous output's n + 1 (input_mapping),
    and each writes `vars.n` (output_mapping)."""
    steps = []
    for i in range(n):
        source = f"steps.s{i - 1}.output.n" if i else "input.n"
        steps.append(
            {
                "step_id": f"s{i}",
                "action": "std.echo",
                "dependencies": [f"s{i - 1}"] if i else [],
                "input_mapping": {"n": f"{source} + 1"},
                "output_mapping": {"n": "result.n"},
            }
        )
    return {"workflow_id": f"bench-chain-{n}", "steps": steps}


def fan_join(n: int) -> dict[str, Any]:
    """A parallel container of n `std.echo` children (all at once), then a join step given
    how many succeeded."""
    children = [
        {"step_id": f"c{i}", "action": "std.echo", "input_mapping": {"i": f"input.n + {i}"}}
        for i in range(n)
    ]
    return {
        "workflow_id": f"bench-fan-{n}",
        "max_parallel_steps": n,
        "steps": [
            {"step_id": "fan", "step_type": "parallel", "parallel_steps": children},
            {
                "step_id": "join",
                "action": "std.echo",
                "dependencies": ["fan"],
                "input_mapping": {"total": "steps.fan.output.successful_steps"},
            },
        ],
    }


# ---------------------------------------------------------------------------- processes


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK


@dataclass
class Topology:
    """Server, cadenza worker process, plain floor worker process, and clients."""

    address: str
    client: Client
    cadenza: CadenzaClient
    floor_queue: str
    server: EmbeddedServer
    worker: subprocess.Popen[bytes]
    floor: subprocess.Popen[bytes]
    logs: Path
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)


def spawn(args: Sequence[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(args),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def topology(
    server_args: Sequence[str] = (),
    worker_env: dict[str, str] | None = None,
    worker_cmd: Sequence[str] | None = None,
) -> AsyncIterator[Topology]:
    """Start everything on a fresh file-backed server configured as `cadenza server` is (WAL,
    synchronous=FULL, tuned), plus `server_args` (e.g. dynamic config); stop it all after,
    also when the benchmark is stopped by SIGTERM (a timeout, `kill`)."""
    previous = signal.getsignal(signal.SIGTERM)
    if previous in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-") as tmp:
        logs = Path(tmp)
        config = ServerConfig(
            port=free_port(), headless=True, db_path=logs / "t.db", extra_args=list(server_args)
        )
        server = EmbeddedServer(config, log_path=logs / "server.log")
        server.start()
        queue, floor_queue = f"bench-{uuid.uuid4().hex[:6]}", f"floor-{uuid.uuid4().hex[:6]}"
        env = {"TEMPORAL_ADDRESS": config.address, **(worker_env or {})}
        command = worker_cmd or [sys.executable, "-m", "worker.cli", "worker"]
        worker = spawn([*command, "--task-queue", queue], logs / "worker.log", **env)
        floor = spawn(
            [sys.executable, "-m", "benchmarks.plain_floor", config.address, floor_queue],
            logs / "floor.log",
        )
        try:
            client = await connect(wait=30, address=config.address)
            top = Topology(
                config.address,
                client,
                CadenzaClient(client, queue),
                floor_queue,
                server,
                worker,
                floor,
                logs,
            )
            yield top
        finally:
            for proc in (worker, floor):
                stop(proc)
            server.stop()
            if previous in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM as Ctrl-C: the `finally` blocks stop the server and the worker processes."""
    raise KeyboardInterrupt


# ---------------------------------------------------------------------------- systems


class System(Protocol):
    name: str

    def pid(self) -> int | None: ...

    async def run(self, scenario: str) -> float: ...


class CadenzaSystem:
    """cadenza: definitions started with CadenzaClient, served by the `cadenza worker` process.
    `execution="activity"` (the default here) sets every step's execution explicitly, the
    like of the floor's activities; None leaves it to the actions' declarations."""

    def __init__(self, top: Topology, execution: str | None = "activity", name: str = "") -> None:
        self.top = top
        self.spec = dag_spec()
        self.execution = execution
        self.name = name or ("cadenza" if execution == "activity" else f"cadenza-{execution}")
        self.definitions = {
            "chain": with_execution(mapped_chain(CHAIN), execution),
            "fan": with_execution(fan_join(FAN), execution),
            "dag": with_execution(dag(self.spec, 10), execution),
            "throughput": with_execution(mapped_chain(WORKFLOW_STEPS), execution),
        }

    def pid(self) -> int | None:
        return self.top.worker.pid

    async def run(self, scenario: str) -> float:
        cad = self.top.cadenza
        started = time.perf_counter()
        definition = self.definitions[scenario]
        if scenario in ("chain", "fan"):
            await run_cadenza(cad, definition, {"n": 0})
        elif scenario == "dag":
            await run_cadenza(cad, definition, {"v": 1})
        else:
            handles = await asyncio.gather(
                *(cad.start(definition, {"n": 0}) for _ in range(WORKFLOWS))
            )
            results = await asyncio.gather(*(cad.result(h.id) for h in handles))
            assert all(r.status.value == "completed" for r in results)
        return time.perf_counter() - started


class FloorSystem:
    """The floor: hand-written workflows and plain activities (benchmarks/plain_floor.py)."""

    name = "floor"

    def __init__(self, top: Topology, eager_start: bool = False) -> None:
        self.top = top
        self.spec = dag_spec()
        self.eager_start = eager_start

    def pid(self) -> int | None:
        return self.top.floor.pid

    async def one(self, workflow: str, *args: Any) -> Any:
        return await self.top.client.execute_workflow(
            workflow,
            args=list(args),
            id=f"floor-{uuid.uuid4().hex[:12]}",
            task_queue=self.top.floor_queue,
            request_eager_start=self.eager_start,
        )

    async def run(self, scenario: str) -> float:
        started = time.perf_counter()
        if scenario == "chain":
            await self.one("PlainChain", CHAIN, 0)
        elif scenario == "fan":
            await self.one("PlainFan", FAN, FAN, 0)
        elif scenario == "dag":
            await self.one("PlainDag", self.spec, 1, 10)
        else:
            await asyncio.gather(
                *(self.one("PlainChain", WORKFLOW_STEPS, 0) for _ in range(WORKFLOWS))
            )
        return time.perf_counter() - started


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # worker-process CPU seconds per run

    def median(self) -> float:
        return statistics.median(self.seconds)

    def median_cpu(self) -> float:
        return statistics.median(self.cpu) if self.cpu else 0.0


async def interleave(
    systems: Sequence[System], scenario: str, rounds: int, warmup: int = 1
) -> dict[str, Samples]:
    """Each system `warmup` times, then `rounds` rounds of A B C ...: wall seconds and the
    CPU seconds of each system's worker process per run."""
    for system in systems:
        for _ in range(warmup):
            await system.run(scenario)
    samples = {s.name: Samples() for s in systems}
    for _ in range(rounds):
        for system in systems:
            pid = system.pid()
            before = process_cpu(pid) if pid else 0.0
            samples[system.name].seconds.append(await system.run(scenario))
            if pid:
                samples[system.name].cpu.append(process_cpu(pid) - before)
    return samples


async def history_breakdown(client: Client, workflow_id: str) -> dict[str, dict[str, int]]:
    """Count and bytes of a run's history events by type, and of the payloads they carry."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    kinds: dict[str, dict[str, int]] = {}
    for event in history.events:
        kind = kinds.setdefault(
            EventType.Name(event.event_type).removeprefix("EVENT_TYPE_"),
            {"events": 0, "bytes": 0, "payload_bytes": 0},
        )
        kind["events"] += 1
        kind["bytes"] += event.ByteSize()
        kind["payload_bytes"] += sum(p.ByteSize() for p in _payloads(event))
    return kinds


def _payloads(message: Any) -> list[Any]:
    """Every temporal.api.common.v1.Payload inside a protobuf message."""
    if type(message).__name__ == "Payload":
        return [message]
    found = []
    for descriptor, value in message.ListFields():
        if descriptor.type != descriptor.TYPE_MESSAGE:
            continue
        if getattr(descriptor, "is_repeated", False) or isinstance(value, Iterable):
            items = value.values() if hasattr(value, "values") else value
            for item in items:
                if hasattr(item, "ListFields"):
                    found += _payloads(item)
        else:
            found += _payloads(value)
    return found


async def history_bytes(client: Client, workflow_id: str) -> tuple[int, int]:
    """Events and bytes of a run's history."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return len(history.events), sum(e.ByteSize() for e in history.events)
