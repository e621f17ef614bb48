"""`/ws/sessions/{id}`: the rep's live call. Authenticate, read `start`, join the call, then pump
frames into it. The protocol is in docs/protocol.md."""

from __future__ import annotations

import uuid

from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.params import FromPath

from gateway.calls.outbox import Outbox
from gateway.calls.registry import CallRefused
from gateway.transports.session_socket import SocketClosed, open_call, pump

__all__ = ["live_session"]


@websocket("/ws/sessions/{session_id:uuid}")
async def live_session(socket: WebSocket, state: State, session_id: FromPath[uuid.UUID]) -> None:
    await socket.accept()
    try:
        caller, session, start = await open_call(socket, state, session_id)
    except SocketClosed as closed:
        await socket.close(closed.code, closed.reason)
        return
    outbox = Outbox(socket)
    try:
        call = await state.calls.connect(caller, session, start, outbox)
    except CallRefused as refused:
        outbox.cancel()
        await socket.close(refused.code, refused.reason)
        return
    try:
        await pump(socket, call, outbox, start)
    finally:
        call.detach_rep(outbox)
        await outbox.drain()
