"""Slots: at most `max_parallel_steps` activities of a run at once, served by priority."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from temporalio import workflow

from workflows.engine.context import Priority


class Slots:
    """A semaphore whose waiters are served by priority (lowest tuple first), deterministically."""

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: list[tuple[Priority, int, asyncio.Future[None]]] = []
        self._seq = 0

    async def acquire(self, priority: Priority) -> None:
        while self._waiters and self._waiters[0][2].done():  # waiters cancelled meanwhile
            heapq.heappop(self._waiters)
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._waiters, (priority, self._seq, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self.free += 1

    @asynccontextmanager
    async def for_step(self, priority: Priority, paused: Callable[[], bool]) -> AsyncIterator[None]:
        """A slot to start a step's work; none is taken while `paused()` (the run's pause)."""
        while True:
            if paused():
                await workflow.wait_condition(lambda: not paused())
            await self.acquire(priority)
            if not paused():
                break
            self.release()  # paused while waiting for the slot
        try:
            yield
        finally:
            self.release()

    @asynccontextmanager
    async def held(self, priority: Priority) -> AsyncIterator[None]:
        """A slot whatever the pause: error handlers, rollbacks and reminders finish what was
        started."""
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()
