"""Realistic VAPI deliveries for tests: fixtures from tests/fixtures/vapi, signed as VAPI signs them."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from pathlib import Path

import httpx

from gateway.vapi.assistant import session_token
from gateway.vapi.auth import HmacScheme, sign_hmac
from tests.conftest import TEST_JWT_SECRET

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vapi"
SECRET = "vapi-webhook-secret-for-tests-0123456789"


def payload(name: str, *, call_id: str | None = None, session_id: str = "", ts: int | None = None,
            control_url: str = "https://example.invalid/control", phone: str = "+15550009999") -> bytes:
    """A fixture with its placeholders filled in (a fresh nonce, as re-deliveries carry fresh URLs)."""
    text = (FIXTURES / f"{name}.json").read_text()
    text = text.replace('"{{TS}}"', str(ts if ts is not None else int(time.time() * 1000)))
    token = session_token(TEST_JWT_SECRET, session_id) if session_id else ""
    for key, value in {"CALL_ID": call_id or f"call-{uuid.uuid4().hex[:10]}", "SESSION_ID": session_id,
                       "SESSION_TOKEN": token,
                       "CONTROL_URL": control_url, "PHONE": phone, "NONCE": uuid.uuid4().hex}.items():
        text = text.replace("{{" + key + "}}", value)
    return text.encode()


def signed(body: bytes, mode: str = "hmac", secret: str = SECRET, *, timestamp: str | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if mode == "hmac":
        stamp = timestamp or str(int(time.time()))
        headers |= {"x-timestamp": stamp, "x-signature": sign_hmac(HmacScheme(), secret, body, stamp)}
    elif mode == "secret":
        headers["x-vapi-secret"] = secret
    elif mode == "bearer":
        headers["authorization"] = f"Bearer {secret}"
    elif mode == "legacy":
        headers["x-vapi-signature"] = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return headers


async def deliver(client: httpx.AsyncClient, body: bytes, *, path: str = "/api/vapi/webhook", mode: str = "hmac",
                  secret: str = SECRET) -> httpx.Response:
    return await client.post(path, content=body, headers=signed(body, mode, secret))
