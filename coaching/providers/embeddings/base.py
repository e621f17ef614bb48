"""The embeddings role: texts in, unit-length vectors out, tagged with the model that made them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["Embedder"]


class Embedder(Protocol):
    """One embedding model. Vectors of different models are never compared with each other."""

    @property
    def model(self) -> str:
        """The model's name, stored with every chunk it embedded."""
        ...

    @property
    def dimensions(self) -> int:
        """The length of every vector it returns."""
        ...

    async def embed_query(self, text: str) -> list[float]:
        """One search query's vector, on the fast lane (a user is waiting)."""
        ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Document chunks' vectors, in order; background work that yields to live calls."""
        ...
