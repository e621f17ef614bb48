"""A running app per test module (default settings on the module's database) and an HTTP client.
Modules that need other settings define their own `base_url`."""

import httpx
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def base_url(module_database_url):
    with run_asgi(serve_app(create_app(make_settings(module_database_url)))) as url:
        yield url


@pytest.fixture
async def client(base_url):
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield client
