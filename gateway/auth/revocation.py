"""Revocation that reaches open sockets, on every instance.

A role change, a removed member, a deleted account or a logout changes the database (memberships,
users, the `revoked_tokens` denylist). Every instance runs a `RevocationSweeper`: every
`interval_s` (2 s) it checks all the sockets it holds — the reps of the calls it runs and its
watchers — in ONE query (`auth_sockets_allowed`), and closes the ones no longer allowed: a
watcher with REFUSED (4403), a rep with UNAUTHENTICATED (4401), and the rep's call ends
(`access_revoked`), so nothing the rep sends afterwards takes effect. The instance that answers
the change also closes its own matching sockets at once (`close_user`), before answering.

For actions that must not take effect even inside the sweep's interval (a whisper, a typed turn),
`still_allowed` re-checks one caller in the database.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import asyncpg
from litestar.connection import ASGIConnection

from gateway.auth.caller import Caller, socket_caller
from gateway.calls.live_call import LiveCall
from gateway.errors import REFUSED, UNAUTHENTICATED
from gateway.fanout.feeds import Watcher
from storage import accounts
from storage.database import acquire

__all__ = ["RevocationSweeper", "revoke_call", "still_allowed"]

log = logging.getLogger(__name__)
WATCHER_REASON = "your access to this call was revoked"
REP_REASON = "your access was revoked; sign in again"


async def still_allowed(pool: asyncpg.Pool, caller: Caller, *, staff: bool) -> bool:
    """True while `caller`'s account, membership (with a coach or admin role when `staff`), access
    token and login are all still valid: one query. Call it before acting on what a socket sent
    (a whisper: `staff=True`; a typed turn: `staff=False`)."""
    async with acquire(pool) as conn:
        allowed = await accounts.sockets_allowed(
            conn, [(caller.user_id, caller.org_id, caller.revocation_ids, staff)])
    return allowed == [True]


def revoke_call(call: LiveCall) -> Coroutine[Any, Any, None] | None:
    """A revoked rep's call: their socket closes at once with UNAUTHENTICATED (4401) and its
    reason; returns the call's end (`access_revoked`) to await, or None if it is already ending.
    The same whether the sweep, the answering instance or a re-checked typed turn found it."""
    if call.rep is not None:
        call.rep.close(UNAUTHENTICATED, REP_REASON)
    return None if call.ending else call.end("access_revoked")


def _rep_entry(call: LiveCall) -> tuple[uuid.UUID, uuid.UUID, list[str], bool]:
    caller = socket_caller(call.rep.socket) if call.rep is not None else None
    return call.session.user_id, call.session.org_id, caller.revocation_ids if caller else [], False


def _watcher_entry(watcher: Watcher) -> tuple[uuid.UUID, uuid.UUID, list[str], bool]:
    caller = socket_caller(watcher.outbox.socket)
    staff = watcher.tenant.role in ("coach", "admin")
    user_id, org_id = watcher.tenant.user_id, watcher.tenant.org_id
    assert user_id is not None and org_id is not None  # a watcher is always a signed-in person
    return user_id, org_id, caller.revocation_ids if caller else [], staff


class RevocationSweeper:
    """Args:
        pool: the app pool.
        calls: the calls this process runs (`CallRegistry.live_calls`).
        watchers: this process's watchers (`FeedHub.watchers`).
        interval_s: how often the sockets are checked.
    """

    def __init__(self, pool: asyncpg.Pool, calls: Callable[[], list[LiveCall]], watchers: Callable[[], list[Watcher]],
                 *, interval_s: float = 2.0) -> None:
        self._pool, self._calls, self._watchers = pool, calls, watchers
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._ending: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RevocationSweeper:
        self._task = asyncio.create_task(self._run(), name="revocation-sweep")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.sweep()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: keep the sockets, try again next time
                if not failing:
                    log.warning("revocation sweep failed", extra={"error": type(exc).__name__})
                failing = True

    async def sweep(self) -> int:
        """Checks every socket this instance holds (one query); closes the revoked. Returns how many."""
        calls, watchers = self._calls(), self._watchers()
        entries = [_rep_entry(c) for c in calls] + [_watcher_entry(w) for w in watchers]
        if not entries:
            return 0
        async with acquire(self._pool) as conn:
            allowed = await accounts.sockets_allowed(conn, entries)
        closed = 0
        for call, ok in zip(calls, allowed[:len(calls)], strict=True):
            if not ok:
                self._end_call(call)
                closed += 1
        for watcher, ok in zip(watchers, allowed[len(calls):], strict=True):
            if not ok:
                watcher.outbox.close(REFUSED, WATCHER_REASON)
                closed += 1
        if closed:
            log.info("closed revoked sockets", extra={"count": closed})
        return closed

    def close_user(self, user_id: uuid.UUID, *, calls: bool) -> int:
        """Closes this instance's sockets of `user_id` at once (before the change is answered):
        their watchers, and with `calls` their live calls too. Other instances' sweeps do the same
        within `interval_s`."""
        closed = 0
        for watcher in self._watchers():
            if watcher.tenant.user_id == user_id:
                watcher.outbox.close(REFUSED, WATCHER_REASON)
                closed += 1
        if calls:
            for call in self._calls():
                if call.session.user_id == user_id:
                    self._end_call(call)
                    closed += 1
        return closed

    def close_token(self, connection_ids: list[str]) -> int:
        """Closes this instance's sockets opened with any of these revocation ids (a logout)."""
        wanted = set(connection_ids)
        closed = 0
        for watcher in self._watchers():
            caller = socket_caller(watcher.outbox.socket)
            if caller is not None and wanted & set(caller.revocation_ids):
                watcher.outbox.close(UNAUTHENTICATED, REP_REASON)
                closed += 1
        for call in self._calls():
            caller = socket_caller(call.rep.socket) if call.rep is not None else None
            if caller is not None and wanted & set(caller.revocation_ids):
                self._end_call(call)
                closed += 1
        return closed

    def _end_call(self, call: LiveCall) -> None:
        ending = revoke_call(call)
        if ending is None:
            return
        task = asyncio.create_task(ending, name=f"revoke-{call.session_id}")
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)


def sweeper_of(connection: ASGIConnection[Any, Any, Any, Any]) -> RevocationSweeper | None:
    sweeper: RevocationSweeper | None = getattr(connection.app.state, "revocations", None)
    return sweeper
