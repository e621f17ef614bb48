"""STUN servers from `WEBRTC_ICE_SERVERS` are used by the gateway's own ICE agent and handed to the
browser with the answer: an in-process STUN server (RFC 5389 binding requests, aioice's codec)
sees the gateway's requests, and the answer carries the configured servers and the server-reflexive
candidate learned from it; the call still connects on loopback."""

import asyncio
import json

import httpx
from aioice import stun

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.gateway.accounts_helpers import bearer, signup
from tests.gateway.webrtc.rtc_client import RtcClient
from tests.servers import run_asgi


class _StunServer(asyncio.DatagramProtocol):
    """Answers every binding request with the sender's address (XOR-MAPPED-ADDRESS)."""

    def __init__(self) -> None:
        self.requests = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        request = stun.parse_message(data)
        if request.message_method != stun.Method.BINDING or request.message_class != stun.Class.REQUEST:
            return
        self.requests += 1
        response = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.RESPONSE,
                                transaction_id=request.transaction_id)
        response.attributes["XOR-MAPPED-ADDRESS"] = (addr[0], addr[1])
        assert self.transport is not None
        self.transport.sendto(bytes(response), addr)


def _stun_server_in_thread():
    """A STUN server on its own loop in a thread (the app runs on another), and its port."""
    import threading

    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        transport, protocol = loop.run_until_complete(
            loop.create_datagram_endpoint(_StunServer, local_addr=("127.0.0.1", 0)))
        holder.update(transport=transport, protocol=protocol, port=transport.get_extra_info("sockname")[1])
        started.set()
        loop.run_forever()
        transport.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return holder, stop


async def test_configured_stun_servers_are_used_by_the_gateway_and_handed_to_the_browser(module_database_url):
    stun_server, stop = _stun_server_in_thread()
    try:
        servers = [{"urls": [f"stun:127.0.0.1:{stun_server['port']}"]}]
        settings = make_settings(module_database_url, webrtc_calls="true", webrtc_host_addresses="127.0.0.1",
                                 webrtc_ice_servers=json.dumps(servers), hints_llm="off", llm_provider="scripted")
        with run_asgi(serve_app(create_app(settings))) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                rep = await signup(client)
                session_id = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                                                headers=bearer(rep))).json()["id"]
                call = await RtcClient(url, session_id, rep).connect(client)
                assert call.answer["ice_servers"] == servers
                assert stun_server["protocol"].requests >= 1, "the gateway asked the configured STUN server"
                assert "typ srflx" in call.answer["sdp"], "the reflexive candidate it learned is in the answer"
                started = await call.wait_for(lambda e: e["type"] == "session.started")
                assert started["seq"] == 1
                await call.close()
    finally:
        stop()
