"""Knowledge retrieval at scale: 100,000 chunks with synthetic 384-d embeddings (the local model's
space) and synthetic text in the embedded Postgres, searched as the API searches them
(`KnowledgeBase.search`: `match_knowledge` (HNSW, cosine) and full text, fused by reciprocal rank;
role sparring_app, row-level security on, an org's rows plus the shared ones); and the local
embedding model's throughput.

    .venv/bin/python bench/knowledge.py [--chunks N] [--queries Q] [--quick]

Vectors are clustered (200 topics, noise around each) so that neighbours mean something; 10% of
the rows belong to another org (never returned). A chunk's text is ~80 words: 50 drawn from 3,000
common words by Zipf's law (the commonest is in nearly every chunk) and 30 from its topic's 40.
Each query is a perturbed stored vector with two words of its topic and two common ones. Prints
the hybrid search's p50/p95 (ms; the query's embedding is not timed: it is given, as a stub
embedder's answer), the vector search's alone (`match_knowledge`, 10 rows) and its recall@10
against exact search (numpy over the rows the org may read); targets p95 <= 15 ms and recall@10
>= 0.95. Then chunks per second of all-MiniLM-L6-v2 on starter-playbook-sized chunks (~100
words), as the gateway runs it (one BLAS thread: `coaching` sets OPENBLAS_NUM_THREADS=1, and this
file imports it before numpy) and, in a child process, with a BLAS thread per core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# coaching first: it sets the gateway's BLAS threading (one thread), read when numpy loads.
import coaching  # noqa: E402,F401

# isort: split
import asyncpg  # noqa: E402
import numpy as np  # noqa: E402
from pgvector.asyncpg import register_vector  # noqa: E402

from coaching.knowledge import chunk_text  # noqa: E402
from coaching.providers.embeddings.minilm import MODEL_NAME, load_minilm  # noqa: E402
from gateway.knowledge.service import KnowledgeBase  # noqa: E402
from storage.database import create_pool  # noqa: E402
from storage.embedded import start_embedded_postgres  # noqa: E402
from storage.knowledge import vector_hits  # noqa: E402
from storage.migrate import migrate  # noqa: E402
from storage.tenancy import Tenant, tenant_tx  # noqa: E402

TARGET_P95_MS = 15.0
TARGET_RECALL = 0.95
DIMS = 384


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


TOPICS = 200
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "da", "gri", "fen", "bol", "mar", "sti",
             "qua", "zen", "tor", "lix", "bra"]


def synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around TOPICS centres, and each one's topic."""
    centres = rng.normal(size=(TOPICS, DIMS)).astype(np.float32)
    topics = rng.integers(0, TOPICS, n)
    vectors = centres[topics] + rng.normal(scale=0.6, size=(n, DIMS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), topics


class Vocabulary:
    """Made-up words (none an English stop word): 3,000 common ones, used by Zipf's law, and 40
    for each topic (drawn from 3,000 more, so topics share some)."""

    def __init__(self, rng: np.random.Generator) -> None:
        made: set[str] = set()
        while len(made) < 6000:
            made.add("".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 4)))))
        pool = sorted(made)
        rng.shuffle(pool)
        self.common = pool[:3000]
        weights = 1.0 / np.arange(1, 3001)
        self.zipf = weights / weights.sum()
        self.topic = [list(rng.choice(pool[3000:], 40, replace=False)) for _ in range(TOPICS)]

    def chunk(self, topic: int, rng: np.random.Generator) -> str:
        words = list(rng.choice(self.common, 50, p=self.zipf)) + list(rng.choice(self.topic[topic], 30))
        rng.shuffle(words)
        return " ".join(words)

    def query(self, topic: int, rng: np.random.Generator) -> str:
        return " ".join(list(rng.choice(self.topic[topic], 2)) + list(rng.choice(self.common, 2, p=self.zipf)))


class GivenVectors:
    """An embedder whose query vectors are given in advance (the search, not the model, is timed)."""

    model, dimensions = MODEL_NAME, DIMS

    def __init__(self) -> None:
        self.next: list[float] = []

    async def embed_query(self, text: str) -> list[float]:
        return self.next

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        raise NotImplementedError


async def load(dsn: str, vectors: np.ndarray, texts: list[str], org: uuid.UUID, other: uuid.UUID) -> np.ndarray:
    """Stores the rows (index dropped while copying, built after, as a bulk load would); returns
    which rows the org may read."""
    conn = await asyncpg.connect(dsn)
    await register_vector(conn)
    await conn.execute("INSERT INTO organizations (id, name) VALUES ($1, 'bench'), ($2, 'other')", org, other)
    owners = [other if i % 10 == 9 else org for i in range(len(vectors))]
    await conn.execute("DROP INDEX knowledge_base_minilm_idx")
    await conn.copy_records_to_table(
        "knowledge_base",
        columns=["org_id", "source", "title", "content", "chunk_index", "embedding", "embedding_model"],
        records=[(owners[i], "bench", f"doc {i // 20}", texts[i], i % 20, vectors[i], MODEL_NAME)
                 for i in range(len(vectors))])
    started = time.monotonic()
    await conn.execute("SET maintenance_work_mem = '512MB'")
    await conn.execute("CREATE INDEX knowledge_base_minilm_idx ON knowledge_base USING hnsw"
                       " ((embedding::vector(384)) vector_cosine_ops) WHERE embedding_model = 'all-MiniLM-L6-v2'")
    print(f"HNSW index over {len(vectors):,} rows built in {time.monotonic() - started:.1f} s")
    # As autovacuum does within a minute of a bulk load: a search timed before it pays for setting
    # every visited row's hint bits and finds no visibility map (twice the hybrid p95 here).
    await conn.execute("VACUUM (ANALYZE) knowledge_base")
    await conn.close()
    return np.array([o == org for o in owners])


async def search_bench(dsn: str, vectors: np.ndarray, topics: np.ndarray, texts: list[str], words: Vocabulary,
                       visible: np.ndarray, org: uuid.UUID, queries: int, rng: np.random.Generator) -> None:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    tenant = Tenant(org_id=org, role="system")
    embedder = GivenVectors()
    knowledge = KnowledgeBase(pool, embedder)
    picks = rng.integers(0, len(vectors), queries)
    qs = vectors[picks] + rng.normal(scale=0.02, size=(queries, DIMS)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    questions = [words.query(int(topics[p]), rng) for p in picks]
    readable = np.flatnonzero(visible)
    hybrid, vector, recalls = [], [], []
    async with tenant_tx(pool, tenant) as conn:  # warm-up: the indexes' pages into the cache
        for q, question in zip(qs[:20], questions[:20], strict=True):
            embedder.next = q.tolist()
            await knowledge.search(conn, question)
    first_pass: list[float] = []
    for q, question in zip(qs, questions, strict=True):  # first pass: most pages not yet in shared buffers
        embedder.next = q.tolist()
        async with tenant_tx(pool, tenant) as conn:
            started = time.perf_counter()
            await knowledge.search(conn, question)
            first_pass.append((time.perf_counter() - started) * 1000)
    for q, question in zip(qs, questions, strict=True):
        embedder.next = q.tolist()
        async with tenant_tx(pool, tenant) as conn:  # as the API: GET /api/knowledge/search, limit 5
            started = time.perf_counter()
            _, mode = await knowledge.search(conn, question)
            hybrid.append((time.perf_counter() - started) * 1000)
        assert mode == "hybrid"
        async with tenant_tx(pool, tenant) as conn:
            started = time.perf_counter()
            hits = await vector_hits(conn, embedder.next, model=MODEL_NAME, source=None, limit=10)
            vector.append((time.perf_counter() - started) * 1000)
        exact = readable[np.argsort(-(vectors[readable] @ q))[:10]]
        expected = {texts[i] for i in exact}
        recalls.append(len(expected & {h.text for h in hits}) / 10)
    await pool.close()
    recall = float(np.mean(recalls))
    print(f"hybrid search over {len(vectors):,} chunks, {queries} queries, first pass (buffers filling): p50"
          f" {pct(first_pass, 50):.2f} ms, p95 {pct(first_pass, 95):.2f} ms")
    print(f"hybrid search over {len(vectors):,} chunks, {queries} queries, warm: p50 {pct(hybrid, 50):.2f} ms,"
          f" p95 {pct(hybrid, 95):.2f} ms (target <= {TARGET_P95_MS})")
    print(f"vector search alone: p50 {pct(vector, 50):.2f} ms, p95 {pct(vector, 95):.2f} ms,"
          f" recall@10 {recall:.3f} (target >= {TARGET_RECALL})")


def embed_bench(batches: int, label: str) -> None:
    text = (ROOT / "gateway" / "knowledge" / "starter_playbook.md").read_text()
    chunks = [c.text for c in chunk_text(text, max_tokens=400, overlap_tokens=50)]
    model = load_minilm()
    model.encode(chunks[:2])
    started_cpu, started = time.process_time(), time.monotonic()
    for _ in range(batches):
        model.encode(chunks)
    wall = time.monotonic() - started
    n = batches * len(chunks)
    words = sum(len(c.split()) for c in chunks) / len(chunks)
    print(f"local embedding ({MODEL_NAME}, {model.nbytes / 1e6:.0f} MB of weights), {label}: {n / wall:.1f}"
          f" chunks/s (~{words:.0f} words each; CPU {time.process_time() - started_cpu:.1f} s over {wall:.1f} s wall)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="10,000 chunks, 50 queries, one embedding batch")
    parser.add_argument("--embed-only", type=int, metavar="BATCHES", help=argparse.SUPPRESS)
    args = parser.parse_args()
    threads = os.environ.get("OPENBLAS_NUM_THREADS")
    if args.embed_only:
        embed_bench(args.embed_only, f"OPENBLAS_NUM_THREADS={threads}")
        return
    if args.quick:
        args.chunks, args.queries = 10_000, 50
    rng = np.random.default_rng(7)
    batches = 1 if args.quick else 4
    # First: stopping the embedded server can wait on its lock.
    embed_bench(batches, f"as the gateway runs it (OPENBLAS_NUM_THREADS={threads})")
    cores = str(os.cpu_count() or 1)
    subprocess.run([sys.executable, __file__, "--embed-only", str(batches)], check=True,
                   env={**os.environ, "OPENBLAS_NUM_THREADS": cores})
    server_url, server = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="sparring-bench-kb-")) / "data")
    try:
        admin = await asyncpg.connect(server_url)
        await admin.execute('CREATE DATABASE "bench_knowledge"')
        await admin.close()
        dsn = urlunsplit(urlsplit(server_url)._replace(path="/bench_knowledge"))
        conn = await asyncpg.connect(dsn)
        await migrate(conn)
        await conn.close()
        vectors, topics = synthetic(args.chunks, rng)
        words = Vocabulary(rng)
        texts = [words.chunk(int(t), rng) for t in topics]
        org, other = uuid.uuid4(), uuid.uuid4()
        visible = await load(dsn, vectors, texts, org, other)
        await search_bench(dsn, vectors, topics, texts, words, visible, org, args.queries, rng)
    finally:
        server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
