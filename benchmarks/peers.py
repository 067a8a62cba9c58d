"""`make bench-peers`: cadenza, the plain Temporal floor, DBOS and Prefect, interleaved.

`python -m benchmarks.peers --python .venv-peers/bin/python [--rounds 3]`

The production topology of benchmarks/production.py (server, `cadenza worker` process, plain
floor worker process, this process as client) plus one process per peer running under the
peers venv (benchmarks/peer_worker.py: DBOS on SQLite, Prefect 3 on an ephemeral local server).
Each scenario runs every system in turn, A B C D A B C D ..., after a warm-up; medians; ratios
to the floor. Writes benchmarks/results/peers-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_results
from benchmarks.production import row, show
from benchmarks.topology import (
    ROOT,
    WORKFLOWS,
    CadenzaSystem,
    FloorSystem,
    System,
    interleave,
    topology,
)


class PeerSystem:
    """A peer in a process of its own, one scenario per request line."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.workflows = WORKFLOWS

    @classmethod
    async def start(cls, name: str, python: str, folder: Path, log: Path) -> PeerSystem:
        proc = await asyncio.create_subprocess_exec(
            python,
            "-m",
            "benchmarks.peer_worker",
            name,
            str(folder),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log.open("ab"),
        )
        peer = cls(name, proc)
        ready = await peer.answer()
        peer.workflows = int(ready["workflows"])
        return peer

    async def answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 900)
        if not line:
            raise RuntimeError(f"{self.name} exited (code {await self.proc.wait()}); see its log")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def pid(self) -> int | None:
        return self.proc.pid

    async def run(self, scenario: str) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{scenario}\n".encode())
        await self.proc.stdin.drain()
        seconds = float((await self.answer())["seconds"])
        if scenario == "throughput":  # the same rate, as if for WORKFLOWS workflows
            seconds *= WORKFLOWS / self.workflows
        return seconds

    async def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default=str(ROOT / ".venv-peers" / "bin" / "python"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", default="chain,fan,throughput")
    parser.add_argument("--peers", default="dbos,prefect")
    parser.add_argument("--out", default=f"peers-{time.strftime('%Y-%m-%d-%H%M')}.json")
    args = parser.parse_args()
    began = time.perf_counter()
    rows: list[dict[str, Any]] = []
    peers: list[PeerSystem] = []
    async with topology() as top:
        with tempfile.TemporaryDirectory(prefix="cadenza-peers-") as tmp:
            try:
                for name in args.peers.split(","):
                    folder = Path(tmp) / name
                    folder.mkdir()
                    peers.append(await PeerSystem.start(name, args.python, folder, top.logs / name))
                systems: list[System] = [
                    CadenzaSystem(top),
                    CadenzaSystem(top, None, "cadenza-default"),
                    FloorSystem(top),
                    *peers,
                ]
                for scenario in args.scenarios.split(","):
                    rows.append(row(scenario, await interleave(systems, scenario, args.rounds)))
                    show(rows[-1])
            finally:
                for peer in peers:
                    await peer.stop()
    minutes = (time.perf_counter() - began) / 60
    print(f"took {minutes:.1f} min")
    write_results(
        args.out,
        rounds=args.rounds,
        minutes=round(minutes, 1),
        peer_workflows_at_once={p.name: p.workflows for p in peers},
        scenarios=rows,
    )


if __name__ == "__main__":
    asyncio.run(main())
