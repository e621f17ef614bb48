"""GET /api/health against the running app: real Postgres, real Redis, fake OpenAI-compatible APIs."""

from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.servers import run_asgi

REDIS_URL = "redis://127.0.0.1:6379/0"


async def get_health(base_url: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url) as client:
        return await client.get("/api/health")


async def test_health_with_postgres_and_redis_up_is_healthy(database_url):
    with run_asgi(serve_app(create_app(make_settings(database_url, redis_url=REDIS_URL)))) as url:
        response = await get_health(url)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert set(body["checks"]) == {"postgres", "redis"}
    for check in body["checks"].values():
        assert check["status"] == "up" and check["critical"] is True
        assert check["latency_ms"] >= 0
    assert body["process"]["live_calls"] == 0 and body["process"]["events_not_yet_durable"] == 0
    assert body["process"]["asyncio_tasks"] > 0


async def test_health_is_503_when_postgres_becomes_unreachable(database_url, pg_server_url):
    name = urlsplit(database_url).path.lstrip("/")
    with run_asgi(serve_app(create_app(make_settings(database_url)))) as url:
        assert (await get_health(url)).status_code == 200
        admin = await asyncpg.connect(pg_server_url)
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
            response = await get_health(url)
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["postgres"]["status"] == "down"
    assert body["checks"]["postgres"]["error"]


async def test_health_is_503_when_configured_redis_is_unreachable(database_url):
    settings = make_settings(database_url, redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    with run_asgi(serve_app(create_app(settings))) as url:
        response = await get_health(url)
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["status"] == "down"


@pytest.fixture(scope="module")
def fake_openai():
    fake = FakeOpenAI()
    with run_asgi(fake.app()) as url:
        yield fake, url + "/v1"


@pytest.fixture(scope="module")
def fake_openrouter():
    fake = FakeOpenAI()
    with run_asgi(fake.app()) as url:
        yield fake, url + "/v1"


@pytest.fixture
def providers(fake_openai, fake_openrouter):
    (openai_fake, openai_url), (router_fake, router_url) = fake_openai, fake_openrouter
    openai_fake.failing = router_fake.failing = False
    openai_fake.requests.clear()
    router_fake.requests.clear()
    yield {"openai": openai_fake, "openrouter": router_fake,
           "env": {"openai_api_key": "sk-test-openai", "openai_base_url": openai_url,
                   "openrouter_api_key": "sk-test-router", "openrouter_base_url": router_url}}


async def test_health_checks_each_configured_provider_with_its_key(database_url, providers):
    with run_asgi(serve_app(create_app(make_settings(database_url, **providers["env"])))) as url:
        response = await get_health(url)
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["openrouter"] == {"status": "up", "critical": True, "latency_ms": checks["openrouter"]["latency_ms"]}
    assert checks["openai"]["status"] == "up" and checks["openai"]["critical"] is False
    assert providers["openai"].requests == [("GET", "/v1/models", "Bearer sk-test-openai")]
    assert providers["openrouter"].requests == [("GET", "/v1/models", "Bearer sk-test-router")]


async def test_health_is_degraded_but_200_when_an_optional_provider_is_down(database_url, providers):
    providers["openai"].failing = True
    with run_asgi(serve_app(create_app(make_settings(database_url, **providers["env"])))) as url:
        response = await get_health(url)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["openai"]["status"] == "down"


async def test_health_is_503_when_openrouter_the_configured_llm_is_down(database_url, providers):
    providers["openrouter"].failing = True
    with run_asgi(serve_app(create_app(make_settings(database_url, **providers["env"])))) as url:
        response = await get_health(url)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["openrouter"] == {
        "status": "down", "critical": True, "latency_ms": body["checks"]["openrouter"]["latency_ms"],
        "error": "InternalServerError"}
