"""The live socket's steps: who is calling and for which session, the `start` message, the frames.

Refusals are raised as errors (`AuthRefused`, `RateLimited`, `CallRefused`); the socket handlers
close with `gateway.errors.close_socket`, which picks the close code.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import msgspec
from litestar import WebSocket
from litestar.datastructures import State

from coaching.events import ClientEnd, ClientPing, ClientStart, ClientText, Notice, Pong, client_decoder, encode
from gateway.auth.caller import Caller, authenticate
from gateway.auth.revocation import revoke_call, still_allowed
from gateway.calls.live_call import LiveCall
from gateway.calls.outbox import Outbox
from gateway.errors import INVALID_DATA, NORMAL, NOT_FOUND, POLICY, REFUSED, UNSUPPORTED, CallRefused
from gateway.ratelimit import RateLimiter
from gateway.transports.frames import receive_frame
from storage import sessions

__all__ = ["open_call", "open_watch", "pump"]

START_TIMEOUT_S = 15
BAD_MESSAGE_BUDGET = 20  # unreadable messages one live socket may send before it is closed
Socket = WebSocket[Any, Any, Any]


async def _caller_and_session(socket: Socket, state: State, session_id: uuid.UUID,
                              limit: str) -> tuple[Caller, sessions.SessionRow | None]:
    """Who is on the socket, and the session as their tenant sees it (None: absent or not theirs to see).

    Raises:
        AuthRefused: the caller could not be authenticated (4401/4403).
        RateLimited: the caller is over the rate limit `limit` (4429; `RateLimitUnavailable`, 1013,
            when limits fail closed and their store is down).
    """
    async with state.pool.acquire() as conn, conn.transaction():
        caller = await authenticate(socket, conn)
        session = await sessions.get_session(conn, session_id)
    limiter: RateLimiter = state.limiter
    verdict = await limiter.check(limit, str(caller.user_id))
    if not verdict.allowed:
        raise verdict.refusal("connections")
    return caller, session


async def open_call(socket: Socket, state: State,
                    session_id: uuid.UUID) -> tuple[Caller, sessions.SessionRow, ClientStart]:
    """Authenticates the rep, finds their session and reads `start`.

    Raises:
        AuthRefused, RateLimited: see `_caller_and_session`.
        CallRefused: with the close code and reason to send.
    """
    caller, session = await _caller_and_session(socket, state, session_id, "ws_connect")
    if session is None:
        raise CallRefused(NOT_FOUND, "no such session")
    if session.user_id != caller.user_id:
        raise CallRefused(REFUSED, "only the rep can join their call; coaches watch at /watch")
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            frame = await receive_frame(socket)
    except TimeoutError:
        raise CallRefused(POLICY, f"send the start message within {START_TIMEOUT_S} s") from None
    if frame is None:
        raise CallRefused(NORMAL, "")
    if frame.get("bytes") is not None:
        raise CallRefused(UNSUPPORTED, "send the start message before any audio")
    try:
        start = client_decoder.decode(frame.get("text") or "")
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CallRefused(POLICY, f"the first message must be start: {exc}"[:120]) from None
    if not isinstance(start, ClientStart):
        raise CallRefused(POLICY, "the first message must be start")
    if start.protocol != 1:
        raise CallRefused(POLICY, f"protocol {start.protocol} is not supported; use 1")
    return caller, session, start


async def open_watch(socket: Socket, state: State, session_id: uuid.UUID) -> tuple[Caller, sessions.SessionRow, int]:
    """Authenticates a coach or admin of the session's org; reads `?after_seq`.

    Raises:
        AuthRefused, RateLimited: see `_caller_and_session`.
        CallRefused: with the close code and reason to send.
    """
    caller, session = await _caller_and_session(socket, state, session_id, "watch")
    own_vapi_call = session is not None and session.transport == "vapi" and session.user_id == caller.user_id
    if not caller.is_staff and not own_vapi_call:  # a rep on a VAPI call follows it here (whispers, hints)
        raise CallRefused(REFUSED, "only coaches and admins can watch calls")
    if session is None:
        raise CallRefused(NOT_FOUND, "no such session")
    raw = socket.query_params.get("after_seq", "0")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # "²" is a digit to isdigit; bigint caps seqs
        raise CallRefused(POLICY, "after_seq must be a whole number from 0 to 999999999999999999")
    return caller, session, int(raw)


async def pump(socket: Socket, call: LiveCall, outbox: Outbox, start: ClientStart, *, caller: Caller,
               pool: asyncpg.Pool) -> None:
    """Feeds the rep's frames into the call until the socket closes or the call ends.

    A message the socket cannot read is answered with a `notice` to this client only (never
    stored or fanned out); past `BAD_MESSAGE_BUDGET` of them the socket is closed (1008). A typed
    turn is taken only while the rep's access still holds (checked in the database)."""
    max_frame = start.audio.sample_rate * 2 * call.limits.max_frame_ms // 1000
    bad = 0
    while not call.ending:
        frame = await receive_frame(socket)
        if frame is None:
            return
        if (audio := frame.get("bytes")) is not None:
            if len(audio) % 2:
                outbox.close(INVALID_DATA, "audio frames must hold whole 16-bit samples")
                return
            if len(audio) > max_frame:
                outbox.close(INVALID_DATA,
                             f"audio frames are limited to {call.limits.max_frame_ms} ms ({max_frame} bytes)")
                return
            call.feed_audio(audio)
            continue
        try:
            command = client_decoder.decode(frame.get("text") or "")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            bad += 1
            if bad > BAD_MESSAGE_BUDGET:
                outbox.close(POLICY, f"more than {BAD_MESSAGE_BUDGET} messages this socket could not read")
                return
            _notice(outbox, call, "bad_message", str(exc)[:200])
            continue
        match command:
            case ClientText():
                if not await _allowed(pool, caller):
                    if (ending := revoke_call(call)) is not None:
                        await ending
                    return
                call.rep_text(command.text)
            case ClientEnd():
                await call.end("rep_ended")
                return
            case ClientPing():
                outbox.send_text(encode(Pong(session_id=call.session_id, ts=int(time.time() * 1000))))
            case ClientStart():
                _notice(outbox, call, "already_started", "the call has already started")
            case _:  # a client message type added to the protocol without a case here
                outbox.close(POLICY, f"the live socket does not accept {type(command).__name__} messages")
                return


async def _allowed(pool: asyncpg.Pool, caller: Caller) -> bool:
    """The rep's access still holds. With the database unreachable the turn goes ahead: the call
    goes on during an outage, and the revocation sweep closes a revoked socket once it is back."""
    try:
        return await still_allowed(pool, caller, staff=False)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return True


def _notice(outbox: Outbox, call: LiveCall, code: str, message: str) -> None:
    outbox.send_text(encode(Notice(session_id=call.session_id, ts=int(time.time() * 1000), code=code,
                                   message=message)))
