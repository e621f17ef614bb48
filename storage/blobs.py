"""Blobs (recordings, uploads) stored in Postgres in chunks, written and read as streams."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from types import TracebackType

import asyncpg
import msgspec

from coaching.errors import SparringError
from storage.tenancy import Tenant, tenant_tx

__all__ = ["BlobInfo", "BlobNotFound", "BlobWriter", "CHUNK_BYTES", "get_blob", "read_blob"]

CHUNK_BYTES = 256 * 1024
# A chunk and the blob's running totals in one statement: one round trip per chunk, not two.
_APPEND_SQL = """
WITH chunk AS (INSERT INTO blob_chunks (blob_id, idx, org_id, data) VALUES ($1, $2, $3, $4))
UPDATE blobs SET size_bytes = size_bytes + $5, chunk_count = chunk_count + 1 WHERE id = $1
"""


class BlobNotFound(SparringError):
    """No such blob, or not visible to the caller."""


class BlobInfo(msgspec.Struct, frozen=True):
    id: uuid.UUID
    content_type: str
    status: str
    size_bytes: int
    chunk_count: int
    sha256: str | None


_INFO_SQL = "SELECT id, content_type, status, size_bytes, chunk_count, sha256 FROM blobs WHERE id = $1"


class BlobWriter:
    """Appends bytes to a new blob, one committed chunk at a time, so readers see a recording grow
    while it is written. Use as an async context manager: leaving it normally completes the blob
    (size and sha256 recorded), leaving it by an exception marks it aborted.

    Args:
        pool: the app pool.
        tenant: whose blob it is; `owner_id` is the tenant's user.
        content_type: the MIME type of the whole blob.
        chunk_bytes: how much to buffer before a chunk is written.
    """

    def __init__(
        self, pool: asyncpg.Pool, tenant: Tenant, *, content_type: str, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        if tenant.org_id is None:
            raise ValueError("a blob belongs to an org: tenant.org_id is required")
        if chunk_bytes <= 0:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        self._pool, self._tenant = pool, tenant
        self._content_type, self._chunk_bytes = content_type, chunk_bytes
        self._buffer = bytearray()
        self._hash = hashlib.sha256()
        self._size = 0
        self._chunks = 0
        self.id: uuid.UUID = uuid.uuid4()

    async def __aenter__(self) -> BlobWriter:
        async with tenant_tx(self._pool, self._tenant) as conn:
            await conn.execute(
                "INSERT INTO blobs (id, org_id, owner_id, content_type) VALUES ($1, $2, $3, $4)",
                self.id, self._tenant.org_id, self._tenant.user_id, self._content_type,
            )
        return self

    async def write(self, data: bytes) -> None:
        """Buffers `data`; full chunks are committed at once."""
        self._buffer += data
        while len(self._buffer) >= self._chunk_bytes:
            chunk = bytes(self._buffer[: self._chunk_bytes])
            del self._buffer[: self._chunk_bytes]
            await self._append(chunk)

    async def _append(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        async with tenant_tx(self._pool, self._tenant) as conn:
            await conn.execute(_APPEND_SQL, self.id, self._chunks, self._tenant.org_id, chunk, len(chunk))
        self._chunks += 1
        self._size += len(chunk)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None and self._buffer:
            await self._append(bytes(self._buffer))
            self._buffer.clear()
        async with tenant_tx(self._pool, self._tenant) as conn:
            if exc_type is None:
                await conn.execute(
                    "UPDATE blobs SET status = 'complete', sha256 = $2, completed_at = now() WHERE id = $1",
                    self.id, self._hash.hexdigest(),
                )
            else:
                await conn.execute("UPDATE blobs SET status = 'aborted' WHERE id = $1", self.id)


async def get_blob(conn: asyncpg.Connection, blob_id: uuid.UUID) -> BlobInfo:
    """Raises:
        BlobNotFound: the blob does not exist or the tenant may not see it.
    """
    row = await conn.fetchrow(_INFO_SQL, blob_id)
    if row is None:
        raise BlobNotFound(f"blob {blob_id} not found")
    return BlobInfo(**dict(row))


async def read_blob(
    pool: asyncpg.Pool, tenant: Tenant, blob_id: uuid.UUID, *, start_chunk: int = 0
) -> AsyncIterator[bytes]:
    """Yields the blob's chunks in order, one short transaction per chunk, so a long download never
    holds a connection. A blob still being written yields the chunks committed so far.

    Raises:
        BlobNotFound: the blob does not exist or the tenant may not see it.
    """
    async with tenant_tx(pool, tenant) as conn:
        await get_blob(conn, blob_id)
    idx = start_chunk
    while True:
        async with tenant_tx(pool, tenant) as conn:
            data = await conn.fetchval("SELECT data FROM blob_chunks WHERE blob_id = $1 AND idx = $2", blob_id, idx)
        if data is None:
            return
        yield data
        idx += 1
