"""The LLM scorer: an OpenAI-compatible chat model judges the rubric's checks, one request per
dimension, with the heuristic scorer as the fallback for anything it cannot answer well.

Each dimension's request carries the transcript (segment ids, m:ss times, REP/BUYER labels), the
persona's brief when there is one, and that dimension's four checks (`coaching.scoring.CHECKS`);
the model answers per check with a JSON-schema response: passed or not, the segment the verdict
rests on, a quote from it and, for a failed check, what was missing, where and what to say. The
answer is decoded into Structs and checked against the call (every check once, cited segments
that exist); times come from the cited segment, never from the model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import msgspec
import openai
from openai.types.chat import ChatCompletionMessageParam

from coaching.analytics import analyse, fmt_ms, metrics_of, quote
from coaching.brains.llm import LlmBackend
from coaching.persona import Persona
from coaching.providers.breaker import CircuitBreaker
from coaching.scorecard import (
    DIMENSIONS,
    Check,
    CheckEvidence,
    Dimension,
    DimensionKey,
    Feedback,
    Metric,
    OnDimension,
    Scorecard,
    Scorer,
    ScoringConfig,
    assemble,
    dimension_score,
)
from coaching.scoring import CHECKS
from coaching.session_log import Segment

__all__ = ["LlmScorer"]

log = logging.getLogger(__name__)

QUOTE_MAX_CHARS = 200
_FEEDBACK_MAX_CHARS = 500
_DIMENSION_NAMES: dict[DimensionKey, str] = dict(DIMENSIONS)


class _AnswerFeedback(msgspec.Struct, frozen=True):
    missing: str
    where: str
    example: str


class _AnswerCheck(msgspec.Struct, frozen=True):
    id: str
    passed: bool
    segment_id: str
    quote: str
    feedback: _AnswerFeedback | None


class _Answer(msgspec.Struct, frozen=True):
    checks: list[_AnswerCheck]


_decode_answer = msgspec.json.Decoder(_Answer).decode


class _Invalid(Exception):
    """The model answered, but not with a usable verdict. `kind` is logged, `detail` may be shown."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


class _Unscorable(Exception):
    """A dimension the LLM could not decide; the whole call goes to the fallback scorer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _schema(check_ids: Sequence[str]) -> dict[str, object]:
    feedback = {
        "type": "object",
        "additionalProperties": False,
        "required": ["missing", "where", "example"],
        "properties": {
            "missing": {"type": "string"},
            "where": {"type": "string"},
            "example": {"type": "string"},
        },
    }
    check = {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "passed", "segment_id", "quote", "feedback"],
        "properties": {
            "id": {"type": "string", "enum": list(check_ids)},
            "passed": {"type": "boolean"},
            "segment_id": {"type": "string"},
            "quote": {"type": "string"},
            "feedback": {"anyOf": [feedback, {"type": "null"}]},
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["checks"],
        "properties": {"checks": {"type": "array", "items": check}},
    }


def _transcript(segments: Sequence[Segment]) -> str:
    return "\n".join(f"[{s.segment_id} {fmt_ms(s.start_ms)}] {'REP' if s.speaker == 'rep' else 'BUYER'}: {s.text}"
                     for s in segments)


def _brief(persona: Persona | None) -> str:
    if persona is None:
        return "The buyer's brief is not known (an uploaded call): judge from the transcript alone."
    lines = [
        f"The buyer: {persona.name}, {persona.title} at {persona.company} ({persona.industry}).",
        f"Situation: {persona.situation}",
        "Pains the buyer had, for the rep to uncover:",
        *[f"- {p.reveal}" for p in persona.pains],
        "Objections the buyer could raise:",
        *[f"- {o.text}" for o in persona.objections],
    ]
    return "\n".join(lines)


def _measurements(measured: Mapping[str, Metric]) -> str:
    def value(m: Metric) -> str:
        if m.value is None:
            return "not measurable"
        if m.unit == "yes/no":
            return "yes" if m.value else "no"
        return f"{m.value:.3g} {m.unit}"

    return "\n".join(f"- {m.label}: {value(m)} ({m.verdict})" for m in measured.values())


def _messages(key: DimensionKey, segments: Sequence[Segment], persona: Persona | None, measured: Mapping[str, Metric],
              retry_note: str | None) -> list[ChatCompletionMessageParam]:
    checks = "\n".join(f"- {c.id}: {c.label}. {c.guide}" for c in CHECKS[key])
    system = (
        "You score a sales rep's practice call against a rubric of yes/no checks. Judge only what the REP "
        "said and did; the BUYER's turns are context. Be strict: a check passes only when the transcript "
        "shows it.\n"
        f"Dimension: {_DIMENSION_NAMES[key]}. Its checks:\n{checks}\n\n"
        "Answer every check exactly once. For each give: id; passed; segment_id, the id in brackets of the "
        "turn the verdict rests on (for a passed check the turn that passed it, for a failed one the turn "
        "that came closest or where the behaviour was due); quote, the exact words from that turn that "
        f"matter (at most {QUOTE_MAX_CHARS} characters); feedback, null for a passed check, otherwise "
        "missing (what the rep did not do, one sentence), where (the moment it would have fit, e.g. "
        "'at 0:42, after the buyer said the audit takes two weeks') and example (the words the rep could "
        "have said there). Address the rep as 'you'."
    )
    user = (f"{_brief(persona)}\n\nMeasured in this call ('you' is the rep; verdicts against research bands):\n"
            f"{_measurements(measured)}\n\nTranscript:\n{_transcript(segments)}")
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": system},
                                                  {"role": "user", "content": user}]
    if retry_note is not None:
        messages.append({"role": "user", "content": f"Your previous answer was invalid: {retry_note}. "
                                                    "Answer again, following the schema exactly."})
    return messages


def _dimension(key: DimensionKey, content: str, segments: Mapping[str, Segment], config: ScoringConfig) -> Dimension:
    """The decided dimension from the model's answer, or `_Invalid` saying what is wrong with it."""
    try:
        answer = _decode_answer(content)
    except msgspec.ValidationError as exc:
        raise _Invalid("schema_mismatch", f"it does not match the schema ({exc})") from exc
    except msgspec.DecodeError as exc:
        raise _Invalid("undecodable", "it is not valid JSON") from exc
    specs = {spec.id: spec for spec in CHECKS[key]}
    answered: dict[str, _AnswerCheck] = {}
    for item in answer.checks:
        if item.id not in specs:
            raise _Invalid("unknown_check", "it answers a check that is not in this dimension")
        if item.id in answered:
            raise _Invalid("duplicate_check", f"it answers check {item.id} twice")
        if item.segment_id not in segments:
            raise _Invalid("unknown_segment", f"check {item.id} cites a segment id that is not in the call")
        if not item.passed and (item.feedback is None or not all(
                f.strip() for f in (item.feedback.missing, item.feedback.where, item.feedback.example))):
            raise _Invalid("missing_feedback", f"failed check {item.id} has no feedback")
        answered[item.id] = item
    missing = [check_id for check_id in specs if check_id not in answered]
    if missing:
        raise _Invalid("missing_check", "it leaves out " + ", ".join(missing))
    checks: list[Check] = []
    for spec in CHECKS[key]:
        item = answered[spec.id]
        segment = segments[item.segment_id]
        cited = quote(item.quote, QUOTE_MAX_CHARS) or quote(segment.text, QUOTE_MAX_CHARS)
        feedback = None
        if not item.passed and item.feedback is not None:
            feedback = Feedback(missing=quote(item.feedback.missing, _FEEDBACK_MAX_CHARS),
                                where=quote(item.feedback.where, _FEEDBACK_MAX_CHARS), where_ms=segment.start_ms,
                                example=quote(item.feedback.example, _FEEDBACK_MAX_CHARS))
        checks.append(Check(id=spec.id, label=spec.label, passed=item.passed,
                            evidence=CheckEvidence(segment_id=segment.segment_id, start_ms=segment.start_ms,
                                                   quote=cited),
                            feedback=feedback))
    return Dimension(key=key, name=_DIMENSION_NAMES[key], score=dimension_score(checks), weight=config.weight(key),
                     checks=checks)


def _failure(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__


class LlmScorer:
    """Scores a call with an LLM judge; the six dimensions are requested concurrently.

    `on_dimension` is awaited as each dimension validates. If a later dimension cannot be decided
    (every backend failed or timed out, or the answer was invalid twice), the whole scorecard comes
    from `fallback` instead, which emits its own six dimensions through the same `on_dimension`: a
    consumer keeps the latest dimension per key, so the LLM's earlier ones are replaced. Such a
    scorecard carries the fallback's `scorer` and a `fallback_reason` naming the LLM and why.

    Args:
        backends: the primary first (OpenRouter when configured), then fallbacks. A backend that
            fails (an API error or no answer within `timeout_s`) hands the dimension to the next;
            one whose breaker is open is skipped, unless it is the last.
        fallback: scores the whole call when the LLM cannot (the heuristic scorer); its rubric
            version is this scorer's.
        timeout_s: how long one request may take before the backend counts as failed.
        max_tokens: the answer's budget per dimension.
        breaker_threshold: consecutive failures before a backend is skipped.
        breaker_reset_s: how long it is skipped before a trial.

    Raises:
        ValueError: no backend, two backends of one name, or a non-positive `timeout_s` or `max_tokens`.
    """

    def __init__(self, backends: Sequence[LlmBackend], fallback: Scorer, *, timeout_s: float = 60,
                 max_tokens: int = 1500, breaker_threshold: int = 3, breaker_reset_s: float = 30.0) -> None:
        names = [b.name for b in backends]
        problems = [p for p, bad in (("backends must not be empty", not backends),
                                     (f"backend names must differ, got {names}", len(set(names)) != len(names)),
                                     (f"timeout_s must be > 0, got {timeout_s}", timeout_s <= 0),
                                     (f"max_tokens must be > 0, got {max_tokens}", max_tokens <= 0)) if bad]
        if problems:
            raise ValueError("LlmScorer: " + "; ".join(problems))
        self._backends = list(backends)
        self._fallback = fallback
        self._timeout_s, self._max_tokens = timeout_s, max_tokens
        self._breakers = {b.name: CircuitBreaker(failure_threshold=breaker_threshold, reset_after_s=breaker_reset_s)
                          for b in self._backends}
        self.name = f"llm:{self._backends[0].model}"
        self.version = fallback.version

    def breaker_state(self, name: str) -> str:
        return self._breakers[name].state

    async def score(self, segments: Sequence[Segment], *, persona: Persona | None, config: ScoringConfig,
                    on_dimension: OnDimension | None = None) -> Scorecard:
        if not segments:
            return await self._fall_back(f"the call has no transcript for {self.name} to judge", segments,
                                         persona=persona, config=config, on_dimension=on_dimension)
        by_id = {s.segment_id: s for s in segments}
        measured = metrics_of(analyse(segments, persona))  # as the heuristic scorer measures the call
        order = {key: i for i, (key, _) in enumerate(DIMENSIONS)}
        tasks = {asyncio.create_task(self._judge(key, segments, by_id, measured, persona, config)): key
                 for key, _ in DIMENSIONS}
        decided: dict[str, Dimension] = {}
        reason: str | None = None
        pending: set[asyncio.Task[Dimension]] = set(tasks)
        try:
            while pending and reason is None:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: order[tasks[t]]):
                    try:
                        dimension = task.result()
                    except _Unscorable as exc:
                        reason = exc.reason
                        break
                    decided[dimension.key] = dimension
                    if on_dimension is not None:
                        await on_dimension(dimension)
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # also collects the outcomes not read above
        if reason is None:
            return assemble(decided, measured, config, scorer=self.name, version=self.version)
        return await self._fall_back(reason, segments, persona=persona, config=config, on_dimension=on_dimension)

    async def _fall_back(self, reason: str, segments: Sequence[Segment], *, persona: Persona | None,
                         config: ScoringConfig, on_dimension: OnDimension | None) -> Scorecard:
        card = await self._fallback.score(segments, persona=persona, config=config, on_dimension=on_dimension)
        return msgspec.structs.replace(card, fallback_reason=f"{reason}; scored by the {self._fallback.name} scorer")

    async def _judge(self, key: DimensionKey, segments: Sequence[Segment], by_id: Mapping[str, Segment],
                     measured: Mapping[str, Metric], persona: Persona | None, config: ScoringConfig) -> Dimension:
        failures: list[str] = []
        for backend in self._backends:
            breaker = self._breakers[backend.name]
            if not breaker.allow() and backend is not self._backends[-1]:
                failures.append(f"llm:{backend.model} via {backend.name}: skipped after repeated failures")
                continue
            retry_note: str | None = None
            for attempt in (1, 2):
                try:
                    content = await self._ask(backend, _messages(key, segments, persona, measured, retry_note), key)
                except (TimeoutError, openai.OpenAIError) as exc:
                    breaker.record_failure()
                    failures.append(f"llm:{backend.model} via {backend.name}: {_failure(exc, self._timeout_s)}")
                    log.warning("llm scoring request failed",
                                extra={"backend": backend.name, "dimension": key, "error": type(exc).__name__})
                    break
                breaker.record_success()  # it answered; whether the answer is usable is another matter
                try:
                    return _dimension(key, content, by_id, config)
                except _Invalid as exc:
                    log.warning("llm scoring output invalid",
                                extra={"backend": backend.name, "dimension": key, "error": exc.kind,
                                       "attempt": attempt})
                    if attempt == 2:
                        raise _Unscorable(f"llm:{backend.model} gave invalid output twice for '{key}'"
                                          f" (last: {exc.detail})") from exc
                    retry_note = exc.detail
        raise _Unscorable(f"no LLM could score '{key}' ({'; '.join(failures)})")

    async def _ask(self, backend: LlmBackend, messages: list[ChatCompletionMessageParam], key: DimensionKey) -> str:
        """The model's raw answer; an empty or refused one is returned as "" (invalid JSON)."""
        async with asyncio.timeout(self._timeout_s):
            response = await backend.client.chat.completions.create(
                model=backend.model, messages=messages, temperature=0, max_tokens=self._max_tokens,
                response_format={"type": "json_schema", "json_schema": {
                    "name": f"score_{key}", "strict": True, "schema": _schema([c.id for c in CHECKS[key]])}},
            )
        if not response.choices:
            return ""
        return response.choices[0].message.content or ""
