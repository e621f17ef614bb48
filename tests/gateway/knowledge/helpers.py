"""Adding documents and searching through the real API."""

from __future__ import annotations

import httpx

from tests.gateway.accounts_helpers import bearer


async def add_document(client: httpx.AsyncClient, auth: dict, title: str, text: str, *,
                       source: str = "playbook") -> dict:
    response = await client.post("/api/knowledge", json={"title": title, "text": text, "source": source},
                                 headers=bearer(auth))
    assert response.status_code == 201, response.text
    return response.json()


async def search(client: httpx.AsyncClient, auth: dict, q: str, **params: str | int) -> dict:
    response = await client.get("/api/knowledge/search", params={"q": q, **params}, headers=bearer(auth))
    assert response.status_code == 200, response.text
    return response.json()


async def scored_call(base_url: str, auth: dict, lines: list[str], *, timeout_s: float = 90) -> str:
    """A typed practice call the caller makes over the live socket, ended; its session id once its
    scorecard is stored."""
    import asyncio

    from tests.gateway.live_client import LiveClient

    async with httpx.AsyncClient(base_url=base_url, headers=bearer(auth), timeout=30) as api:
        session = (await api.post("/api/sessions", json={"persona_id": "skeptical-cfo"})).json()
        call = await LiveClient(base_url, session["id"], auth["access_token"]).open()
        try:
            await call.greeting(timeout=timeout_s)
            for line in lines:
                await call.talk(line, timeout=timeout_s)
            await call.send({"type": "end"})
            await call.wait_closed(timeout=30)
        finally:
            await call.close()
        for _ in range(int(timeout_s * 5)):  # scoring is a job
            response = await api.get(f"/api/sessions/{session['id']}/score")
            if response.status_code == 200:
                return session["id"]
            await asyncio.sleep(0.2)
    raise AssertionError("the call was not scored in time")
