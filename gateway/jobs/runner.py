"""Runs queued jobs on any instance: claims them (`claim_jobs`: FOR UPDATE SKIP LOCKED, leases),
works each inside its organization, renews the leases while it works, and retries failures with
exponential backoff until the job's attempts run out (`failed`, with the last error).

Kept small and ours rather than a job library: the queue is a tenant table under row-level
security with dedupe keys and progress the API streams; the Postgres job libraries that fit
asyncpg (PGQueuer) keep their own tables outside that and would need a second queue beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg

from coaching.errors import SparringError
from gateway.jobs.notifications import JobNotifications
from storage import jobs as store
from storage.database import acquire
from storage.tenancy import Tenant, tenant_tx

__all__ = ["JobContext", "JobHandler", "JobRunner", "PermanentJobError"]

log = logging.getLogger(__name__)


class PermanentJobError(SparringError):
    """The job cannot succeed however often it runs (e.g. its session was deleted): fail it now."""


class JobContext:
    """What a handler gets: its job, the tenant to work as, and a way to report progress."""

    def __init__(self, runner: JobRunner, job: store.ClaimedJob) -> None:
        self.runner, self.job = runner, job
        self.tenant = Tenant(org_id=job.org_id, role="system")
        self.finished = False

    async def progress(self, patch: dict[str, Any]) -> None:
        async with tenant_tx(self.runner.pool, self.tenant) as conn:
            await store.set_job_progress(conn, self.job.id, patch)

    async def finish(self, conn: asyncpg.Connection, progress: dict[str, Any]) -> None:
        """Marks the job done inside the caller's transaction, so its result and its `done` commit
        together. Raises when this worker lost the job (its lease ran out): roll back."""
        if not await store.finish_job(conn, self.job.id, self.runner.worker_id, progress):
            raise PermanentJobError("this worker no longer holds the job")
        self.finished = True


JobHandler = Callable[[JobContext], Awaitable[None]]


def backoff_s(attempt: int, base_s: float = 5.0) -> float:
    """base, 2 x base, 4 x base ... (5 s, 10 s, 20 s by default), capped at 10 minutes."""
    return float(min(600.0, base_s * 2 ** max(0, attempt - 1)))


class JobRunner:
    """Args:
        handlers: by job kind; only these kinds are claimed.
        concurrency: jobs worked at once on this instance.
        lease_s: how long a claim holds without renewal (renewed every third of it).
        poll_s: the longest a queued job waits when no notification arrives.
        retry_base_s: the wait before the first retry (doubling after each failure).
    """

    def __init__(self, pool: asyncpg.Pool, handlers: Mapping[str, JobHandler], *, worker_id: str,
                 notifications: JobNotifications | None = None, concurrency: int = 2, lease_s: float = 60,
                 poll_s: float = 2.0, retry_base_s: float = 5.0) -> None:
        self.pool, self.worker_id = pool, worker_id
        self._handlers = dict(handlers)
        self._concurrency, self._lease_s, self._poll_s = concurrency, lease_s, poll_s
        self._retry_base_s = retry_base_s
        self._wake = asyncio.Event()
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        if notifications is not None:
            notifications.on_any(self._wake.set)

    async def __aenter__(self) -> JobRunner:
        self._tasks = [asyncio.create_task(self._claim_loop(), name="jobs-claim"),
                       asyncio.create_task(self._renew_loop(), name="jobs-renew")]
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stops claiming; running jobs are cancelled and left to their lease (another instance,
        or this one after a restart, takes them up when it runs out)."""
        for task in (*self._tasks, *self._running.values()):
            task.cancel()
        for task in (*self._tasks, *self._running.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    @property
    def running(self) -> int:
        return len(self._running)

    def wake(self) -> None:
        self._wake.set()

    async def _claim_loop(self) -> None:
        while True:
            try:
                free = self._concurrency - len(self._running)
                claimed: list[store.ClaimedJob] = []
                if free > 0:
                    async with acquire(self.pool) as conn:
                        claimed = await store.claim_jobs(conn, list(self._handlers), self.worker_id,
                                                         lease_s=self._lease_s, limit=free)
                for job in claimed:
                    task = asyncio.create_task(self._work(job), name=f"job-{job.kind}-{job.id}")
                    self._running[job.id] = task
                    task.add_done_callback(functools.partial(self._done, job.id))
                if claimed and len(self._running) < self._concurrency:
                    continue  # there may be more
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("claiming jobs failed", extra={"error": type(exc).__name__})
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._wake.wait()

    def _done(self, job_id: uuid.UUID, _task: asyncio.Task[None]) -> None:
        self._running.pop(job_id, None)
        self._wake.set()

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            if not self._running:
                continue
            try:
                async with acquire(self.pool) as conn:
                    await store.renew_jobs(conn, list(self._running), self.worker_id, lease_s=self._lease_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("renewing job leases failed", extra={"error": type(exc).__name__})

    async def _work(self, job: store.ClaimedJob) -> None:
        context = JobContext(self, job)
        extra = {"job_id": str(job.id), "kind": job.kind, "attempt": job.attempts}
        try:
            await self._handlers[job.kind](context)
            if not context.finished:
                async with tenant_tx(self.pool, context.tenant) as conn:
                    await context.finish(conn, {})
            log.info("job done", extra=extra)
        except asyncio.CancelledError:
            raise
        except PermanentJobError as exc:
            await self._fail(context, str(exc), retry_in_s=None)
            log.warning("job failed for good", extra={**extra, "error": str(exc)})
        except Exception as exc:
            # The error's type and message only: messages here come from our code and drivers,
            # never from a transcript.
            message = f"{type(exc).__name__}: {exc}"[:300]
            status = await self._fail(context, message, retry_in_s=backoff_s(job.attempts, self._retry_base_s))
            log.warning("job attempt failed", extra={**extra, "error": type(exc).__name__, "status": status})

    async def _fail(self, context: JobContext, message: str, *, retry_in_s: float | None) -> str | None:
        try:
            async with tenant_tx(self.pool, context.tenant) as conn:
                return await store.retry_or_fail_job(conn, context.job.id, self.worker_id, message,
                                                     retry_in_s=retry_in_s)
        except Exception as exc:  # the lease runs out and the job is taken up again
            log.warning("could not record a job failure", extra={"job_id": str(context.job.id),
                                                                  "error": type(exc).__name__})
            return None
