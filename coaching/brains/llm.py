"""The LLM persona: OpenAI-compatible streaming chat completions, with a breaker and a fallback.

OpenRouter is the primary when its key is set (as the original service did), OpenAI the other;
a primary that keeps failing is skipped for a while and the fallback answers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence

import msgspec
import openai
from openai.types.chat import ChatCompletionMessageParam

from coaching.brains.base import Reply, Turn
from coaching.errors import ProviderUnavailable
from coaching.persona import Persona
from coaching.providers.breaker import CircuitBreaker

__all__ = ["END_MARKER", "LlmBackend", "LlmBrain", "system_prompt"]

END_MARKER = "<end_call>"
log = logging.getLogger(__name__)


class LlmBackend(msgspec.Struct):
    name: str
    client: openai.AsyncOpenAI
    model: str


def system_prompt(persona: Persona) -> str:
    lines = [
        f"You are {persona.name}, {persona.title} at {persona.company} ({persona.industry}).",
        f"A sales rep is calling you. Situation: {persona.situation}",
        f"Personality: {persona.personality}",
        "Your goals: " + "; ".join(persona.goals) + ".",
        "Pains you have, revealed only when the rep earns them with good discovery questions:",
        *[f"- {p.reveal}" for p in persona.pains],
        "Objections you raise when their trigger comes up, until the rep answers them well:",
        *[f"- when {', '.join(o.triggers[:4])} comes up: {o.text}" for o in persona.objections],
        f"Agree to a next step only after at least {persona.next_step.min_pains} of your pains came out and your"
        f" objections were handled; then say something like: {persona.next_step.accept}",
        "Speak as on a phone call: one to three short sentences, no lists, no stage directions.",
        f"When the call is over, say goodbye and end your reply with {END_MARKER}.",
    ]
    return "\n".join(lines)


def _messages(persona: Persona, history: Sequence[Turn]) -> list[ChatCompletionMessageParam]:
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": system_prompt(persona)}]
    for turn in history:
        if turn.speaker == "rep":
            messages.append({"role": "user", "content": turn.text})
        else:
            messages.append({"role": "assistant", "content": turn.text})
    return messages


class LlmBrain:
    """Args:
        backends: the primary first, then fallbacks.
        breaker_threshold: consecutive failures before a backend is skipped.
        breaker_reset_s: how long it is skipped before a trial.
    """

    def __init__(
        self, backends: Sequence[LlmBackend], *, breaker_threshold: int = 3, breaker_reset_s: float = 30.0
    ) -> None:
        if not backends:
            raise ValueError("LlmBrain needs at least one backend")
        self._backends = list(backends)
        self._breakers = {b.name: CircuitBreaker(failure_threshold=breaker_threshold, reset_after_s=breaker_reset_s)
                          for b in backends}

    def breaker_state(self, name: str) -> str:
        return self._breakers[name].state

    def respond(self, persona: Persona, history: Sequence[Turn]) -> Reply:
        def mark_end() -> None:
            reply.end_call = True

        reply = Reply(self._stream(persona, history, mark_end))
        return reply

    async def _stream(
        self, persona: Persona, history: Sequence[Turn], mark_end: Callable[[], None]
    ) -> AsyncIterator[str]:
        messages = _messages(persona, history)
        failures: list[str] = []
        for backend in self._backends:
            breaker = self._breakers[backend.name]
            if not breaker.allow() and backend is not self._backends[-1]:
                continue
            started = False
            try:
                stream = await backend.client.chat.completions.create(
                    model=backend.model, messages=messages, stream=True, temperature=0.7, max_tokens=200,
                )
                pending = ""
                async for chunk in stream:
                    delta = chunk.choices[0].delta.content if chunk.choices else None
                    if not delta:
                        continue
                    pending += delta
                    # Hold back a possible partial end marker; release the rest.
                    keep = max((i for i in range(1, len(END_MARKER)) if pending.endswith(END_MARKER[:i])), default=0)
                    text, pending = pending[: len(pending) - keep], pending[len(pending) - keep:]
                    if END_MARKER in text:
                        text = text.replace(END_MARKER, "")
                        mark_end()
                    if text:
                        started = True
                        yield text
                if END_MARKER in pending:
                    mark_end()
                elif pending:
                    yield pending
                breaker.record_success()
                return
            except openai.OpenAIError as exc:
                breaker.record_failure()
                failures.append(f"{backend.name}: {type(exc).__name__}")
                log.warning("llm backend failed", extra={"backend": backend.name, "error": type(exc).__name__})
                if started:  # half a reply cannot be finished by another model
                    raise ProviderUnavailable("the persona's language model failed mid-reply") from exc
        raise ProviderUnavailable("the persona's language model is unavailable (" + "; ".join(failures) + ")")
