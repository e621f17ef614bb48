"""`GET /api/live`: the org's live calls, on every instance (presence renewed by each call's owner)."""

from __future__ import annotations

import msgspec
from litestar import get
from litestar.datastructures import State

from gateway.auth.caller import CallerDep, require_role
from gateway.calls.live_list import LiveEntry, decode_entry
from gateway.errors import ApiError

__all__ = ["list_live_calls"]


class LiveCalls(msgspec.Struct):
    calls: list[LiveEntry]


@get("/api/live", tags=["live"], summary="The organization's live calls (coach, admin)")
async def list_live_calls(state: State, caller: CallerDep) -> LiveCalls:
    require_role(caller, "coach", "admin")
    try:
        entries = await state.calls.coordinator.live(str(caller.org_id))
    except Exception:
        raise ApiError(503, "unavailable", "the live-call list is unavailable right now; try again shortly") from None
    calls = sorted((decode_entry(e) for e in entries), key=lambda c: c.started_at, reverse=True)
    return LiveCalls(calls)
