"""Knowledge retrieval at scale: 100,000 chunks with synthetic 384-d embeddings (the local model's
space) in the embedded Postgres, searched through `match_knowledge` (HNSW, cosine) as the app
searches them (role sparring_app, row-level security on, an org's rows plus the shared ones);
and the local embedding model's throughput.

    .venv/bin/python bench/knowledge.py [--chunks N] [--queries Q] [--quick]

Vectors are clustered (200 topics, noise around each) so that neighbours mean something; 10% of
the rows belong to another org (never returned). Each query is a perturbed stored vector. Prints
search p50/p95 (ms) and recall@10 against exact search (numpy over the rows the org may read);
targets p95 <= 15 ms and recall@10 >= 0.95. Then chunks per second of all-MiniLM-L6-v2 on
starter-playbook-sized chunks (~100 words).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coaching.knowledge import chunk_text  # noqa: E402
from coaching.providers.embeddings.minilm import MODEL_NAME, load_minilm  # noqa: E402
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


def synthetic(n: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.normal(size=(200, DIMS)).astype(np.float32)
    vectors = centres[rng.integers(0, 200, n)] + rng.normal(scale=0.6, size=(n, DIMS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def load(dsn: str, vectors: np.ndarray, org: uuid.UUID, other: uuid.UUID) -> np.ndarray:
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
        records=[(owners[i], "bench", f"doc {i // 20}", f"chunk {i}", i % 20, vectors[i], MODEL_NAME)
                 for i in range(len(vectors))])
    started = time.monotonic()
    await conn.execute("SET maintenance_work_mem = '512MB'")
    await conn.execute("CREATE INDEX knowledge_base_minilm_idx ON knowledge_base USING hnsw"
                       " ((embedding::vector(384)) vector_cosine_ops) WHERE embedding_model = 'all-MiniLM-L6-v2'")
    print(f"HNSW index over {len(vectors):,} rows built in {time.monotonic() - started:.1f} s")
    await conn.execute("ANALYZE knowledge_base")
    await conn.close()
    return np.array([o == org for o in owners])


async def search_bench(dsn: str, vectors: np.ndarray, visible: np.ndarray, org: uuid.UUID, queries: int,
                       rng: np.random.Generator) -> None:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    tenant = Tenant(org_id=org, role="system")
    picks = rng.integers(0, len(vectors), queries)
    qs = vectors[picks] + rng.normal(scale=0.02, size=(queries, DIMS)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    readable = np.flatnonzero(visible)
    latencies, recalls = [], []
    async with tenant_tx(pool, tenant) as conn:  # warm-up: the index's pages into the cache
        for q in qs[:20]:
            await vector_hits(conn, q.tolist(), model=MODEL_NAME, source=None, limit=10)
    for q in qs:
        async with tenant_tx(pool, tenant) as conn:
            started = time.perf_counter()
            hits = await vector_hits(conn, q.tolist(), model=MODEL_NAME, source=None, limit=10)
            latencies.append((time.perf_counter() - started) * 1000)
        exact = readable[np.argsort(-(vectors[readable] @ q))[:10]]
        expected = {f"chunk {i}" for i in exact}
        recalls.append(len(expected & {h.text for h in hits}) / 10)
    await pool.close()
    p50, p95, recall = pct(latencies, 50), pct(latencies, 95), float(np.mean(recalls))
    print(f"search over {len(vectors):,} chunks, {queries} queries: p50 {p50:.2f} ms, p95 {p95:.2f} ms"
          f" (target <= {TARGET_P95_MS}), recall@10 {recall:.3f} (target >= {TARGET_RECALL})")


def embed_bench(batches: int) -> None:
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
    print(f"local embedding ({MODEL_NAME}, {model.nbytes / 1e6:.0f} MB of weights): {n / wall:.1f} chunks/s"
          f" (~{words:.0f} words each; CPU {time.process_time() - started_cpu:.1f} s over {wall:.1f} s wall)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="10,000 chunks, 50 queries, one embedding batch")
    args = parser.parse_args()
    if args.quick:
        args.chunks, args.queries = 10_000, 50
    rng = np.random.default_rng(7)
    embed_bench(1 if args.quick else 4)  # first: stopping the embedded server can wait on its lock
    server_url, server = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="sparring-bench-kb-")) / "data")
    try:
        admin = await asyncpg.connect(server_url)
        await admin.execute('CREATE DATABASE "bench_knowledge"')
        await admin.close()
        dsn = urlunsplit(urlsplit(server_url)._replace(path="/bench_knowledge"))
        conn = await asyncpg.connect(dsn)
        await migrate(conn)
        await conn.close()
        vectors = synthetic(args.chunks, rng)
        org, other = uuid.uuid4(), uuid.uuid4()
        visible = await load(dsn, vectors, org, other)
        await search_bench(dsn, vectors, visible, org, args.queries, rng)
    finally:
        server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
