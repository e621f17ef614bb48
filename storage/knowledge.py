"""Searching the knowledge base (the org's entries and the shared ones, by row-level security)."""

from __future__ import annotations

import asyncpg
import msgspec

__all__ = ["KnowledgeHit", "search_text"]


class KnowledgeHit(msgspec.Struct, frozen=True):
    title: str | None
    content: str
    source: str
    rank: float


async def search_text(conn: asyncpg.Connection, query: str, *, limit: int = 3) -> list[KnowledgeHit]:
    """Full-text search (used until the entries have embeddings): best matches first."""
    rows = await conn.fetch(
        """
        SELECT title, content, source, ts_rank(tsv, q) AS rank
        FROM knowledge_base, websearch_to_tsquery('english', $1) AS q
        WHERE tsv @@ q ORDER BY rank DESC, id LIMIT $2
        """, query, limit)
    return [KnowledgeHit(r["title"], r["content"], r["source"], float(r["rank"])) for r in rows]
