"""The scorecard's types: six dimensions of yes/no checks with evidence and feedback, the
conversation metrics with their reference bands, and the Protocol every scorer implements.

A dimension's score is the share of its checks passed (0-100); the overall is the weighted mean of
the six (weights and pass mark per organization, `ScoringConfig`). `assemble` is the one place that
turns decided dimensions into a scorecard, whichever scorer decided them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Literal, Protocol

import msgspec

from coaching.persona import Persona
from coaching.session_log import Segment

__all__ = [
    "DIMENSIONS", "DIMENSION_KEYS", "Band", "Check", "CheckEvidence", "Dimension", "DimensionKey", "Feedback",
    "Metric", "OnDimension", "Scorecard", "Scorer", "ScoringConfig", "assemble", "dimension_score",
]

DimensionKey = Literal["opening", "discovery", "listening", "value", "objections", "closing"]
# (key, display name), in the order a call runs and the scorecard shows them.
DIMENSIONS: tuple[tuple[DimensionKey, str], ...] = (
    ("opening", "Opening & rapport"),
    ("discovery", "Discovery & needs analysis"),
    ("listening", "Active listening"),
    ("value", "Value articulation"),
    ("objections", "Objection handling"),
    ("closing", "Closing & next steps"),
)
DIMENSION_KEYS: tuple[DimensionKey, ...] = tuple(k for k, _ in DIMENSIONS)


class CheckEvidence(msgspec.Struct, frozen=True):
    """The turn a check's verdict rests on: the one that passed it, or for a failed check the turn
    that came closest (or where the behaviour was due). `segment_id` None only for an empty call."""

    segment_id: str | None
    start_ms: int
    quote: str


class Feedback(msgspec.Struct, frozen=True):
    """For a failed check: what was missing, where in the call it would have fit, what to say there."""

    missing: str
    where: str  # e.g. "at 0:42, after Dana said the audit takes two weeks"
    where_ms: int  # the moment `where` names, for the review page to seek the recording to
    example: str


class Check(msgspec.Struct, frozen=True):
    id: str  # stable within a dimension, e.g. "opening.reason"
    label: str  # the yes/no question, e.g. "States name, company and reason for the call early"
    passed: bool
    evidence: CheckEvidence
    feedback: Feedback | None = None  # None exactly when passed


class Dimension(msgspec.Struct, frozen=True):
    key: DimensionKey
    name: str
    score: int  # 0-100: share of checks passed
    weight: float
    checks: list[Check]


class Band(msgspec.Struct, frozen=True):
    """A metric's reference band from the research (coaching-anchors.md section 2)."""

    low: float | None  # below this is off
    high: float | None  # above this is off
    target: float | None  # what top performers show, where the research names one
    note: str  # one line a rep understands: "top performers talk ~43% of the time"
    source: str  # where the figure comes from, e.g. "Gong Labs, 25,537 B2B calls"


class Metric(msgspec.Struct, frozen=True):
    key: str
    label: str
    value: float | None  # None: not measurable in this call (e.g. no objection came up); booleans 0/1
    unit: str  # "%", "s", "per min", "wpm", "count", "yes/no", ...
    band: Band | None
    verdict: Literal["good", "watch", "off", "n/a"]


class ScoringConfig(msgspec.Struct, frozen=True):
    """Per organization, set by admins. Missing weights count 1.0; a weight of 0 drops a dimension."""

    weights: dict[str, float] = msgspec.field(default_factory=dict)
    pass_mark: int = 70

    def weight(self, key: str) -> float:
        return self.weights.get(key, 1.0)


class Scorecard(msgspec.Struct, frozen=True):
    overall: float  # weighted mean of the dimensions, 0-100, one decimal
    passed: bool  # overall >= pass_mark
    pass_mark: int
    scorer: str  # "heuristic" or "llm:<model>"
    version: int  # the rubric's version
    fallback_reason: str | None  # why the configured scorer did not produce this one, if it did not
    dimensions: list[Dimension]
    metrics: dict[str, Metric]


OnDimension = Callable[[Dimension], Awaitable[None]]


class Scorer(Protocol):
    """Scores a finished call. `on_dimension` is awaited as each dimension is decided (for live
    progress), in any order; the returned scorecard has all six in `DIMENSIONS` order."""

    name: str
    version: int

    async def score(self, segments: Sequence[Segment], *, persona: Persona | None, config: ScoringConfig,
                    on_dimension: OnDimension | None = None) -> Scorecard: ...


def dimension_score(checks: Sequence[Check]) -> int:
    return round(100 * sum(c.passed for c in checks) / len(checks)) if checks else 0


def assemble(dimensions: Mapping[str, Dimension], metrics: dict[str, Metric], config: ScoringConfig, *,
             scorer: str, version: int, fallback_reason: str | None = None) -> Scorecard:
    """The scorecard from six decided dimensions: ordered, weighted, judged against the pass mark."""
    ordered = [dimensions[k] for k in DIMENSION_KEYS]
    total_weight = sum(config.weight(d.key) for d in ordered)
    overall = (sum(d.score * config.weight(d.key) for d in ordered) / total_weight) if total_weight > 0 else 0.0
    overall = round(overall, 1)
    return Scorecard(overall=overall, passed=overall >= config.pass_mark, pass_mark=config.pass_mark, scorer=scorer,
                     version=version, fallback_reason=fallback_reason, dimensions=ordered, metrics=metrics)
