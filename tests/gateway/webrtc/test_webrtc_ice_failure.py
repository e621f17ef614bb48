"""A client whose network goes away without a goodbye: the gateway's ICE consent checks go
unanswered, its ICE state reaches `failed`, and the call waits the resume grace, then ends
`client_disconnected`, with everything the peer held let go.

aioice checks consent every 5 s and gives up after 6 unanswered checks; the server runs in this
process (tests/servers.py), so the test shortens the interval for the gateway (and the client)
instead of waiting half a minute."""

import logging
import time

import aioice.ice
import pytest

from tests.gateway.accounts_helpers import bearer, eventually, signup
from tests.gateway.webrtc.conftest import RESUME_GRACE_S
from tests.gateway.webrtc.rtc_client import RtcClient

CONSENT_INTERVAL_S = 0.2  # with 6 failures of 0.5 s each: ICE fails about 4 s after the network goes


@pytest.fixture
def quick_consent(monkeypatch):
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", CONSENT_INTERVAL_S)


async def test_a_client_whose_ice_fails_is_ended_after_the_grace_and_its_peer_released(
        base_url, client, server_resources, quick_consent, caplog):
    caplog.set_level(logging.INFO, logger="gateway.transports.webrtc")
    rep = await signup(client)
    before = server_resources()
    session_id = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                                    headers=bearer(rep))).json()["id"]
    call = await RtcClient(base_url, session_id, rep).connect(client)
    await call.greeting()
    assert server_resources()["peers"] == before["peers"] + 1
    call.go_silent()
    gone = time.monotonic()

    async def released():
        now = server_resources()
        return now if all(now[k] <= before[k] for k in now) else None

    after = await eventually(released, timeout=30)
    assert after, f"the failed peer is still held: {server_resources()} (before: {before})"
    detected = time.monotonic()
    causes = [r.cause for r in caplog.records
              if r.getMessage() == "webrtc peer dropped" and r.session_id == session_id]
    # Consent expiry closes aioice's connection; aiortc reports that as ICE `failed`, or (when
    # its DTLS transport notices first) closes the peer connection itself: a drop either way.
    assert len(causes) == 1 and causes[0] in ("ICE failed", "the peer connection closed"), causes
    detail = (await client.get(f"/api/sessions/{session_id}", headers=bearer(rep))).json()
    assert detail["status"] == "live", "the call waits the resume grace after ICE failed"

    async def ended():
        detail = (await client.get(f"/api/sessions/{session_id}", headers=bearer(rep))).json()
        return detail if detail["status"] == "ended" else None

    detail = await eventually(ended, timeout=RESUME_GRACE_S + 20)
    assert detail["end_reason"] == "client_disconnected"
    assert time.monotonic() - detected >= RESUME_GRACE_S - 1.5, "ended only once the grace ran out"
    assert detected - gone < 20, "consent failure was noticed (not the 30 s connect timeout or a close)"
    await call.close()
