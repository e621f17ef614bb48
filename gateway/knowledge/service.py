"""The knowledge base as the app uses it: ingest (chunk, embed, store), hybrid search (vector and
full text fused by reciprocal rank), the starter playbook, and background re-embedding of chunks
whose model is not the current one. The search API, the VAPI tool and the chat share `search`."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import asyncpg
import msgspec

from coaching.coach_chat import Passage
from coaching.errors import Overloaded, ProviderUnavailable
from coaching.knowledge import chunk_text, fuse
from coaching.llm_hints import Retriever
from coaching.providers.embeddings.base import Embedder
from storage import knowledge as store
from storage.database import acquire
from storage.tenancy import Tenant, tenant_tx

__all__ = ["REEMBED_KIND", "STARTER_SOURCE", "Ingested", "KnowledgeBase", "SearchItem", "SearchMode"]

log = logging.getLogger(__name__)

STARTER_SOURCE = "sparring-starter-playbook"
STARTER_PATH = Path(__file__).with_name("starter_playbook.md")
CANDIDATES = 40  # each search's depth before fusion
REEMBED_BATCH = 32
REEMBED_KIND = "reembed_knowledge"  # the job (gateway/jobs/reembed.py) that re-embeds one org's chunks
SearchMode = Literal["hybrid", "lexical"]


class SearchItem(msgspec.Struct, frozen=True):
    """One chunk, best first: `chunk_index` is its place in the document (0-based)."""

    chunk_id: uuid.UUID
    document_id: uuid.UUID | None
    title: str | None
    text: str
    source: str
    chunk_index: int
    score: float
    vector_rank: int | None
    text_rank: int | None


class Ingested(msgspec.Struct, frozen=True):
    id: uuid.UUID
    chunks: int
    model: str | None


class KnowledgeBase:
    """Args:
        pool: the app's pool.
        embedder: the current embedding model; None for full-text search only.
        chunk_tokens: the size of a chunk (estimated tokens).
    """

    def __init__(self, pool: asyncpg.Pool, embedder: Embedder | None, *, chunk_tokens: int = 400) -> None:
        self._pool, self.embedder, self._chunk_tokens = pool, embedder, chunk_tokens
        self._stale = asyncio.Event()

    @property
    def model(self) -> str | None:
        return self.embedder.model if self.embedder is not None else None

    async def search(self, conn: asyncpg.Connection, query: str, *, source: str | None = None,
                     limit: int = 5) -> tuple[list[SearchItem], SearchMode]:
        """The best chunks for `query` that the connection's tenant may read, and whether vectors
        took part (no model, or the model failing, leaves full text alone)."""
        query = " ".join(query.split())[:1000]
        vector: list[store.ChunkHit] = []
        mode: SearchMode = "lexical"
        if self.embedder is not None and query:
            try:
                embedding = await self.embedder.embed_query(query)
            except (ProviderUnavailable, Overloaded) as exc:
                log.warning("query embedding failed; full-text search only", extra={"error": str(exc)})
            else:
                vector = await store.vector_hits(conn, embedding, model=self.embedder.model, source=source,
                                                 limit=CANDIDATES)
                mode = "hybrid"
        text = await store.text_hits(conn, query, source=source, limit=CANDIDATES) if query else []
        hits = {h.id: h for h in text} | {h.id: h for h in vector}
        fused = fuse([str(h.id) for h in vector], [str(h.id) for h in text])[:limit]
        items = []
        for ranked in fused:
            hit = hits[uuid.UUID(ranked.key)]
            items.append(SearchItem(hit.id, hit.document_id, hit.title, hit.text, hit.source, hit.chunk_index,
                                    round(ranked.score, 6), ranked.vector_rank, ranked.text_rank))
        return items, mode

    def retriever(self, org_id: uuid.UUID) -> Retriever:
        """`search` for one organization's live call, as the LLM hints use it: its own
        transaction as role system (the org's rows and the shared ones)."""
        tenant = Tenant(org_id=org_id, role="system")

        async def retrieve(query: str, *, limit: int) -> list[Passage]:
            try:
                async with tenant_tx(self._pool, tenant) as conn:
                    items, _ = await self.search(conn, query, limit=limit)
            except (OSError, asyncpg.PostgresError) as exc:
                raise ProviderUnavailable(f"knowledge search failed ({type(exc).__name__})") from exc
            return [Passage(n, item.title, item.text) for n, item in enumerate(items, 1)]

        return retrieve

    async def ingest(self, tenant: Tenant, *, title: str, source: str, kind: str, text: str, size_bytes: int,
                     created_by: uuid.UUID | None) -> Ingested:
        """Chunks, embeds (in the background lane) and stores a document. When embedding fails the
        chunks are stored without vectors, searchable by full text, and re-embedded later."""
        chunks = [c.text for c in chunk_text(text, max_tokens=self._chunk_tokens, overlap_tokens=50)]
        embeddings: list[list[float]] | None = None
        if self.embedder is not None:
            try:
                embeddings = await self.embedder.embed_documents(chunks)
            except (ProviderUnavailable, Overloaded) as exc:
                log.warning("embedding a document failed; it is re-embedded later", extra={"error": str(exc)})
                self._stale.set()
        model = self.model if embeddings is not None else None
        async with tenant_tx(self._pool, tenant) as conn:
            doc_id = await store.insert_document(conn, org_id=tenant.org_id, title=title, source=source, kind=kind,
                                                 size_bytes=size_bytes, created_by=created_by, chunks=chunks,
                                                 embeddings=embeddings, model=model)
        return Ingested(doc_id, len(chunks), model)

    async def load_starter(self) -> bool:
        """Loads the starter playbook into the shared knowledge base unless it is there already."""
        platform = Tenant(org_id=None, role="platform")
        async with tenant_tx(self._pool, platform) as conn:
            if await store.global_document_exists(conn, STARTER_SOURCE):
                return False
        text = STARTER_PATH.read_text(encoding="utf-8")
        try:
            await self.ingest(platform, title="Sparring starter sales playbook", source=STARTER_SOURCE,
                              kind="markdown", text=text, size_bytes=len(text.encode()), created_by=None)
        except asyncpg.UniqueViolationError:
            return False  # another instance loaded it at the same time
        return True

    async def reembed_tenant(self, tenant: Tenant, *,
                             on_batch: Callable[[int], Awaitable[None]] | None = None) -> int:
        """Gives every chunk of the tenant's (an org's; the shared ones for role platform) that is
        not in the current model's space a vector of it, in batches; returns how many. Searches
        meanwhile compare like with like: a chunk meets a query's vector only once it has one of
        the same model (until then full text finds it).

        Args:
            on_batch: awaited with the running count after each batch is stored.

        Raises:
            ProviderUnavailable, Overloaded: the model failed; the batches stored so far stay.
        """
        embedder = self.embedder
        if embedder is None:
            return 0
        done = 0
        while True:
            async with tenant_tx(self._pool, tenant) as conn:
                batch = await store.stale_chunks(conn, embedder.model, limit=REEMBED_BATCH)
            if not batch:
                return done
            vectors = await embedder.embed_documents([c.text for c in batch])
            async with tenant_tx(self._pool, tenant) as conn:
                await store.set_embeddings(conn, embedder.model, [(c.id, v) for c, v in zip(batch, vectors,
                                                                                             strict=True)])
            done += len(batch)
            if on_batch is not None:
                await on_batch(done)

    async def schedule_reembed(self) -> int:
        """Finds chunks not in the current model's space (after a model switch, or an ingest whose
        embedding failed): queues one `reembed_knowledge` job per org that has some (the job runner
        works them, on any instance) and re-embeds the shared rows here (a job belongs to an org).
        Returns how many jobs it queued."""
        embedder = self.embedder
        if embedder is None:
            return 0
        async with acquire(self._pool) as conn:
            orgs = await store.stale_orgs(conn, embedder.model)
        queued = 0
        for org in orgs:
            if org is None:
                try:
                    count = await self.reembed_tenant(Tenant(org_id=None, role="platform"))
                except (ProviderUnavailable, Overloaded) as exc:
                    log.warning("re-embedding the shared knowledge paused", extra={"error": str(exc)})
                    continue
                log.info("shared knowledge re-embedded", extra={"chunks": count, "model": embedder.model})
                continue
            async with tenant_tx(self._pool, Tenant(org_id=org, role="system")) as conn:
                if await store.enqueue_reembed(conn, org, kind=REEMBED_KIND, model=embedder.model) is not None:
                    queued += 1
        return queued

    async def run(self, *, load_starter: bool, every_s: float = 600.0) -> None:
        """The background loop: the starter playbook, then `schedule_reembed` now, after a
        failed ingest, and every `every_s`. Runs until cancelled."""
        if load_starter:
            try:
                await self.load_starter()
            except (OSError, asyncpg.PostgresError):
                log.exception("loading the starter playbook failed")
        while True:
            try:
                queued = await self.schedule_reembed()
                if queued:
                    log.info("knowledge re-embedding queued", extra={"orgs": queued, "model": self.model})
            except (OSError, asyncpg.PostgresError):
                log.exception("queueing knowledge re-embedding failed")
            self._stale.clear()
            try:
                async with asyncio.timeout(every_s):
                    await self._stale.wait()
            except TimeoutError:
                pass
