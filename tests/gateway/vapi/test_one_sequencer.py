"""Browser calls and VAPI calls number their events through the same session log: fed the same
transcript, with the same timings, they log the same finals and raise the same hints, each hint
right behind the final that raised it."""

import json
import uuid

import asyncpg
import pytest

from gateway.app import create_app, serve_app
from gateway.vapi.assistant import session_token
from tests.conftest import TEST_JWT_SECRET, make_settings
from tests.gateway.accounts_helpers import bearer, signup
from tests.gateway.live_client import LiveClient
from tests.gateway.stored import stored_events as stored
from tests.gateway.vapi_helpers import SECRET, deliver
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def base_url(module_database_url):
    with run_asgi(serve_app(create_app(make_settings(module_database_url, vapi_webhook_secret=SECRET,
                                                        site_url="http://sparring.test")))) as url:
        yield url


async def started_at_ms(database_url: str, session_id: str) -> float:
    conn = await asyncpg.connect(database_url)
    try:
        return float(await conn.fetchval("SELECT extract(epoch FROM started_at) * 1000 FROM roleplay_sessions"
                                         " WHERE id = $1", uuid.UUID(session_id)))
    finally:
        await conn.close()


def transcript_and_hints(events: list[dict]) -> list[tuple]:
    """The finals (speaker, text, timing) and hints (kind, quote) of a log, in order; each hint's
    seq is checked to follow its final's."""
    out: list[tuple] = []
    last_final_seq = None
    for event in events:
        if event["type"] == "transcript.final":
            out.append(("final", event["speaker"], event["text"], event["start_ms"], event["end_ms"]))
            last_final_seq = event["seq"]
        elif event["type"] == "hint":
            assert event["seq"] == last_final_seq + 1, "a hint is numbered right behind the final that raised it"
            out.append(("hint", event["kind"], event["severity"], event["evidence"]["quote"]))
    return out


def vapi_message(kind: str, session_id: str, call_id: str, ts: float, **fields) -> bytes:
    call = {"id": call_id, "assistantOverrides": {"variableValues": {
        "sparring_session_id": session_id, "sparring_session_token": session_token(TEST_JWT_SECRET, session_id)}}}
    return json.dumps({"message": {"type": kind, "timestamp": ts, "call": call, **fields}}).encode()


async def test_a_browser_call_and_a_vapi_call_fed_the_same_transcript_log_the_same_finals_and_hints(
        base_url, client, module_database_url):
    rep = await signup(client)
    browser = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"}, headers=bearer(rep))).json()
    call = await LiveClient(base_url, browser["id"], rep["access_token"]).open()
    await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona")  # the greeting
    await call.talk("What does pricing look like for a team like yours? How much is the budget?")
    await call.talk("Fair. What does the month end close look like for your finance team today?")
    await call.talk("Why is that?")
    await call.send({"type": "end"})
    await call.wait_closed()
    browser_log = await stored(module_database_url, browser["id"])
    expected = transcript_and_hints(browser_log)
    assert any(item[:2] == ("hint", "objection_price") for item in expected), "the price objection is hinted"

    # The same conversation, as VAPI reports a hosted call: speech starts and finals with their times.
    vapi = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo", "transport": "vapi"},
                              headers=bearer(rep))).json()
    sid, call_id = vapi["id"], f"call-{uuid.uuid4().hex[:10]}"
    started = vapi_message("status-update", sid, call_id, 0, status="in-progress")
    assert (await deliver(client, started)).status_code == 200
    zero = await started_at_ms(module_database_url, sid) + 0.5  # half a millisecond: no rounding down
    roles = {"rep": "user", "persona": "assistant"}
    for turn, (_, speaker, text, start_ms, end_ms) in enumerate(i for i in expected if i[0] == "final"):
        spoke = vapi_message("speech-update", sid, call_id, zero + start_ms, status="started", role=roles[speaker],
                             turn=turn)
        final = vapi_message("transcript", sid, call_id, zero + end_ms, role=roles[speaker], transcriptType="final",
                             transcript=text)
        assert (await deliver(client, spoke)).status_code == 200
        assert (await deliver(client, final)).status_code == 200
    ended = vapi_message("status-update", sid, call_id, zero + 60_000, status="ended",
                         endedReason="customer-ended-call")
    assert (await deliver(client, ended)).status_code == 200

    vapi_log = await stored(module_database_url, sid)
    assert transcript_and_hints(vapi_log) == expected
    for log in (browser_log, vapi_log):
        # The call's own events: score.ready follows them once the scoring job is done (CI caught
        # one done before the log was read).
        own = [e for e in log if e["type"] != "score.ready"]
        assert [e["seq"] for e in own] == list(range(1, len(own) + 1))
        assert own[0]["type"] == "session.started" and own[-1]["type"] == "session.ended"
