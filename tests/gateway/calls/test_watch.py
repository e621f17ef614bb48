"""Coaches watching a call on one instance (the in-process bus): history then live, whispers and
their audit trail, the live list, refusals, replays. Across instances: fanout/test_instances.py."""

import httpx

from tests.gateway.accounts_helpers import bearer, eventually, invite, signup
from tests.gateway.live_client import LiveClient


def watcher(base_url: str, session_id: str, token: str, after_seq: int | None = None) -> LiveClient:
    client = LiveClient(base_url, session_id, token)
    client.url = client.url.replace(f"/ws/sessions/{session_id}?", f"/ws/sessions/{session_id}/watch?")
    if after_seq is not None:
        client.url += f"&after_seq={after_seq}"
    return client


def numbered(events):
    return [e for e in events if "seq" in e]


async def team(client):
    admin = await signup(client)
    coach = await signup(client, invite_code=await invite(client, admin, "coach"), name="Coach Kim")
    rep = await signup(client, invite_code=await invite(client, admin, "trainee"))
    session = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"}, headers=bearer(rep))).json()
    return admin, coach, rep, session["id"]


async def test_coach_joining_mid_call_gets_history_then_live_with_no_gap(base_url, client):
    _, coach, rep, session_id = await team(client)
    call = await LiveClient(base_url, session_id, rep["access_token"]).open()
    await call.greeting()
    watch = await watcher(base_url, session_id, coach["access_token"]).open(start=False)
    history_end = numbered(call.events)[-1]["seq"]
    await watch.wait_for(lambda e: e.get("seq") == history_end)
    mark = len(call.events)
    await call.send({"type": "text", "text": "How does your month end close process work?"})
    said = await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona", after=mark)
    await watch.wait_for(lambda e: e.get("seq") == said["seq"])
    seen = numbered(watch.events)
    assert [e["seq"] for e in seen] == list(range(1, said["seq"] + 1)), "history then live, one frame each"
    assert seen == numbered(call.events)[: said["seq"]], "exactly what the rep's socket got"
    assert not watch.audio_frames, "watchers get events, not the persona's audio"
    await watch.close()
    await call.close()


async def test_whisper_reaches_the_rep_every_watcher_and_the_log(base_url, client):
    admin, coach, rep, session_id = await team(client)
    call = await LiveClient(base_url, session_id, rep["access_token"]).open()
    await call.wait_for(lambda e: e["type"] == "session.started")
    first = await watcher(base_url, session_id, coach["access_token"]).open(start=False)
    second = await watcher(base_url, session_id, admin["access_token"]).open(start=False)
    await first.wait_for(lambda e: e["type"] == "session.started")
    await second.wait_for(lambda e: e["type"] == "session.started")
    await first.send({"type": "whisper", "text": "Ask about the impact of the close."})
    whisper = await call.wait_for(lambda e: e["type"] == "whisper")
    assert whisper["from"] == {"id": coach["user"]["id"], "name": "Coach Kim"}
    assert whisper["text"] == "Ask about the impact of the close."
    assert (await second.wait_for(lambda e: e["type"] == "whisper"))["seq"] == whisper["seq"]
    assert (await first.wait_for(lambda e: e["type"] == "whisper"))["seq"] == whisper["seq"]
    await call.send({"type": "end"})
    await call.wait_closed()
    stored = (await client.get(f"/api/sessions/{session_id}/events", params={"limit": 1000},
                               headers=bearer(rep))).json()["items"]
    assert whisper in stored
    audit = await eventually(lambda: _whisper_audit(client, admin))
    assert audit["actor_id"] == coach["user"]["id"] and audit["actor_role"] == "coach"
    assert audit["row_id"] == f"{session_id}:{whisper['seq']}"
    assert audit["new_data"]["text"] == "Ask about the impact of the close."


async def _whisper_audit(client, admin):
    items = (await client.get("/api/audit", headers=bearer(admin))).json()["items"]
    return next((i for i in items if i["table_name"] == "session_events"), None)


async def test_the_live_list_shows_the_orgs_calls_to_coaches_and_admins(base_url, client):
    admin, coach, rep, session_id = await team(client)
    call = await LiveClient(base_url, session_id, rep["access_token"]).open()
    await call.wait_for(lambda e: e["type"] == "session.started")
    calls = (await client.get("/api/live", headers=bearer(coach))).json()["calls"]
    assert [(c["session_id"], c["rep"]["id"], c["persona"]["id"]) for c in calls] == [
        (session_id, rep["user"]["id"], "skeptical-cfo")]
    assert (await client.get("/api/live", headers=bearer(rep))).status_code == 403
    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        assert (await anonymous.get("/api/live")).status_code == 401
    await call.send({"type": "end"})
    await call.wait_closed()
    assert (await client.get("/api/live", headers=bearer(admin))).json()["calls"] == []


async def test_a_whisper_when_the_rep_is_gone_gets_a_notice_not_a_silent_drop(base_url, client):
    _, coach, _, session_id = await team(client)  # created, never started: nobody runs the call
    idle = await watcher(base_url, session_id, coach["access_token"]).open(start=False)
    await idle.send({"type": "whisper", "text": "Are you there?"})
    notice = await idle.wait_for(lambda e: e["type"] == "notice")
    assert notice["code"] == "not_delivered" and "seq" not in notice
    await idle.close()


async def test_too_long_or_too_deep_whisper_closes_the_watcher_with_a_reason(base_url, client):
    _, coach, rep, session_id = await team(client)
    call = await LiveClient(base_url, session_id, rep["access_token"]).open()
    await call.wait_for(lambda e: e["type"] == "session.started")
    watch = await watcher(base_url, session_id, coach["access_token"]).open(start=False)
    await watch.wait_for(lambda e: e["type"] == "session.started")
    await watch.send({"type": "whisper", "text": "x" * 501})
    code, reason = await watch.wait_closed()
    assert code == 1008 and "500" in reason
    deep = await watcher(base_url, session_id, coach["access_token"]).open(start=False)
    await deep.wait_for(lambda e: e["type"] == "session.started")
    await deep.send('{"type": "whisper", "text": "hi", "x": ' + "[" * 5000 + "]" * 5000 + "}")
    code, reason = await deep.wait_closed()
    assert code == 1008 and "nested too deeply" in reason
    await call.close()


async def test_trainees_outsiders_and_anonymous_are_refused(base_url, client):
    _, _, rep, session_id = await team(client)
    assert (await (await watcher(base_url, session_id, rep["access_token"]).open(start=False)).wait_closed())[0] == 4403
    outsider_admin = await signup(client)  # staff, but of another organization: the call does not exist for them
    outsider = watcher(base_url, session_id, outsider_admin["access_token"])
    assert (await (await outsider.open(start=False)).wait_closed())[0] == 4404
    anonymous = watcher(base_url, session_id, "")
    assert (await (await anonymous.open(start=False)).wait_closed())[0] == 4401


async def test_an_ended_call_is_watchable_as_a_replay_from_any_seq(base_url, client):
    _, coach, rep, session_id = await team(client)
    call = await LiveClient(base_url, session_id, rep["access_token"]).open()
    await call.greeting()
    await call.send({"type": "end"})
    await call.wait_closed()
    everything = numbered(call.events)
    replay = await watcher(base_url, session_id, coach["access_token"]).open(start=False)
    assert (await replay.wait_closed())[0] == 1000
    assert numbered(replay.events) == everything
    resumed = await watcher(base_url, session_id, coach["access_token"], after_seq=3).open(start=False)
    await resumed.wait_closed()
    assert numbered(resumed.events) == everything[3:]


async def test_a_buyer_objection_raises_a_hint_for_the_rep_and_the_coach(base_url, client):
    _, coach, rep, session_id = await team(client)
    call = await LiveClient(base_url, session_id, rep["access_token"]).open()
    await call.greeting()
    watch = await watcher(base_url, session_id, coach["access_token"]).open(start=False)
    await call.send({"type": "text", "text": "How much budget do you have for this?"})
    said = await call.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona"
                               and "cost" in e["text"])
    hint = await call.wait_for(lambda e: e["type"] == "hint" and e["kind"] == "objection_price")
    assert hint["seq"] == said["seq"] + 1, "right behind the buyer's words"
    assert hint["severity"] == "warning" and hint["text"]
    assert hint["evidence"] == {"segment_id": said["segment_id"], "quote": said["text"]}
    assert (await watch.wait_for(lambda e: e["type"] == "hint" and e["kind"] == "objection_price")) == hint
    await watch.close()
    await call.close()
