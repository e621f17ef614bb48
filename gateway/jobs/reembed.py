"""The `reembed_knowledge` job: one organization's knowledge chunks that are not in the current
embedding model's space get a vector of it (after EMBEDDINGS changed, or an ingest whose embedding
failed). `KnowledgeBase.schedule_reembed` queues it; a model failure fails the attempt, and the
runner retries it with backoff (the batches already stored stay)."""

from __future__ import annotations

from gateway.jobs.runner import JobContext
from gateway.knowledge.service import REEMBED_KIND, KnowledgeBase

__all__ = ["ReembedKnowledge"]


class ReembedKnowledge:
    kind = REEMBED_KIND

    def __init__(self, knowledge: KnowledgeBase) -> None:
        self.knowledge = knowledge

    async def __call__(self, context: JobContext) -> None:
        """Re-embeds with the model configured now, whichever the job was queued for: after a
        second switch the stale chunks are those of both older models."""
        model = self.knowledge.model
        if model is None:
            return  # EMBEDDINGS=off now: full text alone, nothing to embed

        async def on_batch(done: int) -> None:
            await context.progress({"stage": "reembedding", "model": model, "chunks": done})

        done = await self.knowledge.reembed_tenant(context.tenant, on_batch=on_batch)
        await context.progress({"stage": "done", "model": model, "chunks": done})
