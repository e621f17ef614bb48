"""Revocation across instances: a coach watching on B is closed within a few seconds of being
demoted via A (B's sweep checks its sockets against the database every 2 s), and what a revoked
caller sends on B before that sweep (a whisper, a typed turn) is checked against the database
and does not take effect."""

import time

import httpx
import pytest

from tests.gateway.accounts.revocation_helpers import rep_and_coach, typed_turn_has_no_effect, whisper_has_no_effect
from tests.gateway.accounts_helpers import bearer
from tests.gateway.calls.test_watch import team
from tests.gateway.fanout.test_instances import instance_env
from tests.gateway.live_client import LiveClient
from tests.processes import gateway_process


@pytest.fixture(scope="module")
def pair(module_database_url):
    with gateway_process(module_database_url, **instance_env("rv-a")) as a, \
            gateway_process(module_database_url, **instance_env("rv-b")) as b:
        yield a, b


@pytest.fixture
async def client(pair):
    async with httpx.AsyncClient(base_url=pair[0].url, timeout=30) as client:
        yield client


async def test_a_coach_watching_on_b_is_closed_after_being_demoted_via_a(pair, client):
    a, b = pair
    admin, coach, rep, session_id = await team(client)
    call, watch = await rep_and_coach(a.url, b.url, session_id, rep, coach)
    started = time.monotonic()
    demoted = await client.patch(f"/api/orgs/members/{coach['user']['id']}", json={"role": "trainee"},
                                 headers=bearer(admin))
    assert demoted.status_code == 200
    # Inside B's sweep window: B checks the whisper against the database first.
    await whisper_has_no_effect(watch, call, timeout=6)
    assert time.monotonic() - started < 5.5
    await call.close()


async def test_a_rep_on_b_removed_via_a_loses_the_call_and_their_typed_turn_is_not_answered(pair, client):
    a, b = pair
    admin, _, rep, session_id = await team(client)
    call = await LiveClient(b.url, session_id, rep["access_token"]).open()
    await call.greeting()
    started = time.monotonic()
    removed = await client.delete(f"/api/orgs/members/{rep['user']['id']}", headers=bearer(admin))
    assert removed.status_code == 204
    await typed_turn_has_no_effect(call, timeout=6)
    assert time.monotonic() - started < 5


async def test_a_rep_on_b_loses_the_call_after_logging_out_via_a(pair, client):
    a, b = pair
    _, _, rep, session_id = await team(client)
    call = await LiveClient(b.url, session_id, rep["access_token"]).open()
    await call.wait_for(lambda e: e["type"] == "session.started")
    assert (await client.post("/api/auth/logout", headers=bearer(rep))).status_code == 204
    code, _ = await call.wait_closed(timeout=6)
    assert code == 4401
