"""One app per module with WebRTC on and ICE on loopback only (no STUN), and the app object itself
(the resource test reads what its peers hold, on the app's own loop)."""

import asyncio

import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.servers import run_asgi

RESUME_GRACE_S = 4


@pytest.fixture(scope="module")
def app(module_database_url):
    return create_app(make_settings(module_database_url, webrtc_calls="true", webrtc_host_addresses="127.0.0.1",
                                    resume_grace_seconds=str(RESUME_GRACE_S), hints_llm="off",
                                    llm_provider="scripted"))


@pytest.fixture(scope="module")
def base_url(app):
    with run_asgi(serve_app(app)) as url:
        yield url


@pytest.fixture
def server_resources(app, base_url):
    """What the app's WebRTC peers hold now, read on the app's event loop."""
    async def read() -> dict[str, int]:
        return app.state.webrtc.resources()

    def resources() -> dict[str, int]:
        return asyncio.run_coroutine_threadsafe(read(), app.state.webrtc.loop).result(10)

    return resources
