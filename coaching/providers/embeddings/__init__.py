"""Text embeddings for the knowledge base: the `Embedder` role and its providers (local, openai)."""
