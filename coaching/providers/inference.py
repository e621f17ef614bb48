"""The bounded thread pool every call shares for local inference (whisper, piper).

CTranslate2 and ONNX Runtime release the GIL, so inference runs in threads off the event loop.
When more work waits than the pool can finish in time, new work is refused at once
(`Overloaded`) rather than slowing every call down. Work that can be skipped (a partial
transcript while the rep speaks) runs only on a thread that is idle now, so it never queues ahead
of a call's final transcript or its persona's speech. Background work (transcribing an uploaded
call) waits instead, and only ever takes a thread that is idle, leaving at least one to the live
calls, so they keep their latency while a long recording is transcribed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, TypeVarTuple

from coaching.errors import Overloaded

__all__ = ["InferencePool"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class InferencePool:
    """Args:
        max_workers: threads running inference at once.
        max_waiting: jobs allowed to wait beyond the running ones before new work is shed.
    """

    def __init__(self, *, max_workers: int = 2, max_waiting: int = 8) -> None:
        if max_workers < 1 or max_waiting < 0:
            raise ValueError(f"max_workers must be >= 1 and max_waiting >= 0, got {max_workers}, {max_waiting}")
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="inference")
        self._limit = max_workers + max_waiting
        self._in_flight = 0
        self._max_workers = max_workers
        self._background = asyncio.Semaphore(max(1, max_workers - 1))
        self._idle = asyncio.Condition()
        self._notifying: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def run(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Raises:
            Overloaded: the pool is full; the caller should tell the user and carry on.
        """
        if self._in_flight >= self._limit:
            raise Overloaded("local speech processing is at capacity; try again in a moment")
        return await self._submit(fn, *args)

    async def run_if_idle(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Runs `fn` at once on a thread nothing else uses, for work a caller can skip.

        Raises:
            Overloaded: every thread is busy (or queued for); the caller skips this one.
        """
        if self._in_flight >= self._max_workers:
            raise Overloaded("no idle inference thread for optional work")
        return await self._submit(fn, *args)  # an idle thread is also room under `run`'s limit

    async def _submit(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Counts the job until its thread is done with it, even when the caller stops waiting: a
        barge-in cancels a synthesis that its thread goes on with (one not yet started is dropped)."""
        loop = asyncio.get_running_loop()
        job = self._executor.submit(fn, *args)
        self._in_flight += 1

        def done(_: object) -> None:
            try:
                loop.call_soon_threadsafe(self._finished)
            except RuntimeError:  # the loop has closed: nobody is left to count
                pass

        job.add_done_callback(done)
        return await asyncio.wrap_future(job, loop=loop)

    def _finished(self) -> None:
        self._in_flight -= 1
        task = asyncio.ensure_future(self._notify_idle())
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    async def _notify_idle(self) -> None:
        async with self._idle:
            self._idle.notify_all()

    async def run_background(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Runs `fn` when it would leave a thread idle for live work (on a one-thread pool: when
        nothing else runs), waiting as long as that takes; at most `max_workers - 1` at once.
        Never refused."""
        async with self._background:
            async with self._idle:
                # Start only when, once started, a thread is still idle for live work.
                await self._idle.wait_for(lambda: self._in_flight + 1 < self._max_workers or self._in_flight == 0)
            return await self._submit(fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
