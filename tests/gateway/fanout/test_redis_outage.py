"""Redis stops mid-call (a private redis-server, so other tests keep theirs): the call goes on,
nothing persisted is lost, watchers are told to reconnect and catch up when Redis is back, and
rate limits fail open or closed as configured."""

import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.gateway.calls.test_watch import numbered, team, watcher
from tests.gateway.live_client import LiveClient
from tests.gateway.stored import stored_events
from tests.processes import RedisServer
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


def settings(database_url, redis_server, **env):
    return make_settings(database_url, redis_url=redis_server.url, rate_limit_login="3/minute",
                         live_ttl_seconds="2", **env)


@pytest.fixture(scope="module")
def base_url(module_database_url, redis_server):
    with run_asgi(serve_app(create_app(settings(module_database_url, redis_server)))) as url:
        yield url


@pytest.fixture(scope="module")
def fail_closed_url(module_database_url, redis_server):
    app = create_app(settings(module_database_url, redis_server, rate_limit_fail_closed="true"))
    with run_asgi(serve_app(app)) as url:
        yield url


async def logins(client, url, email, times):
    return [await client.post(f"{url}/api/auth/login", json={"email": email, "password": "wrong-password"})
            for _ in range(times)]


async def test_redis_stopping_mid_call_loses_nothing(base_url, fail_closed_url, client, redis_server,
                                                       module_database_url):
    _, coach, rep, session_id = await team(client)
    call = await LiveClient(base_url, session_id, rep["access_token"]).open()
    await call.greeting()
    watch = await watcher(base_url, session_id, coach["access_token"]).open(start=False)
    await watch.wait_for(lambda e: e.get("seq") == numbered(call.events)[-1]["seq"])

    redis_server.stop()
    during = await call.talk("How does your month end close process work today?")
    code, reason = await watch.wait_closed(timeout=10)
    assert code == 1013 and "reconnect" in reason

    # Limits fail open by default (each login still answered: 401, not 429), closed when configured.
    assert [r.status_code for r in await logins(client, base_url, "open@example.com", 5)] == [401] * 5
    closed = (await logins(client, fail_closed_url, "closed@example.com", 1))[0]
    assert closed.status_code == 503 and closed.json()["error"]["code"] == "rate_limit_unavailable"
    assert int(closed.headers["Retry-After"]) >= 1

    redis_server.start()
    seen_before = numbered(watch.events)[-1]["seq"]
    again = await watcher(base_url, session_id, coach["access_token"], after_seq=seen_before).open(start=False)
    after = await call.talk("What does a late close cost your team?")
    await again.wait_for(lambda e: e.get("seq") == after["seq"], timeout=15)
    seen = numbered(watch.events) + numbered(again.events)
    assert [e["seq"] for e in seen] == list(range(1, after["seq"] + 1)), "caught up with no gap or duplicate"
    assert during["seq"] < after["seq"]
    assert [r.status_code for r in await logins(client, base_url, "back@example.com", 4)] == [401, 401, 401, 429]

    await call.send({"type": "end"})
    await call.wait_closed()
    rows = await stored_events(module_database_url, session_id, through_seq=numbered(call.events)[-1]["seq"])
    # The call's own events: score.ready follows them once the scoring job is done, after the
    # rep's socket closed (whether it is there yet depends on the job's timing).
    stored = [r["seq"] for r in rows if r["type"] != "score.ready"]
    assert stored == [e["seq"] for e in numbered(call.events)], "every event the rep got is persisted"
    await again.close()
