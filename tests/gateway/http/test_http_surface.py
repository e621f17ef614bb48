"""The HTTP surface every route shares: error bodies, request ids and logs, OpenAPI, Sentry."""

import asyncio
import json
import logging
from typing import Literal

import msgspec
import pytest
import sentry_sdk
from litestar import get, post
from litestar.params import JSONBody
from sentry_sdk.transport import Transport

from gateway.app import create_app, serve_app
from gateway.logs import JsonFormatter
from gateway.sentry import init_sentry
from tests.conftest import make_settings
from tests.servers import run_asgi


class Probe(msgspec.Struct):
    name: str
    count: int
    role: Literal["trainee", "coach", "admin"]


@post("/api/test/probe")
async def probe(data: JSONBody[Probe]) -> dict:
    return {"name": data.name, "count": data.count, "role": data.role}


@get("/api/test/boom")
async def boom() -> None:
    raise RuntimeError("kaboom with internal detail")


class CapturedLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class CaptureTransport(Transport):
    def __init__(self, options=None) -> None:
        super().__init__(options)
        self.events: list[dict] = []

    def capture_envelope(self, envelope) -> None:
        for item in envelope.items:
            if item.headers.get("type") in ("event", "transaction"):
                self.events.append(item.payload.json)


@pytest.fixture(scope="module")
def logs():
    handler = CapturedLogs()
    logging.getLogger().addHandler(handler)
    logging.getLogger("sparring.request").setLevel(logging.INFO)
    yield handler
    logging.getLogger().removeHandler(handler)


@pytest.fixture(scope="module")
def sentry_events():
    transport = CaptureTransport()
    old_client = sentry_sdk.get_client()
    settings = make_settings("postgresql://unused/db", sentry_traces_sample_rate="1.0")
    assert init_sentry(settings, transport=transport)
    yield transport.events
    sentry_sdk.get_global_scope().set_client(old_client)


@pytest.fixture(scope="module")
def base_url(module_database_url, logs, sentry_events):
    settings = make_settings(module_database_url, max_body_bytes="2048")
    with run_asgi(serve_app(create_app(settings, extra_routes=[probe, boom]))) as url:
        yield url


async def test_valid_body_is_accepted(client):
    response = await client.post("/api/test/probe", json={"name": "a", "count": 2, "role": "coach"})
    assert response.status_code == 201
    assert response.json() == {"name": "a", "count": 2, "role": "coach"}


async def test_malformed_json_is_400_with_error_body(client):
    response = await client.post("/api/test/probe", content=b'{"name": "a",',
                                 headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "malformed_json", "message": "the request body is not valid JSON"}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a", "count": "two", "role": "coach"}, "count"),
        ({"name": "a", "count": 2, "role": "overlord"}, "role"),
        ({"name": "a", "role": "coach"}, "count"),
    ],
    ids=["wrong-type", "unknown-enum-value", "missing-field"],
)
async def test_invalid_field_is_400_naming_the_field(client, body, field):
    response = await client.post("/api/test/probe", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_field"
    assert error["field"] == field, error
    assert error["message"]


async def test_oversized_body_is_413_with_error_body(client):
    response = await client.post("/api/test/probe", json={"name": "x" * 5000, "count": 1, "role": "coach"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


async def test_unknown_route_and_wrong_method_get_error_bodies(client):
    missing = await client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = await client.delete("/api/health")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


async def test_unhandled_error_is_500_without_internals(client):
    response = await client.get("/api/test/boom")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal", "message": "internal error; it has been logged"}}
    assert "kaboom" not in response.text


async def test_each_request_has_an_id_echoed_and_logged_without_query_string(client, logs):
    response = await client.get("/api/health", params={"token": "super-secret-token"})
    request_id = response.headers["x-request-id"]
    kept = await client.get("/api/health", headers={"x-request-id": "edge-123"})
    assert kept.headers["x-request-id"] == "edge-123"
    for _ in range(100):  # the access line is written as the response finishes: give it a moment
        if any('"edge-123"' in line for line in logs.lines):
            break
        await asyncio.sleep(0.05)
    entries = [json.loads(line) for line in logs.lines]
    mine = [e for e in entries if e.get("request_id") == request_id and e["msg"] == "request"]
    assert len(mine) == 1
    assert mine[0]["path"] == "/api/health" and mine[0]["status"] == 200 and mine[0]["method"] == "GET"
    assert any(e.get("request_id") == "edge-123" for e in entries)
    assert not any("super-secret-token" in line for line in logs.lines)


async def test_unhandled_error_log_line_carries_the_request_id(client, logs):
    response = await client.get("/api/test/boom")
    request_id = response.headers["x-request-id"]
    lines = [json.loads(line) for line in logs.lines]
    errors = [e for e in lines if e["msg"] == "unhandled error" and e.get("request_id") == request_id]
    assert errors and "RuntimeError" in errors[0]["exc"]


async def test_openapi_schema_lists_the_routes(client):
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert "/api/health" in response.json()["paths"]
    assert (await client.get("/schema")).status_code == 200


async def test_sentry_receives_errors_scrubbed_of_credentials_and_bodies(client, sentry_events):
    await client.get(
        "/api/test/boom?token=ws-query-token",
        headers={"authorization": "Bearer secret-access-token", "cookie": "access=secret-cookie"},
    )
    sentry_sdk.flush()
    errors = [e for e in sentry_events if e.get("type") != "transaction" and e.get("exception")]
    assert errors, "the unhandled error reached Sentry"
    dumped = json.dumps(errors[-1])
    assert "RuntimeError" in dumped
    for secret in ("secret-access-token", "secret-cookie", "ws-query-token"):
        assert secret not in dumped
