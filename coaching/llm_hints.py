"""Stage-aware coach hints from an LLM (optional; the rule hints in `hints.py` always run).

After a transcript final, at most once per `interval_s` per call and one request at a time, the
conversation so far goes to an OpenAI-compatible chat model with a JSON-schema response format;
it answers with the call's stage and at most one short hint. The call's HintEngine then applies
the same debounce as for rule hints, so an LLM hint never crowds the rules out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Literal

import msgspec
import openai
from openai.types.chat import ChatCompletionMessageParam

from coaching.brains.base import Turn
from coaching.brains.llm import LlmBackend
from coaching.persona import Persona
from coaching.providers.breaker import CircuitBreaker

__all__ = ["LlmHintSuggestion", "LlmHinter", "STAGES"]

log = logging.getLogger(__name__)
STAGES = ("opening", "discovery", "presentation", "objection_handling", "closing")
Stage = Literal["opening", "discovery", "presentation", "objection_handling", "closing"]


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


def _prompt(persona: Persona, history: Sequence[Turn]) -> list[ChatCompletionMessageParam]:
    transcript = "\n".join(f"{'REP' if t.speaker == 'rep' else 'BUYER'}: {t.text}" for t in history[-30:])
    return [
        {"role": "system", "content": (
            "You coach a sales rep live during a practice call. Name the call's stage and, only when it "
            "would clearly help right now, one hint of at most 20 words the rep can act on in their next "
            "sentence (a question to ask, an objection to address, a next step to propose). Otherwise hint "
            "is null. Never repeat what the rep just did well.")},
        {"role": "user", "content": f"Buyer: {persona.name}, {persona.title} at {persona.company}. "
                                    f"Situation: {persona.situation}\n\nTranscript so far:\n{transcript}"},
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

    def for_call(self, persona: Persona) -> CallHinter:
        return CallHinter(self, persona)

    async def suggest(self, persona: Persona, history: Sequence[Turn]) -> LlmHintSuggestion | None:
        if not self._breaker.allow():
            return None
        try:
            response = await asyncio.wait_for(self._backend.client.chat.completions.create(
                model=self._backend.model, messages=_prompt(persona, history), temperature=0.2, max_tokens=120,
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "coach_hint", "strict": True, "schema": _SCHEMA}},
            ), self._timeout_s)
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

    def __init__(self, hinter: LlmHinter, persona: Persona) -> None:
        self._hinter, self._persona = hinter, persona
        self._last_at: float | None = None
        self._busy = False

    def due(self) -> bool:
        return not self._busy and (self._last_at is None or time.monotonic() - self._last_at >= self._hinter.interval_s)

    async def suggest(self, history: Sequence[Turn]) -> LlmHintSuggestion | None:
        if not self.due():
            return None
        self._busy, self._last_at = True, time.monotonic()
        try:
            return await self._hinter.suggest(self._persona, list(history))
        finally:
            self._busy = False
