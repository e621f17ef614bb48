"""Uploading recordings through the real API and following their jobs."""

from __future__ import annotations

from pathlib import Path

from tests.gateway.accounts_helpers import bearer, eventually
from tests.gateway.sse_client import sse as read_sse


async def upload_file(client, auth, path: Path | None = None, *, content: bytes | None = None, name: str | None = None,
                      declared: str = "audio/wav", **fields: str):
    body = content if content is not None else path.read_bytes()
    files = {"file": (name or (path.name if path else "call.wav"), body, declared)}
    return await client.post("/api/analyze/upload", files=files, data=fields, headers=bearer(auth))


async def sse(client, auth, path: str, *, timeout: float = 240.0) -> list[tuple[str, dict]]:
    return await read_sse(client, auth, path, timeout=timeout)


async def job_done(client, auth, upload_id: str, *, timeout: float = 240.0) -> dict:
    """The upload once its latest job finished (done or failed)."""
    async def finished():
        detail = (await client.get(f"/api/uploads/{upload_id}", headers=bearer(auth))).json()
        job = detail.get("job")
        return detail if job and job["status"] in ("done", "failed") else None
    detail = await eventually(finished, timeout=timeout, interval=0.2)
    assert detail, "the upload's job did not finish"
    return detail
