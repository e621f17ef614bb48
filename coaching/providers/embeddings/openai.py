"""OpenAI `text-embedding-3-small` (1536-d), OpenRouter first when configured (as the original
service did), then OpenAI; a backend that keeps failing is skipped for a while."""

from __future__ import annotations

from collections.abc import Sequence

import openai

from coaching.errors import ProviderUnavailable
from coaching.providers.breaker import CircuitBreaker

__all__ = ["EMBEDDING_MODEL", "OpenAIEmbedder"]

EMBEDDING_MODEL = "text-embedding-3-small"
_BATCH = 64


class OpenAIEmbedder:
    """Args:
        backends: (name, client, model id at that endpoint), the primary first.
        breaker_threshold: consecutive failures before a backend is skipped.
        breaker_reset_s: how long it is skipped before a trial.
    """

    def __init__(self, backends: Sequence[tuple[str, openai.AsyncOpenAI, str]], *, breaker_threshold: int = 3,
                 breaker_reset_s: float = 30.0) -> None:
        if not backends:
            raise ValueError("OpenAIEmbedder needs at least one backend")
        self._backends = list(backends)
        self.breakers = {name: CircuitBreaker(failure_threshold=breaker_threshold, reset_after_s=breaker_reset_s)
                         for name, _, _ in backends}

    @property
    def model(self) -> str:
        return EMBEDDING_MODEL

    @property
    def dimensions(self) -> int:
        return 1536

    async def embed_query(self, text: str) -> list[float]:
        return (await self._embed([text]))[0]

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), _BATCH):
            out += await self._embed(list(texts[i:i + _BATCH]))
        return out

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        failures = []
        for i, (name, client, model) in enumerate(self._backends):
            breaker = self.breakers[name]
            if not breaker.allow() and i < len(self._backends) - 1:
                continue
            try:
                answer = await client.embeddings.create(model=model, input=texts)
            except (openai.OpenAIError, OSError) as exc:
                breaker.record_failure()
                failures.append(f"{name}: {type(exc).__name__}")
                continue
            breaker.record_success()
            return [list(d.embedding) for d in sorted(answer.data, key=lambda d: d.index)]
        raise ProviderUnavailable("embeddings are unavailable (" + "; ".join(failures or ["skipped"]) + ")")
