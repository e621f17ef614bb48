"""Uploading recordings through the real API and following their jobs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.gateway.accounts_helpers import bearer, eventually


async def upload_file(client, auth, path: Path | None = None, *, content: bytes | None = None, name: str | None = None,
                      declared: str = "audio/wav", **fields: str):
    body = content if content is not None else path.read_bytes()
    files = {"file": (name or (path.name if path else "call.wav"), body, declared)}
    return await client.post("/api/analyze/upload", files=files, data=fields, headers=bearer(auth))


async def sse(client, auth, path: str, *, timeout: float = 240.0) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = []

    async def read():
        async with client.stream("GET", path, headers=bearer(auth)) as response:
            assert response.status_code == 200, await response.aread()
            kind, data = None, []
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data.append(line.split(":", 1)[1].strip())
                elif line == "" and kind:
                    events.append((kind, json.loads("\n".join(data))))
                    kind, data = None, []
    await asyncio.wait_for(read(), timeout)
    return events


async def job_done(client, auth, upload_id: str, *, timeout: float = 240.0) -> dict:
    """The upload once its latest job finished (done or failed)."""
    async def finished():
        detail = (await client.get(f"/api/uploads/{upload_id}", headers=bearer(auth))).json()
        job = detail.get("job")
        return detail if job and job["status"] in ("done", "failed") else None
    detail = await eventually(finished, timeout=timeout, interval=0.2)
    assert detail, "the upload's job did not finish"
    return detail
