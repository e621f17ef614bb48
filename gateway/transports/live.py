"""`/ws/sessions/{id}`: the rep's live call. Authenticate, read `start`, join the call, then pump
frames into it. The protocol is in docs/protocol.md."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.params import FromPath

from coaching.errors import SparringError
from gateway.calls.outbox import Outbox
from gateway.calls.registry import CallRegistry
from gateway.errors import close_socket
from gateway.transports.session_socket import open_call, pump

__all__ = ["live_session"]


@websocket("/ws/sessions/{session_id:uuid}")
async def live_session(socket: WebSocket[Any, Any, Any], state: State, session_id: FromPath[uuid.UUID]) -> None:
    await socket.accept()
    try:
        caller, session, start = await open_call(socket, state, session_id)
    except SparringError as refused:  # AuthRefused, RateLimited, CallRefused: gateway/errors.py picks the code
        await close_socket(socket, refused)
        return
    outbox = Outbox(socket)
    calls: CallRegistry = state.calls
    try:
        call = await calls.connect(caller, session, start, outbox)
    except SparringError as refused:  # CallRefused: ended, over the live-call limit, held elsewhere
        outbox.cancel()
        await close_socket(socket, refused)
        return
    try:
        await pump(socket, call, outbox, start, caller=caller, pool=state.pool)
    finally:
        call.detach_rep(outbox)
        await outbox.drain()
