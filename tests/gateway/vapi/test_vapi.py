"""VAPI-hosted calls against the running app: signed deliveries in every auth mode, a scripted
call sequence (with re-deliveries and out-of-order messages) ending in one session with one report,
tool calls in every argument shape, assistant requests, the custom LLM, coach whispers, and the
organization's VAPI settings."""

import asyncio
import json
import time
import uuid

import asyncpg
import httpx
import openai
import pytest
from litestar import Litestar, Request, post

from gateway.app import create_app, serve_app
from gateway.vapi.assistant import session_token
from tests.conftest import TEST_JWT_SECRET, make_settings
from tests.gateway.accounts_helpers import bearer, eventually, invite, signup
from tests.gateway.calls.test_watch import numbered, watcher
from tests.gateway.stored import stored_events
from tests.gateway.vapi_helpers import FIXTURES, SECRET, deliver, payload, signed
from tests.servers import run_asgi

LLM_KEY = "vapi-llm-key-for-tests-abcdef"
SITE = "https://sparring.example"


class ControlServer:
    """VAPI's per-call controlUrl: records the control messages it gets."""

    def __init__(self) -> None:
        self.received: list[dict] = []

    def app(self) -> Litestar:
        server = self

        @post("/control", status_code=200)
        async def control(request: Request) -> dict:
            server.received.append(await request.json())
            return {}

        return Litestar([control], logging_config=None)


@pytest.fixture(scope="module")
def control():
    server = ControlServer()
    with run_asgi(server.app()) as url:
        server.url = url + "/control"
        yield server


@pytest.fixture(scope="module")
def base_url(module_database_url):
    settings = make_settings(module_database_url, vapi_webhook_secret=SECRET, vapi_llm_api_key=LLM_KEY,
                             site_url=SITE, vapi_coach_steering="true", vapi_control_hosts="vapi.ai,127.0.0.1",
                             # The tool tests search an org's own entries; the shared playbook would outrank them.
                             knowledge_starter="false")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


async def vapi_session(client, rep) -> dict:
    response = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo", "transport": "vapi"},
                                 headers=bearer(rep))
    assert response.status_code == 201, response.text
    return response.json()


# --- verification -----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["hmac", "secret", "bearer", "legacy"])
async def test_a_valid_delivery_in_each_auth_mode_is_accepted(client, mode):
    response = await deliver(client, payload("status-update-ringing"), mode=mode)
    assert response.status_code == 200 and response.json() == {}
    assert "X-RateLimit-Limit" not in response.headers, "a verified delivery is not counted against the address"


@pytest.mark.parametrize("mode", ["hmac", "secret", "bearer", "legacy"])
async def test_every_fixture_is_accepted_signed_in_each_mode(client, module_database_url, mode):
    rep = await signup(client)
    sid = (await vapi_session(client, rep))["id"]
    call_id = f"call-{uuid.uuid4().hex[:10]}"
    names = sorted(p.stem for p in FIXTURES.glob("*.json"))
    assert len(names) >= 20
    order = [n for n in names if n.startswith("status-update-in")] + [
        n for n in names if not n.startswith(("status-update-in", "status-update-ended", "end-of-call"))] + [
        "status-update-ended", "end-of-call-report", "end-of-call-report-legacy"]
    for name in order:
        response = await deliver(client, payload(name, call_id=call_id, session_id=sid), mode=mode)
        assert response.status_code == 200, (name, response.text)
    kinds = [e["type"] for e in await stored_events(module_database_url, sid) if e["type"] != "score.ready"]
    assert kinds[0] == "session.started" and kinds[-1] == "session.ended" and "error" in kinds, kinds
    hang = next(e for e in await stored_events(module_database_url, sid) if e["type"] == "error")
    assert hang["code"] == "vapi_hang"


async def test_tampered_wrong_stale_or_missing_credentials_are_401_saying_which_check_failed(client):
    body = payload("status-update-ringing")
    tampered = await client.post("/api/vapi/webhook", content=body.replace(b"ringing", b"queued"), headers=signed(body))
    assert tampered.status_code == 401 and "x-signature does not match" in tampered.json()["error"]["message"]
    wrong = await deliver(client, body, mode="secret", secret="not-the-secret-at-all")
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "x-vapi-secret is wrong"
    stale = await client.post("/api/vapi/webhook", content=body,
                              headers=signed(body, timestamp=str(int(time.time()) - 600)))
    assert stale.status_code == 401 and "300 s" in stale.json()["error"]["message"]
    in_ms = await client.post("/api/vapi/webhook", content=body,
                              headers=signed(body, timestamp=str(int(time.time() * 1000))))
    assert in_ms.status_code == 200, "millisecond timestamps are accepted too"
    missing = await client.post("/api/vapi/webhook", content=body, headers={"content-type": "application/json"})
    assert missing.status_code == 401 and "no VAPI credentials" in missing.json()["error"]["message"]
    for response in (tampered, wrong, stale, missing):
        assert SECRET not in response.text
        assert response.json()["error"]["code"] == "webhook_unverified"
        assert response.headers["X-RateLimit-Limit"] == "6000", "failures are limited per source address"


async def test_an_address_failing_verification_is_refused_past_the_limit_and_vapis_own_deliveries_never_are(
        module_database_url):
    settings = make_settings(module_database_url, vapi_webhook_secret=SECRET, rate_limit_webhook="3/minute",
                             knowledge_starter="false")
    with run_asgi(serve_app(create_app(settings))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            body = payload("status-update-ringing")
            failed = [(await deliver(http, body, mode="secret", secret="a-guess-of-the-secret")).status_code
                      for _ in range(5)]
            assert failed == [401, 401, 401, 429, 429]
            refused = await deliver(http, body, mode="secret", secret="a-guess-of-the-secret")
            assert refused.json()["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1
            verified = [(await deliver(http, payload("status-update-ringing"))).status_code for _ in range(10)]
            assert verified == [200] * 10, "signed deliveries from the same address still go through"


async def test_malformed_is_400_and_an_unknown_type_is_200(client):
    for body in (b"{not json", b'{"nope": 1}', b'{"message": {"no_type": true}}',
                 b'{"message": {"type": "transcript"}}'):
        response = await deliver(client, body)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "not_a_vapi_message"
    unknown = await deliver(client, payload("unknown-type"))
    assert unknown.status_code == 200 and unknown.json() == {}
    odd_reason = payload("status-update-ended").replace(b"customer-ended-call", b"pipeline-error-some-new-reason")
    assert (await deliver(client, odd_reason)).status_code == 200


async def test_a_clock_far_off_does_not_break_the_transcript(client, module_database_url):
    rep = await signup(client)
    sid = (await vapi_session(client, rep))["id"]
    for ts in (10**15, 0):
        body = payload("transcript-final-user", call_id=f"call-{ts}", session_id=sid, ts=ts)
        assert (await deliver(client, body)).status_code == 200
    finals = [e for e in await stored_events(module_database_url, sid) if e["type"] == "transcript.final"]
    assert [0 <= f["start_ms"] <= f["end_ms"] <= 86_400_000 for f in finals] == [True, True]


async def test_an_org_endpoint_uses_the_orgs_own_mode_and_secret(client):
    admin = await signup(client)
    org_id = admin["org"]["id"]
    body = payload("status-update-ringing")
    unset = await deliver(client, body, path=f"/api/vapi/webhook/{org_id}")
    assert unset.status_code == 401 and "no VAPI webhook secret" in unset.json()["error"]["message"]
    own_secret = "org-own-secret-0123456789abcdef"
    saved = await client.put("/api/orgs/vapi", json={"auth_mode": "hmac", "webhook_secret": own_secret},
                             headers=bearer(admin))
    assert saved.status_code == 200 and saved.json()["secret_set"] is True
    assert own_secret not in saved.text, "secrets are write-only"
    assert (await deliver(client, body, path=f"/api/vapi/webhook/{org_id}", secret=own_secret)).status_code == 200
    strict = await deliver(client, body, path=f"/api/vapi/webhook/{org_id}", mode="secret", secret=own_secret)
    assert strict.status_code == 401 and "missing x-signature" in strict.json()["error"]["message"]
    global_secret = await deliver(client, body, path=f"/api/vapi/webhook/{org_id}")
    assert global_secret.status_code == 401, "the platform secret does not open an org's endpoint"


# --- a call --------------------------------------------------------------------------------

async def test_a_scripted_vapi_call_ends_in_one_session_with_one_report_and_a_coach_watched_it(
        base_url, client, module_database_url, db_pool_for_kb):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"), name="Coach Kim")
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    session = await vapi_session(client, rep)
    sid = session["id"]
    assert session["vapi"]["assistantOverrides"]["variableValues"]["sparring_session_id"] == sid
    assistant = session["vapi"]["assistant"]
    assert assistant["model"]["provider"] == "custom-llm" and assistant["model"]["url"] == f"{SITE}/api/vapi/llm"
    assert assistant["voice"]["provider"] == "11labs" and assistant["voice"]["voiceId"]
    assert {"transcript", "status-update", "end-of-call-report", "tool-calls"} <= set(assistant["serverMessages"])
    handed = json.dumps(session["vapi"])
    assert "eight days" not in handed and "payback period" not in handed, "the browser never sees hidden pains"
    assert "messages" not in assistant["model"], "the persona's prompt stays on the server"
    await db_pool_for_kb(admin["org"]["id"], "Pricing", "Annual plans get a 15 percent pricing discount.")

    watch = await watcher(base_url, sid, coach["access_token"]).open(start=False)
    rep_page = await watcher(base_url, sid, rep["access_token"]).open(start=False)
    call_id = f"call-{uuid.uuid4().hex[:10]}"
    t0 = int(time.time() * 1000)

    async def send(name, offset_ms, **kw):
        response = await deliver(client, payload(name, call_id=call_id, session_id=sid, ts=t0 + offset_ms, **kw))
        assert response.status_code == 200, (name, response.text)
        return response.json()

    await send("status-update-ringing", 0)
    await send("status-update-in-progress", 100, control_url="https://control.invalid/x")
    await send("transcript-partial", 1500)
    await send("speech-update-started", 1000)
    await send("transcript-final-user", 4000)
    await send("transcript-final-user", 4000)  # re-delivered: kept once
    await send("transcript-final-assistant", 7000)
    tool = await send("tool-calls", 7500)
    assert tool["results"][0]["toolCallId"] == "call_fn_args"
    assert "15 percent" in tool["results"][0]["result"]
    await send("user-interrupted", 8000)
    await send("conversation-update", 8100)
    final = await watch.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona")
    assert final["text"] == "It takes us eight days and the team hates it."
    await send("status-update-ended", 20000)
    await send("end-of-call-report", 25000)
    await send("end-of-call-report", 26000)  # twice, with fresh presigned URLs
    await send("status-update-ended", 27000)
    await watch.wait_closed()

    events = await stored_events(module_database_url, sid)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = [e["type"] for e in events if e["type"] != "score.ready"]  # the scorecard comes after the call
    assert kinds[0] == "session.started" and kinds[-1] == "session.ended" and kinds.count("session.ended") == 1
    finals = [(e["speaker"], e["text"]) for e in events if e["type"] == "transcript.final"]
    assert finals == [("rep", "How does your month end close work today?"),
                      ("persona", "It takes us eight days and the team hates it.")]
    assert any(e["type"] == "persona.audio.end" and e["interrupted"] for e in events)
    call_events = [e for e in events if e["type"] != "score.ready"]  # appended after the watch closed
    assert numbered(watch.events) == call_events, "the coach saw every event live, in order"
    rep_final = await rep_page.wait_for(lambda e: e["type"] == "session.ended")
    assert rep_final["reason"] == "customer-ended-call"

    detail = (await client.get(f"/api/sessions/{sid}", headers=bearer(rep))).json()
    assert detail["status"] == "ended" and [s["text"] for s in detail["transcript"]] == [t for _, t in finals]
    conn = await asyncpg.connect(module_database_url)
    try:
        meta = json.loads(await conn.fetchval("SELECT metadata::text FROM roleplay_sessions WHERE id = $1",
                                              uuid.UUID(sid)))
        jobs = await conn.fetchval("SELECT count(*) FROM jobs WHERE kind = 'score_session' AND dedupe_key = $1", sid)
        kept = await conn.fetchrow("SELECT count(*) AS messages, sum(attempts) AS again FROM webhook_inbox"
                                   " WHERE payload -> 'message' -> 'call' ->> 'id' = $1", call_id)
    finally:
        await conn.close()
    report = meta["vapi_report"]
    assert report["duration_s"] == 185.5 and report["cost"] == 0.4123
    assert report["performance_metrics"]["turnLatencyAverage"] == 812
    assert report["analysis"]["summary"] == "The rep asked about the close process."
    assert meta["vapi_monitor"]["controlUrl"] == "https://control.invalid/x"
    assert jobs == 1, "scoring queued once"

    async def scored():
        response = await client.get(f"/api/sessions/{sid}/score", headers=bearer(rep))
        return response.json() if response.status_code == 200 else None
    card = await eventually(scored, timeout=30)
    assert card and [d["key"] for d in card["dimensions"]][0] == "opening"
    history = (await client.get(f"/api/sessions/{sid}/scores", headers=bearer(rep))).json()["items"]
    assert [s["id"] for s in history] == [card["id"]], "exactly one scorecard for the call"
    assert (kept["messages"], kept["again"]) == (11, 3), "every delivery kept; re-deliveries counted, not applied"
    await rep_page.close()


async def test_a_call_naming_another_session_without_its_token_does_not_reach_it(client, module_database_url):
    victim = await signup(client)
    sid = (await vapi_session(client, victim))["id"]
    forged = payload("transcript-final-user", session_id=sid).replace(
        session_token(TEST_JWT_SECRET, sid).encode(), b"0" * 32)
    assert (await deliver(client, forged)).status_code == 200, "kept, answered, not applied"
    assert await stored_events(module_database_url, sid) == []
    tool = payload("tool-calls", session_id=sid).replace(session_token(TEST_JWT_SECRET, sid).encode(), b"")
    result = (await deliver(client, tool)).json()["results"][0]
    assert "error" in result, "no org's knowledge base is searched for an unproven session"


async def test_a_report_before_ended_ends_the_call_with_the_reports_transcript(client, module_database_url):
    rep = await signup(client)
    sid = (await vapi_session(client, rep))["id"]
    call_id = f"call-{uuid.uuid4().hex[:10]}"
    assert (await deliver(client, payload("end-of-call-report", call_id=call_id, session_id=sid))).status_code == 200
    assert (await deliver(client, payload("status-update-ended", call_id=call_id, session_id=sid))).status_code == 200
    events = [e for e in await stored_events(module_database_url, sid) if e["type"] != "score.ready"]
    assert [e["type"] for e in events] == ["session.started", "transcript.final", "transcript.final",
                                           "transcript.final", "session.ended"]
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert [(f["speaker"], f["start_ms"], f["end_ms"]) for f in finals] == [
        ("persona", 500, 2500), ("rep", 3000, 6000), ("persona", 7000, 9000)]
    assert events[-1]["duration_ms"] == 185500
    # By call id alone (a later delivery without the session id) it lands in the same session.
    legacy = payload("end-of-call-report-legacy", call_id=call_id)
    assert (await deliver(client, legacy)).status_code == 200
    assert len([e for e in await stored_events(module_database_url, sid) if e["type"] != "score.ready"]) == 5


async def test_a_legacy_report_without_artifact_messages_gives_the_transcript_from_its_text(
        client, module_database_url):
    rep = await signup(client)
    sid = (await vapi_session(client, rep))["id"]
    body = payload("end-of-call-report-legacy", session_id=sid)
    assert (await deliver(client, body)).status_code == 200
    events = await stored_events(module_database_url, sid)
    assert [(e["speaker"], e["text"]) for e in events if e["type"] == "transcript.final"] == [
        ("persona", "Dana Whitfield speaking."), ("rep", "Hi Dana, how do you handle invoices today?"),
        ("persona", "Mostly by hand, sadly.")]
    call_events = [e for e in events if e["type"] != "score.ready"]  # the scorecard may follow the call already
    assert call_events[-1]["type"] == "session.ended" and call_events[-1]["duration_ms"] == 95500


async def watched_vapi_call(base_url, client):
    """A rep's VAPI session (its id), a coach's watch socket on it, and a fresh VAPI call id."""
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"))
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    sid = (await vapi_session(client, rep))["id"]
    watch = await watcher(base_url, sid, coach["access_token"]).open(start=False)
    return sid, watch, f"call-{uuid.uuid4().hex[:10]}"


async def test_a_burst_of_webhooks_for_one_call_is_stored_once_each_numbered_in_order_and_watched_live(
        base_url, client, module_database_url):
    sid, watch, call_id = await watched_vapi_call(base_url, client)
    t0 = int(time.time() * 1000)
    assert (await deliver(client, payload("status-update-in-progress", call_id=call_id, session_id=sid,
                                          ts=t0))).status_code == 200
    lines = [payload("transcript-final-user", call_id=call_id, session_id=sid, ts=t0 + 1000 + i).replace(
        b"work today?", f"work today? ({i})".encode()) for i in range(40)]
    burst = [*lines, lines[7], lines[23]]  # two of them delivered twice, at the same moment
    responses = await asyncio.gather(*(deliver(client, body) for body in burst))
    assert [r.status_code for r in responses] == [200] * len(burst)

    stored = await stored_events(module_database_url, sid)
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
    finals = sorted(e["text"] for e in stored if e["type"] == "transcript.final")
    assert finals == sorted(f"How does your month end close work today? ({i})" for i in range(40)), "each once"
    await watch.wait_for(lambda e: e.get("seq") == stored[-1]["seq"])
    assert numbered(watch.events) == stored, "the coach saw every event once, in order"
    for name in ("status-update-ended", "end-of-call-report"):
        assert (await deliver(client, payload(name, call_id=call_id, session_id=sid))).status_code == 200
    after = [e for e in await stored_events(module_database_url, sid) if e["type"] != "score.ready"]
    assert [e["type"] for e in after[len(stored):]] == ["session.ended"], "the report adds no second transcript"
    conn = await asyncpg.connect(module_database_url)
    try:
        kept = await conn.fetch("SELECT attempts FROM webhook_inbox WHERE payload -> 'message' -> 'call' ->> 'id' = $1"
                                " AND message_type = 'transcript'", call_id)
    finally:
        await conn.close()
    assert sorted(r["attempts"] for r in kept) == [0] * 38 + [1, 1], "every delivery kept; the repeats counted"
    await watch.close()


async def test_bursts_of_several_calls_of_one_org_at_once_each_land_once_in_their_own_session_numbered(
        client, module_database_url):
    rep = await signup(client)
    sids = [(await vapi_session(client, rep))["id"] for _ in range(6)]
    calls = {sid: f"call-{uuid.uuid4().hex[:10]}" for sid in sids}
    gone = sids[-1]
    for sid in sids:
        assert (await deliver(client, payload("status-update-in-progress", call_id=calls[sid],
                                              session_id=sid))).status_code == 200
    assert (await client.delete(f"/api/sessions/{gone}", headers=bearer(rep))).status_code == 204
    t0 = int(time.time() * 1000)
    bodies = [(sid, payload("transcript-final-user", call_id=calls[sid], session_id=sid, ts=t0 + i).replace(
        b"work today?", f"work today? ({sid[:8]} {i})".encode())) for i in range(8) for sid in sids]
    responses = await asyncio.gather(*(deliver(client, body) for _, body in bodies))
    assert [r.status_code for r in responses] == [200] * len(bodies), "the deleted call's are kept, not applied"
    for sid in sids[:-1]:
        stored = await stored_events(module_database_url, sid)
        assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
        finals = sorted(e["text"] for e in stored if e["type"] == "transcript.final")
        assert finals == [f"How does your month end close work today? ({sid[:8]} {i})" for i in range(8)], \
            "each call's finals once, and only its own"
    assert [e["type"] for e in await stored_events(module_database_url, gone)] == ["session.started"]


async def test_a_deleted_vapi_session_takes_no_more_events_from_its_call(client, module_database_url):
    rep = await signup(client)
    sid = (await vapi_session(client, rep))["id"]
    call_id = f"call-{uuid.uuid4().hex[:10]}"
    for name in ("status-update-in-progress", "transcript-final-user"):
        assert (await deliver(client, payload(name, call_id=call_id, session_id=sid))).status_code == 200
    before = await stored_events(module_database_url, sid)
    assert [e["type"] for e in before] == ["session.started", "transcript.final"]
    assert (await client.delete(f"/api/sessions/{sid}", headers=bearer(rep))).status_code == 204
    later = payload("transcript-final-assistant", call_id=call_id, session_id=sid)
    assert (await deliver(client, later)).status_code == 200, "kept and answered, not applied"
    assert await stored_events(module_database_url, sid) == before


async def test_hints_run_on_vapi_transcripts(base_url, client):
    sid, watch, call_id = await watched_vapi_call(base_url, client)
    for name in ("status-update-in-progress", "transcript-final-user", "transcript-final-objection"):
        assert (await deliver(client, payload(name, call_id=call_id, session_id=sid))).status_code == 200
    hint = await watch.wait_for(lambda e: e["type"] == "hint")
    objection = next(e for e in watch.events if e["type"] == "transcript.final" and e["speaker"] == "persona")
    assert hint["kind"] == "objection_price" and hint["seq"] == objection["seq"] + 1
    assert hint["evidence"]["segment_id"] == objection["segment_id"]
    await watch.close()


# --- tools, assistant requests, the custom LLM ---------------------------------------------------

async def test_tool_calls_answer_every_argument_shape_in_order_with_single_line_strings(client, db_pool_for_kb):
    admin = await signup(client)
    org = admin["org"]["id"]
    rep_session = (await vapi_session(client, admin))["id"]
    await db_pool_for_kb(org, "Pricing", "Annual plans get a 15 percent pricing discount.\nAsk finance.")
    await db_pool_for_kb(org, "Onboarding", "Onboarding time is two weeks with a named engineer.")
    await db_pool_for_kb(org, "Security", "We pass a security review with SOC 2 Type II.")
    answers = {}
    for name in ("tool-calls", "tool-calls-string-arguments", "tool-calls-parameters", "tool-calls-top-arguments"):
        body = payload(name, session_id=rep_session)
        for path in ("/api/vapi/webhook", "/api/vapi/tools/knowledge-base"):
            response = await deliver(client, body, path=path)
            assert response.status_code == 200
            answers[(name, path)] = response.json()
    assert answers[("tool-calls", "/api/vapi/webhook")] == answers[("tool-calls", "/api/vapi/tools/knowledge-base")]
    results = answers[("tool-calls-string-arguments", "/api/vapi/webhook")]["results"]
    assert [r["toolCallId"] for r in results] == ["call_str", "call_unknown"]
    assert results[0]["name"] == "knowledge_base" and "15 percent" in results[0]["result"]
    assert "\n" not in results[0]["result"]
    assert results[1] == {"toolCallId": "call_unknown", "name": "book_meeting",
                          "error": "unknown function 'book_meeting'; this server offers knowledge_base"}
    params = answers[("tool-calls-parameters", "/api/vapi/webhook")]["results"]
    assert params[0]["toolCallId"] == "call_params" and "two weeks" in params[0]["result"]
    top = answers[("tool-calls-top-arguments", "/api/vapi/webhook")]["results"]
    assert "SOC 2" in top[0]["result"] and top[1]["error"].startswith("knowledge_base needs")
    legacy = await deliver(client, payload("function-call", session_id=rep_session))
    assert "15 percent" in legacy.json()["result"]
    status = await deliver(client, payload("status-update-ringing"), path="/api/vapi/tools/knowledge-base")
    assert status.status_code == 400


async def test_assistant_request_answers_the_persona_mapped_to_the_phone_number(client):
    admin = await signup(client)
    org = admin["org"]["id"]
    number = f"+1555{uuid.uuid4().int % 10**7:07d}"
    own_secret = "assistant-org-secret-0123456789"
    saved = await client.put("/api/orgs/vapi", json={"webhook_secret": own_secret,
                                                    "default_persona_id": "skeptical-cfo",
                                                    "phone_numbers": {number: "skeptical-cfo"}}, headers=bearer(admin))
    assert saved.status_code == 200 and saved.json()["phone_numbers"] == {number: "skeptical-cfo"}
    for path, secret in ((f"/api/vapi/webhook/{org}", own_secret), ("/api/vapi/webhook", SECRET)):
        started = time.perf_counter()
        response = await deliver(client, payload("assistant-request", phone=number), path=path, secret=secret)
        assert response.status_code == 200
        assistant = response.json()["assistant"]
        assert assistant["name"] == "Dana Whitfield" and assistant["firstMessage"]
        assert assistant["model"]["provider"] == "custom-llm"
        assert assistant["model"]["tools"][0]["function"]["name"] == "knowledge_base"
        assert assistant["model"]["tools"][0]["server"]["url"] == f"{SITE}/api/vapi/tools/knowledge-base"
        session_id = assistant["metadata"]["sparring_session_id"]
        session = (await client.get(f"/api/sessions/{session_id}", headers=bearer(admin))).json()
        assert session["transport"] == "vapi" and session["persona_id"] == "skeptical-cfo"
        print(f"assistant-request answered in {(time.perf_counter() - started) * 1000:.0f} ms")


async def test_the_custom_llm_streams_sse_the_openai_sdk_consumes(base_url, client):
    rep = await signup(client)
    sid = (await vapi_session(client, rep))["id"]
    llm = openai.AsyncOpenAI(base_url=f"{base_url}/api/vapi/llm", api_key=LLM_KEY, max_retries=0)
    stream = await llm.chat.completions.create(
        model="skeptical-cfo", stream=True,
        messages=[{"role": "system", "content": "ignored: the persona is Sparring's"},
                  {"role": "assistant", "content": "Dana Whitfield. I have a few minutes."},
                  {"role": "user", "content": "How does your month end close work today?"}],
        extra_body={"call": {"id": "call-llm", "assistantOverrides": {"variableValues": {
            "sparring_session_id": sid, "sparring_session_token": session_token(TEST_JWT_SECRET, sid)}}}})
    deltas = [chunk.choices[0].delta.content async for chunk in stream
              if chunk.choices and chunk.choices[0].delta.content]
    assert len(deltas) >= 1 and "".join(deltas).strip()
    prefixed = openai.AsyncOpenAI(base_url=f"{base_url}/api/vapi/llm/some/prefix", api_key=LLM_KEY, max_retries=0)
    whole = await prefixed.chat.completions.create(model="skeptical-cfo",
                                                   messages=[{"role": "user", "content": "Hello?"}])
    assert whole.choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        await openai.AsyncOpenAI(base_url=f"{base_url}/api/vapi/llm", api_key="wrong", max_retries=0
                                 ).chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    raw = await client.post("/api/vapi/llm/chat/completions", headers={"authorization": f"Bearer {LLM_KEY}"},
                            json={"model": "skeptical-cfo", "stream": True,
                                  "messages": [{"role": "user", "content": "Hello?"}]})
    lines = [line for line in raw.text.split("\n\n") if line]
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"


# --- coaches ----------------------------------------------------------------------------------

async def test_a_coach_whisper_on_a_vapi_call_reaches_the_reps_page_and_steers_the_ai_buyer(base_url, client, control):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"), name="Coach Kim")
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    sid = (await vapi_session(client, rep))["id"]
    call_id = f"call-{uuid.uuid4().hex[:10]}"
    body = payload("status-update-in-progress", call_id=call_id, session_id=sid, control_url=control.url)
    assert (await deliver(client, body)).status_code == 200
    rep_page = await watcher(base_url, sid, rep["access_token"]).open(start=False)
    watch = await watcher(base_url, sid, coach["access_token"]).open(start=False)
    await watch.wait_for(lambda e: e["type"] == "session.started")
    await watch.send({"type": "whisper", "text": "Ask what the eight days cost them."})
    whisper = await rep_page.wait_for(lambda e: e["type"] == "whisper")
    assert whisper["from"]["name"] == "Coach Kim" and whisper["text"] == "Ask what the eight days cost them."
    steered = await eventually(lambda: _first(control.received))
    assert steered["type"] == "add-message" and steered["triggerResponseEnabled"] is False
    assert steered["message"]["role"] == "system" and "eight days" in steered["message"]["content"]
    # A controlUrl that is not VAPI's (a forged webhook) is never called.
    elsewhere = (await vapi_session(client, rep))["id"]
    forged = payload("status-update-in-progress", call_id=f"call-{uuid.uuid4().hex[:10]}", session_id=elsewhere,
                     control_url="http://10.0.0.1/internal")
    assert (await deliver(client, forged)).status_code == 200
    other_watch = await watcher(base_url, elsewhere, coach["access_token"]).open(start=False)
    await other_watch.wait_for(lambda e: e["type"] == "session.started")
    await other_watch.send({"type": "whisper", "text": "Careful."})
    await other_watch.wait_for(lambda e: e["type"] == "whisper")
    await asyncio.sleep(0.3)
    assert len(control.received) == 1
    await other_watch.close()
    await rep_page.send({"type": "whisper", "text": "reps cannot whisper"})
    assert (await rep_page.wait_closed())[0] == 1008
    live = (await client.get("/api/live", headers=bearer(coach))).json()["calls"]
    assert {(c["session_id"], c["transport"]) for c in live} == {(sid, "vapi"), (elsewhere, "vapi")}
    await watch.close()


async def _first(items):
    return items[0] if items else None


async def test_org_vapi_settings_are_for_admins_and_validated(client):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"))
    assert (await client.get("/api/orgs/vapi", headers=bearer(coach))).status_code == 403
    shown = (await client.get("/api/orgs/vapi", headers=bearer(admin))).json()
    assert shown["secret_set"] is False and shown["webhook_url"].endswith(f"/api/vapi/webhook/{admin['org']['id']}")
    bad = await client.put("/api/orgs/vapi", json={"phone_numbers": {"+15550001234": "nobody"}}, headers=bearer(admin))
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "phone_numbers.+15550001234"
    short = await client.put("/api/orgs/vapi", json={"webhook_secret": "short"}, headers=bearer(admin))
    assert short.status_code == 400


@pytest.fixture
async def db_pool_for_kb(module_database_url):
    conn = await asyncpg.connect(module_database_url)

    async def add(org_id, title, content):
        await conn.execute("INSERT INTO knowledge_base (org_id, source, title, content) VALUES ($1, 'test', $2, $3)",
                           uuid.UUID(org_id), title, content)

    yield add
    await conn.close()
