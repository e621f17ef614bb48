"""The local embedder: all-MiniLM-L6-v2 in the shared inference pool (queries on the live lane,
documents in the background lane, so calls keep their latency while a playbook is ingested)."""

from __future__ import annotations

from collections.abc import Sequence

from coaching.providers.embeddings.minilm import DIMENSIONS, MODEL_NAME, load_minilm
from coaching.providers.inference import InferencePool

__all__ = ["LocalEmbedder"]


_CACHE_SIZE = 4096
_cache: dict[str, list[float]] = {}  # text -> vector: the starter playbook is embedded once per process


def _encode(texts: Sequence[str]) -> list[list[float]]:
    missing = list(dict.fromkeys(t for t in texts if t not in _cache))
    if missing:
        for text, vector in zip(missing, load_minilm().encode(missing).tolist(), strict=True):
            if len(_cache) >= _CACHE_SIZE:
                _cache.pop(next(iter(_cache)))
            _cache[text] = vector
    return [_cache.get(t) or load_minilm().encode([t])[0].tolist() for t in texts]


class LocalEmbedder:
    """Args:
        pool: the process's inference pool.
    """

    def __init__(self, pool: InferencePool) -> None:
        self._pool = pool

    @property
    def model(self) -> str:
        return MODEL_NAME

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    def warm_up(self) -> None:
        load_minilm()

    async def embed_query(self, text: str) -> list[float]:
        return (await self._pool.run(_encode, [text]))[0]

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return await self._pool.run_background(_encode, list(texts))
