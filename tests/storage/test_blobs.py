"""Chunked blobs: written as a stream, readable while written, hashed, and tenant-scoped."""

import hashlib
import os
import uuid

import pytest

from storage.blobs import BlobNotFound, BlobWriter, get_blob, read_blob
from storage.tenancy import Tenant, tenant_tx


@pytest.fixture
async def tenant(db):
    org, user = uuid.uuid4(), uuid.uuid4()
    await db.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Acme')", org)
    await db.execute("INSERT INTO users (id, email, name) VALUES ($1, $2, 'Rep')", user, f"{user}@example.com")
    return Tenant(org_id=org, user_id=user, role="trainee")


async def collect(pool, tenant, blob_id) -> bytes:
    return b"".join([chunk async for chunk in read_blob(pool, tenant, blob_id)])


async def test_blob_written_in_pieces_round_trips_with_size_and_sha256(app_pool, tenant, db):
    payload = os.urandom(300_000)
    async with BlobWriter(app_pool, tenant, content_type="audio/wav", chunk_bytes=64 * 1024) as writer:
        for start in range(0, len(payload), 7_001):  # writes that do not line up with chunks
            await writer.write(payload[start:start + 7_001])
    async with tenant_tx(app_pool, tenant) as conn:
        info = await get_blob(conn, writer.id)
    assert (info.status, info.size_bytes, info.chunk_count) == ("complete", 300_000, 5)
    assert info.sha256 == hashlib.sha256(payload).hexdigest()
    assert await collect(app_pool, tenant, writer.id) == payload
    assert await db.fetchval("SELECT count(*) FROM blob_chunks WHERE blob_id = $1", writer.id) == 5


async def test_blob_is_readable_while_still_being_written(app_pool, tenant):
    async with BlobWriter(app_pool, tenant, content_type="audio/pcm", chunk_bytes=1000) as writer:
        await writer.write(b"a" * 2500)
        assert await collect(app_pool, tenant, writer.id) == b"a" * 2000  # the two committed chunks
        async with tenant_tx(app_pool, tenant) as conn:
            assert (await get_blob(conn, writer.id)).status == "writing"
    assert await collect(app_pool, tenant, writer.id) == b"a" * 2500


async def test_blob_writer_that_fails_marks_the_blob_aborted(app_pool, tenant):
    with pytest.raises(RuntimeError):
        async with BlobWriter(app_pool, tenant, content_type="audio/wav") as writer:
            await writer.write(b"partial")
            raise RuntimeError("call crashed")
    async with tenant_tx(app_pool, tenant) as conn:
        info = await get_blob(conn, writer.id)
    assert (info.status, info.sha256) == ("aborted", None)


async def test_blob_of_another_org_is_not_found(app_pool, tenant, db):
    async with BlobWriter(app_pool, tenant, content_type="audio/wav") as writer:
        await writer.write(b"secret audio")
    other_org = uuid.uuid4()
    await db.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Other')", other_org)
    outsider = Tenant(org_id=other_org, role="admin")
    with pytest.raises(BlobNotFound):
        await collect(app_pool, outsider, writer.id)
