"""Group commit for VAPI webhooks: a burst of deliveries goes into one transaction instead of one
each.

Per key (an organization's endpoint and lane: a call always takes the same lane): the first
delivery runs at once; deliveries that arrive while its batch runs wait and go together in the
next, in arrival order. An idle lane costs nothing; a busy one pays one transaction, one inbox
insert, one lock statement, one append and one publish round trip per batch rather than per
webhook, and a few lanes per organization keep one slow batch from holding up all its calls. The
same pattern as storage.event_writer: hand-written because it is a dozen lines of asyncio with our
own failure rule (a batch that fails is retried one delivery at a time by the caller, so one bad
delivery never fails the others).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Batches"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class Batches(Generic[K, T]):
    """Args:
        run: applies one batch of a key, in order; returns each item's failure (None: applied).
    """

    def __init__(self, run: Callable[[K, list[T]], Awaitable[list[BaseException | None]]]) -> None:
        self._run = run
        self._waiting: dict[K, list[tuple[T, asyncio.Future[None]]]] = {}
        self._running: dict[K, asyncio.Task[None]] = {}

    async def submit(self, key: K, item: T) -> None:
        """Applies `item` with whatever else of `key` is waiting; returns once it is applied.

        Raises:
            Exception: the item's own failure.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)  # a waiter that hung up is not warned about
        self._waiting.setdefault(key, []).append((item, done))
        if key not in self._running:
            # A task of its own: a client that hangs up must not cancel the others' batch.
            self._running[key] = asyncio.create_task(self._drain(key), name=f"vapi-batch-{key}")
        await asyncio.shield(done)

    async def _drain(self, key: K) -> None:
        try:
            while batch := self._waiting.pop(key, None):
                try:
                    failures = await self._run(key, [item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - handed to every waiter of the batch
                    failures = [exc] * len(batch)
                for (_, done), failure in zip(batch, failures, strict=True):
                    if done.done():
                        continue
                    if failure is None:
                        done.set_result(None)
                    else:
                        done.set_exception(failure)
        finally:
            del self._running[key]


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
