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
