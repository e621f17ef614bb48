"""Signing people up through the real API, for tests that need callers."""

from __future__ import annotations

import uuid

import httpx

PASSWORD = "correct horse battery"


def unique_email(prefix: str = "rep") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def signup(client: httpx.AsyncClient, *, org_name: str | None = None, invite_code: str | None = None,
                 email: str | None = None, name: str = "Pat Rep", password: str = PASSWORD) -> dict:
    body = {"email": email or unique_email(), "password": password, "name": name}
    if invite_code is not None:
        body["invite_code"] = invite_code
    else:
        body["org_name"] = org_name or f"Org {uuid.uuid4().hex[:6]}"
    response = await client.post("/api/auth/signup", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def bearer(auth: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth['access_token']}"}


async def invite(client: httpx.AsyncClient, inviter: dict, role: str) -> str:
    response = await client.post("/api/orgs/invites", json={"role": role}, headers=bearer(inviter))
    assert response.status_code == 201, response.text
    return response.json()["code"]


async def eventually(check, *, timeout: float = 10.0, interval: float = 0.05):
    """Polls `check` (an async callable) until it returns a truthy value or `timeout` passes.
    For state another process writes on its own schedule (batched event writes)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(interval)
