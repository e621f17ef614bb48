"""Cookie authentication needs CSRF (HTTP) or an allowed Origin (WebSocket); URL tokens never reach logs."""

import json
import logging

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.app import create_app, serve_app
from gateway.logs import JsonFormatter
from tests.conftest import make_settings
from tests.gateway.accounts_helpers import bearer, signup
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def base_url(module_database_url):
    with run_asgi(serve_app(create_app(make_settings(module_database_url, site_url="http://app.example.com")))) as url:
        yield url


@pytest.fixture
async def browser(base_url):
    """A client that keeps cookies like a browser and sends no Authorization header."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        auth = await signup(client)
        yield client, auth


def ws_url(base_url: str, path: str) -> str:
    return base_url.replace("http://", "ws://") + path


async def closed_with(websocket) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed):
        await websocket.recv()
    return websocket.close_code, websocket.close_reason


async def test_cookie_authenticated_reads_need_no_csrf_token(browser):
    client, auth = browser
    response = await client.get("/api/me")
    assert response.status_code == 200 and response.json()["user"]["id"] == auth["user"]["id"]


async def test_cookie_authenticated_change_without_csrf_header_is_403(browser):
    client, _ = browser
    missing = await client.post("/api/orgs/invites", json={"role": "trainee"})
    assert missing.status_code == 403 and missing.json()["error"]["code"] == "csrf_failed"
    wrong = await client.post("/api/orgs/invites", json={"role": "trainee"}, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403


async def test_cookie_authenticated_change_with_the_csrf_cookie_echoed_succeeds(browser):
    client, _ = browser
    token = client.cookies.get("sparring_csrf")
    response = await client.post("/api/orgs/invites", json={"role": "trainee"}, headers={"X-CSRF-Token": token})
    assert response.status_code == 201


async def test_bearer_authenticated_changes_need_no_csrf_token(base_url):
    async with httpx.AsyncClient(base_url=base_url) as client:
        auth = await signup(client)
    async with httpx.AsyncClient(base_url=base_url) as api:  # no cookies at all
        response = await api.post("/api/orgs/invites", json={"role": "trainee"}, headers=bearer(auth))
    assert response.status_code == 201


async def test_websocket_without_a_token_closes_4401_with_a_reason(base_url):
    async with connect(ws_url(base_url, "/ws/echo")) as ws:
        code, reason = await closed_with(ws)
    assert code == 4401 and "sign in" in reason


async def test_websocket_with_a_bad_token_closes_4401(base_url):
    async with connect(ws_url(base_url, "/ws/echo?token=forged.token.value")) as ws:
        code, _ = await closed_with(ws)
    assert code == 4401


async def test_websocket_with_token_query_parameter_echoes_audio(base_url):
    async with httpx.AsyncClient(base_url=base_url) as client:
        auth = await signup(client)
    async with connect(ws_url(base_url, f"/ws/echo?token={auth['access_token']}")) as ws:
        frame = bytes(range(256)) * 12  # 3072 bytes, about 100 ms of 16 kHz PCM16
        await ws.send(frame)
        assert await ws.recv() == frame
        await ws.send(json.dumps({"type": "ping"}, separators=(",", ":")))
        assert json.loads(await ws.recv()) == {"type": "pong"}
        await ws.send('{ "type" : "ping" }')  # JSON, not an exact string
        assert json.loads(await ws.recv()) == {"type": "pong"}
        await ws.send("hello?")
        code, reason = await closed_with(ws)
    assert code == 4400 and reason


async def test_cookie_websocket_from_an_allowed_origin_is_accepted(browser, base_url):
    client, _ = browser
    cookie = f"sparring_access={client.cookies.get('sparring_access')}"
    for origin in (base_url, "http://app.example.com"):
        async with connect(ws_url(base_url, "/ws/echo"), origin=origin, additional_headers={"Cookie": cookie}) as ws:
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"


@pytest.mark.parametrize("origin", ["https://evil.example.net", None])
async def test_cookie_websocket_from_another_origin_closes_4403(browser, base_url, origin):
    client, _ = browser
    cookie = f"sparring_access={client.cookies.get('sparring_access')}"
    async with connect(ws_url(base_url, "/ws/echo"), origin=origin, additional_headers={"Cookie": cookie}) as ws:
        code, reason = await closed_with(ws)
    assert code == 4403 and "origin" in reason


async def test_token_in_a_websocket_url_never_reaches_a_log_line(base_url):
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Capture()
    handler.setFormatter(JsonFormatter())
    root, uvicorn_log = logging.getLogger(), logging.getLogger("uvicorn.error")
    old_level = uvicorn_log.level
    root.addHandler(handler)
    uvicorn_log.setLevel(logging.INFO)
    logging.getLogger("sparring.request").setLevel(logging.INFO)
    try:
        async with httpx.AsyncClient(base_url=base_url) as client:
            auth = await signup(client)
        async with connect(ws_url(base_url, f"/ws/echo?token={auth['access_token']}")) as ws:
            await ws.send(b"\x00")
            await ws.recv()
    finally:
        root.removeHandler(handler)
        uvicorn_log.setLevel(old_level)
    assert any("/ws/echo" in line for line in lines), "the socket was logged"
    assert any("token=[redacted]" in line for line in lines), "the server's own line kept the URL, redacted"
    assert not any(auth["access_token"] in line for line in lines)
