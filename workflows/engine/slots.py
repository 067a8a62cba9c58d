"""Slots: at most `max_parallel_steps` activities of a run at once, served by priority."""

from __future__ import annotations

import asyncio
import heapq

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
