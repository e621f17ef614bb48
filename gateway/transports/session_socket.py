"""The live socket's steps: who is calling and for which session, the `start` message, the frames."""

from __future__ import annotations

import asyncio
import time
import uuid

import msgspec
from litestar import WebSocket
from litestar.datastructures import State

from coaching.events import ClientEnd, ClientPing, ClientStart, ClientText, ErrorEvent, Pong, client_decoder, encode
from gateway.auth.caller import AuthRefused, Caller, authenticate
from gateway.calls.live_call import LiveCall
from gateway.calls.outbox import Outbox
from gateway.transports.close_codes import NOT_FOUND, RATE_LIMITED, REFUSED, close_code_for
from storage import sessions

__all__ = ["SocketClosed", "open_call", "open_watch", "pump"]

START_TIMEOUT_S = 15


class SocketClosed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


async def _caller_and_session(socket: WebSocket, state: State, session_id: uuid.UUID,
                              limit: str) -> tuple[Caller, sessions.SessionRow | None]:
    """Who is on the socket, and the session as their tenant sees it (None: absent or not theirs to see).

    Raises:
        SocketClosed: the caller could not be authenticated (4401/4403) or is over the rate
            limit `limit` (4429; 1013 when limits fail closed and their store is down).
    """
    try:
        async with state.pool.acquire() as conn, conn.transaction():
            caller = await authenticate(socket, conn)
            session = await sessions.get_session(conn, session_id)
    except AuthRefused as refused:
        raise SocketClosed(close_code_for(refused), refused.message) from None
    verdict = await state.limiter.check(limit, str(caller.user_id))
    if not verdict.allowed:
        if verdict.unavailable:
            raise SocketClosed(1013, "rate limiting is unavailable; try again in a moment")
        raise SocketClosed(RATE_LIMITED, f"too many connections; try again in {verdict.retry_after} s")
    return caller, session


async def open_call(socket: WebSocket, state: State, session_id: uuid.UUID) -> tuple[Caller, sessions.SessionRow, ClientStart]:
    """Authenticates the rep, finds their session and reads `start`.

    Raises:
        SocketClosed: with the close code and reason to send.
    """
    caller, session = await _caller_and_session(socket, state, session_id, "ws_connect")
    if session is None:
        raise SocketClosed(NOT_FOUND, "no such session")
    if session.user_id != caller.user_id:
        raise SocketClosed(REFUSED, "only the rep can join their call; coaches watch at /watch")
    try:
        message = await asyncio.wait_for(socket.receive(), START_TIMEOUT_S)
    except TimeoutError:
        raise SocketClosed(1008, f"send the start message within {START_TIMEOUT_S} s") from None
    if message["type"] == "websocket.disconnect":
        raise SocketClosed(1000, "")
    if message.get("bytes") is not None:
        raise SocketClosed(1003, "send the start message before any audio")
    try:
        start = client_decoder.decode(message.get("text") or "")
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SocketClosed(1008, f"the first message must be start: {exc}"[:120]) from None
    if not isinstance(start, ClientStart):
        raise SocketClosed(1008, "the first message must be start")
    if start.protocol != 1:
        raise SocketClosed(1008, f"protocol {start.protocol} is not supported; use 1")
    return caller, session, start


async def open_watch(socket: WebSocket, state: State, session_id: uuid.UUID) -> tuple[Caller, sessions.SessionRow, int]:
    """Authenticates a coach or admin of the session's org; reads `?after_seq`.

    Raises:
        SocketClosed: with the close code and reason to send.
    """
    caller, session = await _caller_and_session(socket, state, session_id, "watch")
    own_vapi_call = session is not None and session.transport == "vapi" and session.user_id == caller.user_id
    if not caller.is_staff and not own_vapi_call:  # a rep on a VAPI call follows it here (whispers, hints)
        raise SocketClosed(REFUSED, "only coaches and admins can watch calls")
    if session is None:
        raise SocketClosed(NOT_FOUND, "no such session")
    raw = socket.query_params.get("after_seq", "0")
    if not raw.isdigit():
        raise SocketClosed(1008, "after_seq must be a whole number")
    return caller, session, int(raw)


async def pump(socket: WebSocket, call: LiveCall, outbox: Outbox, start: ClientStart) -> None:
    """Feeds the rep's frames into the call until the socket closes or the call ends."""
    max_frame = start.audio.sample_rate * 2 * call.limits.max_frame_ms // 1000
    while not call.ending:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if (audio := message.get("bytes")) is not None:
            if len(audio) % 2:
                outbox.close(1007, "audio frames must hold whole 16-bit samples")
                return
            if len(audio) > max_frame:
                outbox.close(1007, f"audio frames are limited to {call.limits.max_frame_ms} ms ({max_frame} bytes)")
                return
            call.feed_audio(audio)
            continue
        try:
            command = client_decoder.decode(message.get("text") or "")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await call.publish(ErrorEvent(session_id=call.session_id, ts=0, code="bad_message", message=str(exc)[:200]))
            continue
        if isinstance(command, ClientText):
            call.rep_text(command.text)
        elif isinstance(command, ClientEnd):
            await call.end("rep_ended")
            return
        elif isinstance(command, ClientPing):
            outbox.send_text(encode(Pong(session_id=call.session_id, ts=int(time.time() * 1000))))
        elif isinstance(command, ClientStart):
            await call.publish(ErrorEvent(session_id=call.session_id, ts=0, code="already_started",
                                          message="the call has already started"))
