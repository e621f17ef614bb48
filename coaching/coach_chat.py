"""The coaching chat's answers: a prompt from the retrieved passages (numbered for citations)
and, when asked about a call, its transcript, metrics and scorecard; streamed from the LLM with a
breaker per backend (OpenRouter first, then OpenAI), or assembled from the passages alone."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Literal

import msgspec
import openai
from openai.types.chat import ChatCompletionMessageParam

from coaching.brains.llm import LlmBackend
from coaching.errors import ProviderUnavailable
from coaching.providers.breaker import CircuitBreaker

__all__ = ["CallContext", "ChatTurn", "CoachChat", "Passage", "build_messages"]

log = logging.getLogger(__name__)
_MAX_TRANSCRIPT_CHARS = 12_000


class ChatTurn(msgspec.Struct, frozen=True):
    role: Literal["user", "assistant"]
    content: str


class Passage(msgspec.Struct, frozen=True):
    n: int  # the citation number, [n] in the answer
    title: str | None
    text: str


class CallContext(msgspec.Struct, frozen=True):
    """The call a question is about: "Rep:"/"Buyer:" lines, metric summaries, the scorecard's text."""

    persona: str
    transcript: list[str]
    metrics: list[str]
    scorecard: list[str]


def _system(passages: Sequence[Passage], call: CallContext | None) -> str:
    lines = [
        "You are Sparring's sales coach. You help a sales rep get better at calls: discovery, objection handling,"
        " qualification, closing. Answer briefly and concretely, with phrases the rep can say.",
        "Ground your answer in the numbered playbook passages below and cite them as [n] right after the claim"
        " they support. If the passages do not cover the question, say so and give general advice without a"
        " citation. Never invent a citation number.",
        "",
        "Playbook passages:",
    ]
    lines += [f"[{p.n}] {p.title + ': ' if p.title else ''}{' '.join(p.text.split())}" for p in passages] or ["(none)"]
    if call is not None:
        transcript = "\n".join(call.transcript)
        if len(transcript) > _MAX_TRANSCRIPT_CHARS:
            transcript = transcript[-_MAX_TRANSCRIPT_CHARS:]  # the end of a long call matters most here
        lines += ["", f"The rep is asking about one of their practice calls, with {call.persona}.",
                  "Transcript:", transcript or "(empty)", "Metrics:", *(call.metrics or ["(none)"]),
                  "Scorecard:", *(call.scorecard or ["(not scored yet)"]),
                  "Quote the transcript when you refer to a moment in the call."]
    return "\n".join(lines)


def build_messages(turns: Sequence[ChatTurn], passages: Sequence[Passage],
                   call: CallContext | None) -> list[ChatCompletionMessageParam]:
    """The system prompt, then the conversation as the user and assistant said it."""
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": _system(passages, call)}]
    for turn in turns:
        if turn.role == "user":
            messages.append({"role": "user", "content": turn.content})
        else:
            messages.append({"role": "assistant", "content": turn.content})
    return messages


class CoachChat:
    """Args:
        backends: the primary first, then fallbacks (empty: `stream` always raises).
        breaker_threshold: consecutive failures before a backend is skipped.
        breaker_reset_s: how long it is skipped before a trial.
    """

    def __init__(self, backends: Sequence[LlmBackend], *, breaker_threshold: int = 3,
                 breaker_reset_s: float = 30.0) -> None:
        self._backends = list(backends)
        self.breakers = {b.name: CircuitBreaker(failure_threshold=breaker_threshold, reset_after_s=breaker_reset_s)
                         for b in backends}

    @property
    def available(self) -> bool:
        return bool(self._backends)

    async def stream(self, messages: list[ChatCompletionMessageParam]) -> AsyncIterator[tuple[str, str]]:
        """(backend name, text delta) pairs. A backend that fails before its first delta hands
        over to the next; one that fails after it ends the answer there.

        Raises:
            ProviderUnavailable: no backend answered.
        """
        failures: list[str] = []
        for i, backend in enumerate(self._backends):
            breaker = self.breakers[backend.name]
            if not breaker.allow() and i < len(self._backends) - 1:
                failures.append(f"{backend.name}: circuit open")
                continue
            started = False
            try:
                stream = await backend.client.chat.completions.create(
                    model=backend.model, messages=messages, stream=True, temperature=0.3, max_tokens=600)
                async for chunk in stream:
                    delta = chunk.choices[0].delta.content if chunk.choices else None
                    if delta:
                        started = True
                        yield backend.name, delta
            except (openai.OpenAIError, OSError) as exc:
                breaker.record_failure()
                log.warning("coach chat backend failed", extra={"backend": backend.name, "error": type(exc).__name__})
                if started:
                    return
                failures.append(f"{backend.name}: {type(exc).__name__}")
                continue
            breaker.record_success()
            return
        raise ProviderUnavailable("no LLM answered (" + "; ".join(failures or ["none configured"]) + ")")
