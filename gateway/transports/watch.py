"""`/ws/sessions/{id}/watch`: a coach watches a call (history, then live) and may whisper to the rep.

The frames come from the session's stream on the bus, whichever instance runs the call; a
whisper goes to the instance that owns the call, which numbers and publishes it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
from litestar import WebSocket, websocket
from litestar.datastructures import State
from litestar.params import FromPath

from coaching.errors import SparringError
from coaching.events import ClientPing, Notice, Pong, Sender, WatcherWhisper, encode, watcher_decoder
from coaching.session_log import as_sent
from gateway.auth.revocation import WATCHER_REASON, still_allowed
from gateway.calls.outbox import Outbox
from gateway.calls.registry import CallRegistry
from gateway.errors import NORMAL, POLICY, REFUSED, close_socket
from gateway.fanout.feeds import FeedHub
from gateway.transports.frames import receive_frame
from gateway.transports.session_socket import open_watch
from gateway.vapi.calls import VapiCalls
from storage import sessions
from storage.tenancy import tenant_tx

__all__ = ["watch_session"]


async def _whisper(state: State, session: sessions.SessionRow, sender: Sender, text: str) -> bool:
    """To the instance running a browser call, or into a VAPI call's log (and its AI buyer, when
    VAPI_COACH_STEERING is on)."""
    if session.transport == "vapi":
        vapi: VapiCalls = state.vapi
        return await vapi.whisper(session, sender, text, steer=state.settings.vapi_coach_steering)
    calls: CallRegistry = state.calls
    return await calls.whisper(str(session.id), sender, text)


@websocket("/ws/sessions/{session_id:uuid}/watch")
async def watch_session(socket: WebSocket[Any, Any, Any], state: State, session_id: FromPath[uuid.UUID]) -> None:
    await socket.accept()
    try:
        caller, session, after_seq = await open_watch(socket, state, session_id)
    except SparringError as refused:  # AuthRefused, RateLimited, CallRefused: gateway/errors.py picks the code
        await close_socket(socket, refused)
        return
    outbox = Outbox(socket, max_frames=2000)  # a watcher too far behind is closed (TRY_AGAIN) and resumes
    key = str(session_id)
    if session.status == "ended":  # a replay: everything is in Postgres
        async with tenant_tx(state.pool, caller.tenant) as conn:
            for row in await sessions.list_events(conn, session_id, after_seq=after_seq, limit=1_000_000):
                outbox.send_text(as_sent(row.payload))
        outbox.close(NORMAL, "replay complete: the call has ended")
        await outbox.drain()
        return
    feeds: FeedHub = state.feeds
    watcher = feeds.watch(key, caller.tenant, outbox, after_seq)
    sender = Sender(str(caller.user_id), caller.name)
    try:
        while not outbox.closed:
            frame = await receive_frame(socket)
            if frame is None:
                return
            try:
                command = watcher_decoder.decode(frame.get("text") or b"")
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                outbox.close(POLICY, f"watchers may send whisper (1-500 characters) or ping: {exc}"[:120])
                return
            now = int(time.time() * 1000)
            match command:
                case ClientPing():
                    outbox.send_text(encode(Pong(session_id=key, ts=now)))
                case WatcherWhisper() if not caller.is_staff:
                    outbox.close(POLICY, "only coaches and admins whisper")
                    return
                case WatcherWhisper():
                    if not await still_allowed(state.pool, caller, staff=True):  # demoted or removed since
                        outbox.close(REFUSED, WATCHER_REASON)
                        return
                    if not await _whisper(state, session, sender, command.text):
                        outbox.send_text(encode(Notice(
                            session_id=key, ts=now, code="not_delivered",
                            message="the rep is not connected to this call right now; the whisper was not delivered")))
                case _:  # a watcher message type added to the protocol without a case here
                    outbox.close(POLICY, f"the watch socket does not accept {type(command).__name__} messages")
                    return
    finally:
        feeds.leave(key, watcher)
        await outbox.drain()
