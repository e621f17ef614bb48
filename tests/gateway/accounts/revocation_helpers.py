"""What a revoked caller's socket does, asserted as the client sees it: closed with its code and a
reason, and what it sent after the change was answered never took effect."""

import asyncio

from tests.gateway.calls.test_watch import watcher
from tests.gateway.live_client import LiveClient


async def rep_and_coach(call_url: str, watch_url: str, session_id: str, rep: dict, coach: dict
                        ) -> tuple[LiveClient, LiveClient]:
    """The rep's call and the coach watching it, both past session.started."""
    call = await LiveClient(call_url, session_id, rep["access_token"]).open()
    await call.wait_for(lambda e: e["type"] == "session.started")
    watch = await watcher(watch_url, session_id, coach["access_token"]).open(start=False)
    await watch.wait_for(lambda e: e["type"] == "session.started")
    return call, watch


async def _send_after_the_change(socket: LiveClient, message: dict) -> None:
    try:
        await socket.send(message)
    except Exception:
        pass  # closed already: nothing was sent


async def whisper_has_no_effect(watch: LiveClient, call: LiveClient, *, timeout: float = 5) -> None:
    """The revoked coach whispers; their socket closes 4403 and the rep never gets it."""
    await _send_after_the_change(watch, {"type": "whisper", "text": "sent after the change was answered"})
    code, reason = await watch.wait_closed(timeout=timeout)
    assert code == 4403 and reason
    await asyncio.sleep(0.5)
    assert not [e for e in call.events if e["type"] == "whisper"], "a revoked coach's whisper took effect"


async def typed_turn_has_no_effect(call: LiveClient, *, timeout: float = 5) -> None:
    """The revoked rep types a turn; their socket closes 4401 and the turn is never answered."""
    await _send_after_the_change(call, {"type": "text", "text": "a typed turn after the change was answered"})
    code, reason = await call.wait_closed(timeout=timeout)
    assert code == 4401 and reason
    assert not [e for e in call.events if e["type"] == "transcript.final" and e["speaker"] == "rep"]
