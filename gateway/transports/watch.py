"""`/ws/sessions/{id}/watch`: a coach watches a call (history, then live) and may whisper to the rep."""

from __future__ import annotations

import time
import uuid

import msgspec
from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.params import FromPath

from coaching.events import ClientPing, Pong, Sender, Whisper, encode, watcher_decoder
from gateway.calls.outbox import Outbox
from gateway.transports.session_socket import SocketClosed, open_watch

__all__ = ["watch_session"]


@websocket("/ws/sessions/{session_id:uuid}/watch")
async def watch_session(socket: WebSocket, state: State, session_id: FromPath[uuid.UUID]) -> None:
    await socket.accept()
    try:
        caller, session, after_seq = await open_watch(socket, state, session_id)
    except SocketClosed as closed:
        await socket.close(closed.code, closed.reason)
        return
    outbox = Outbox(socket, max_frames=2000)  # a watcher too far behind is closed (1013) and resumes
    call = await state.calls.watch(caller, session, outbox, after_seq)
    if call is None:
        outbox.close(1000, "replay complete: the call is not live here")
        await outbox.drain()
        return
    try:
        while not call.ending:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                command = watcher_decoder.decode(message.get("text") or b"")
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                outbox.close(1008, f"watchers may send whisper (1-500 characters) or ping: {exc}"[:120])
                return
            if isinstance(command, ClientPing):
                outbox.send_text(encode(Pong(session_id=call.session_id, ts=int(time.time() * 1000))))
            else:
                await call.publish(Whisper(session_id=call.session_id, ts=0,
                                           sender=Sender(str(caller.user_id), caller.name), text=command.text))
    finally:
        call.detach_watcher(outbox)
        await outbox.drain()
