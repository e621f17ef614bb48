"""The knowledge base: documents, their chunks (text, embedding, model) and the two searches that
retrieval fuses: vector (`match_knowledge`, per model) and full text. Row-level security limits
every query to the caller's org and the shared (org_id NULL) rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec
import numpy as np

from storage.jobs import enqueue_job

__all__ = [
    "ChunkHit", "ChunkRow", "DocumentRow", "KnowledgeHit", "delete_document", "document_chunks",
    "enqueue_reembed", "get_document", "global_document_exists", "insert_document", "list_documents", "search_text",
    "set_embeddings", "stale_chunks", "stale_orgs", "text_hits", "vector_hits",
]


class DocumentRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    org_id: uuid.UUID | None
    title: str
    source: str
    kind: str
    size_bytes: int
    chunks: int
    models: list[str]
    created_by: uuid.UUID | None
    created_by_name: str | None
    created_at: datetime


class ChunkRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    chunk_index: int
    text: str
    embedding_model: str | None


class ChunkHit(msgspec.Struct, frozen=True):
    """One chunk found by one search; `score` is that search's own (cosine similarity, ts_rank)."""

    id: uuid.UUID
    document_id: uuid.UUID | None
    chunk_index: int
    title: str | None
    text: str
    source: str
    score: float


class KnowledgeHit(msgspec.Struct, frozen=True):
    title: str | None
    content: str
    source: str
    rank: float


def _vector(values: Sequence[float]) -> np.ndarray:
    """The pool's pgvector codec (`storage.database`) sends float32 arrays."""
    return np.asarray(values, dtype=np.float32)


_DOCUMENT = """
    SELECT d.id, d.org_id, d.title, d.source, d.kind, d.size_bytes, d.chunk_count, d.created_by, d.created_at,
           u.name AS created_by_name,
           (SELECT coalesce(array_agg(DISTINCT k.embedding_model) FILTER (WHERE k.embedding_model IS NOT NULL),
                            '{}') FROM knowledge_base k WHERE k.document_id = d.id) AS models
    FROM knowledge_documents d LEFT JOIN users u ON u.id = d.created_by
"""


def _document(r: asyncpg.Record) -> DocumentRow:
    return DocumentRow(r["id"], r["org_id"], r["title"], r["source"], r["kind"], r["size_bytes"], r["chunk_count"],
                       list(r["models"]), r["created_by"], r["created_by_name"], r["created_at"])


async def insert_document(conn: asyncpg.Connection, *, org_id: uuid.UUID | None, title: str, source: str, kind: str,
                          size_bytes: int, created_by: uuid.UUID | None, chunks: Sequence[str],
                          embeddings: Sequence[Sequence[float]] | None, model: str | None) -> uuid.UUID:
    """Stores a document and its chunks (with their vectors when given; else the background
    re-embedding gives them one). Returns the document's id."""
    doc_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO knowledge_documents (org_id, title, source, kind, size_bytes, chunk_count, created_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        org_id, title, source, kind, size_bytes, len(chunks), created_by)
    rows = [(org_id, doc_id, source, title, text, i,
             _vector(embeddings[i]) if embeddings is not None else None, model if embeddings is not None else None)
            for i, text in enumerate(chunks)]
    await conn.executemany(
        "INSERT INTO knowledge_base (org_id, document_id, source, title, content, chunk_index, embedding,"
        " embedding_model) VALUES ($1, $2, $3, $4, $5, $6, $7::vector, $8)", rows)
    return doc_id


async def list_documents(conn: asyncpg.Connection, *, limit: int = 200) -> list[DocumentRow]:
    """The org's documents and the shared ones, newest first."""
    rows = await conn.fetch(_DOCUMENT + " ORDER BY d.created_at DESC, d.id LIMIT $1", limit)
    return [_document(r) for r in rows]


async def get_document(conn: asyncpg.Connection, doc_id: uuid.UUID) -> DocumentRow | None:
    row = await conn.fetchrow(_DOCUMENT + " WHERE d.id = $1", doc_id)
    return _document(row) if row else None


async def document_chunks(conn: asyncpg.Connection, doc_id: uuid.UUID) -> list[ChunkRow]:
    rows = await conn.fetch("SELECT id, chunk_index, content, embedding_model FROM knowledge_base"
                            " WHERE document_id = $1 ORDER BY chunk_index", doc_id)
    return [ChunkRow(r["id"], r["chunk_index"], r["content"], r["embedding_model"]) for r in rows]


async def delete_document(conn: asyncpg.Connection, doc_id: uuid.UUID) -> bool:
    """False when there is no such document the caller may delete (row-level security)."""
    return await conn.fetchval("DELETE FROM knowledge_documents WHERE id = $1 RETURNING true", doc_id) is not None


async def global_document_exists(conn: asyncpg.Connection, source: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM knowledge_documents WHERE org_id IS NULL AND source = $1)", source))


async def vector_hits(conn: asyncpg.Connection, embedding: Sequence[float], *, model: str, source: str | None,
                      limit: int) -> list[ChunkHit]:
    """Nearest chunks of `model`'s space by cosine similarity (HNSW), best first."""
    rows = await conn.fetch("SELECT * FROM match_knowledge($1::vector, -1, $2, $3, $4)",
                            _vector(embedding), limit, source, model)
    return [ChunkHit(r["id"], r["document_id"], r["chunk_index"], r["title"], r["content"], r["source"],
                     float(r["similarity"])) for r in rows]


async def text_hits(conn: asyncpg.Connection, query: str, *, source: str | None, limit: int) -> list[ChunkHit]:
    """Full-text matches of any of the query's words (stemmed; stop words dropped), by ts_rank_cd.
    `knowledge_text_hits` (migration 0018) ranks a bounded set of candidates: the chunks of each
    word found in at most 50 of the chunks the tenant may read, and those with every word; a more
    common word only counts in the ranking."""
    rows = await conn.fetch("SELECT * FROM knowledge_text_hits($1, $2, $3)", query, source, limit)
    return [ChunkHit(r["id"], r["document_id"], r["chunk_index"], r["title"], r["content"], r["source"],
                     float(r["rank"])) for r in rows]


async def search_text(conn: asyncpg.Connection, query: str, *, limit: int = 3) -> list[KnowledgeHit]:
    """Full-text search alone, best matches first (retrieval with no embedding model)."""
    hits = await text_hits(conn, query, source=None, limit=limit)
    return [KnowledgeHit(h.title, h.text, h.source, h.score) for h in hits]


async def stale_orgs(conn: asyncpg.Connection, model: str) -> list[uuid.UUID | None]:
    """Orgs (None: the shared rows) with chunks not yet in `model`'s space, across every org."""
    return [r["org_id"] for r in await conn.fetch("SELECT org_id FROM knowledge_stale_orgs($1)", model)]


async def stale_chunks(conn: asyncpg.Connection, model: str, *, limit: int) -> list[ChunkRow]:
    """The caller's org's chunks not in `model`'s space (the shared ones for role platform)."""
    rows = await conn.fetch(
        "SELECT id, chunk_index, content, embedding_model FROM knowledge_base"
        " WHERE embedding_model IS DISTINCT FROM $1 AND org_id IS NOT DISTINCT FROM app_org_id()"
        " ORDER BY id LIMIT $2", model, limit)
    return [ChunkRow(r["id"], r["chunk_index"], r["content"], r["embedding_model"]) for r in rows]


async def set_embeddings(conn: asyncpg.Connection, model: str,
                         vectors: Sequence[tuple[uuid.UUID, Sequence[float]]]) -> None:
    await conn.executemany(
        "UPDATE knowledge_base SET embedding = $2::vector, embedding_model = $3, updated_at = now() WHERE id = $1",
        [(chunk_id, _vector(v), model) for chunk_id, v in vectors])


async def enqueue_reembed(conn: asyncpg.Connection, org_id: uuid.UUID, *, kind: str, model: str) -> uuid.UUID | None:
    """Queues the org's re-embedding job (`kind`) unless one is queued or running already; None
    then. A transaction-scoped advisory lock per org makes the check and the insert one step across
    instances (a dedupe key would not do: it is unique for ever, and an org goes stale again)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{kind}:{org_id}")
    pending = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = $1 AND org_id = $2 AND status IN ('queued', 'running'))",
        kind, org_id)
    if pending:
        return None
    return await enqueue_job(conn, org_id, kind, {"model": model})
