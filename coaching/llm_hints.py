"""Stage-aware coach hints from an LLM (optional; the rule hints in `hints.py` always run).

After a transcript final, at most once per `interval_s` per call and one request at a time, the
conversation so far goes to an OpenAI-compatible chat model with a JSON-schema response format;
it answers with the call's stage and at most one short hint. The call's HintEngine then applies
the same debounce as for rule hints, so an LLM hint never crowds the rules out. With a `Retriever`
(the knowledge base's search, injected by the gateway), the playbook passages that best match the
buyer's latest turn go into the prompt too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Literal, Protocol

import msgspec
import openai
from openai.types.chat import ChatCompletionMessageParam

from coaching.brains.base import Turn
from coaching.brains.llm import LlmBackend
from coaching.coach_chat import Passage
from coaching.errors import ProviderUnavailable
from coaching.persona import Persona
from coaching.providers.breaker import CircuitBreaker

__all__ = ["LlmHintSuggestion", "LlmHinter", "Retriever", "STAGES", "latest_buyer_turn"]

log = logging.getLogger(__name__)
STAGES = ("opening", "discovery", "presentation", "objection_handling", "closing")
Stage = Literal["opening", "discovery", "presentation", "objection_handling", "closing"]
HINT_PASSAGES = 3
_PASSAGE_CHARS = 700  # a hint prompt stays small: it is asked for after every rep turn


class LlmHintSuggestion(msgspec.Struct, frozen=True):
    stage: Stage
    hint: str | None  # None: nothing worth interrupting the rep for
    severity: Literal["info", "warning"] = "info"


_SCHEMA: dict[str, object] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["stage", "hint", "severity"],
    "properties": {
        "stage": {"type": "string", "enum": list(STAGES)},
        "hint": {"type": ["string", "null"], "maxLength": 160},
        "severity": {"type": "string", "enum": ["info", "warning"]},
    },
}
_decode = msgspec.json.Decoder(LlmHintSuggestion).decode


class Retriever(Protocol):
    """The knowledge base's search for one call's organization (its rows and the shared ones)."""

    async def __call__(self, query: str, *, limit: int) -> Sequence[Passage]:
        """The best passages for `query`, best first. Raises ProviderUnavailable when search fails."""
        ...


def latest_buyer_turn(history: Sequence[Turn]) -> str | None:
    """What the buyer said last (their latest objection or question), the hint's retrieval query."""
    return next((t.text for t in reversed(history) if t.speaker != "rep" and t.text.strip()), None)


def _prompt(persona: Persona, history: Sequence[Turn],
            passages: Sequence[Passage] = ()) -> list[ChatCompletionMessageParam]:
    transcript = "\n".join(f"{'REP' if t.speaker == 'rep' else 'BUYER'}: {t.text}" for t in history[-30:])
    playbook = ""
    if passages:
        cited = [f"[{p.n}] {p.title + ': ' if p.title else ''}{' '.join(p.text.split())[:_PASSAGE_CHARS]}"
                 for p in passages]
        playbook = ("\n\nFrom the team's playbook, on the buyer's latest point (base the hint on it when it fits):\n"
                    + "\n".join(cited))
    return [
        {"role": "system", "content": (
            "You coach a sales rep live during a practice call. Name the call's stage and, only when it "
            "would clearly help right now, one hint of at most 20 words the rep can act on in their next "
            "sentence (a question to ask, an objection to address, a next step to propose). Otherwise hint "
            "is null. Never repeat what the rep just did well.")},
        {"role": "user", "content": f"Buyer: {persona.name}, {persona.title} at {persona.company}. "
                                    f"Situation: {persona.situation}\n\nTranscript so far:\n{transcript}{playbook}"},
    ]


class LlmHinter:
    """Args:
        backend: an OpenAI-compatible client and model.
        interval_s: the shortest time between two requests for one call.
        timeout_s: a suggestion later than this is dropped (it would be stale).
    """

    def __init__(self, backend: LlmBackend, *, interval_s: float = 30, timeout_s: float = 8) -> None:
        self._backend, self.interval_s, self._timeout_s = backend, interval_s, timeout_s
        self._breaker = CircuitBreaker(failure_threshold=3, reset_after_s=60)

    def for_call(self, persona: Persona, *, retrieve: Retriever | None = None) -> CallHinter:
        """Args:
            retrieve: the knowledge base's search for the call's organization; None: no passages.
        """
        return CallHinter(self, persona, retrieve)

    async def passages(self, retrieve: Retriever, history: Sequence[Turn]) -> Sequence[Passage]:
        """The playbook passages for the buyer's latest turn; none when search fails or is late (the
        hint is still asked for, from the transcript alone)."""
        query = latest_buyer_turn(history)
        if query is None:
            return ()
        try:
            async with asyncio.timeout(self._timeout_s / 2):
                return await retrieve(query, limit=HINT_PASSAGES)
        except (TimeoutError, ProviderUnavailable) as exc:
            log.warning("knowledge search for a hint failed; hinting without passages",
                        extra={"error": type(exc).__name__})
            return ()

    async def suggest(self, persona: Persona, history: Sequence[Turn],
                      passages: Sequence[Passage] = ()) -> LlmHintSuggestion | None:
        if not self._breaker.allow():
            return None
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._backend.client.chat.completions.create(
                    model=self._backend.model, messages=_prompt(persona, history, passages), temperature=0.2,
                    max_tokens=120,
                    response_format={"type": "json_schema",
                                     "json_schema": {"name": "coach_hint", "strict": True, "schema": _SCHEMA}},
                )
            content = response.choices[0].message.content or ""
            suggestion = _decode(content)
        except (TimeoutError, openai.OpenAIError, msgspec.DecodeError, msgspec.ValidationError, IndexError) as exc:
            self._breaker.record_failure()
            log.warning("llm hint failed", extra={"error": type(exc).__name__})
            return None
        self._breaker.record_success()
        return suggestion


class CallHinter:
    """One call's view: rate-limited (one request in flight, one per interval)."""

    def __init__(self, hinter: LlmHinter, persona: Persona, retrieve: Retriever | None = None) -> None:
        self._hinter, self._persona, self._retrieve = hinter, persona, retrieve
        self._last_at: float | None = None
        self._busy = False

    def due(self) -> bool:
        return not self._busy and (self._last_at is None or time.monotonic() - self._last_at >= self._hinter.interval_s)

    async def suggest(self, history: Sequence[Turn]) -> LlmHintSuggestion | None:
        if not self.due():
            return None
        self._busy, self._last_at = True, time.monotonic()
        try:
            turns = list(history)
            passages = await self._hinter.passages(self._retrieve, turns) if self._retrieve is not None else ()
            return await self._hinter.suggest(self._persona, turns, passages)
        finally:
            self._busy = False
