"""Live coach hints: rules that follow a call's transcript and timing, with debouncing. Pure state.

Defaults come from published call research (coaching-anchors): top performers talk about 43 % of
the time, pitches over two minutes lose, 11-14 discovery questions do best, ~173 wpm is average.

Events:
    hint {hint_id, kind, severity, text, evidence: {segment_id, quote}}: returned by `observe`
        for the call to publish; at most one per `min_gap_ms` (a warning may override), no kind
        repeated within `repeat_ms`.
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from typing import Literal

import msgspec

from coaching.events import Event, Evidence, Hint, TranscriptFinal

__all__ = ["OBJECTIONS", "OPEN_QUESTION", "QUESTION_START", "HintEngine", "HintOptions", "Severity"]

Severity = Literal["info", "warning"]

# Buyer-side objections and what to do about each.
OBJECTIONS: dict[str, tuple[re.Pattern[str], str]] = {
    "objection_price": (
        re.compile(r"\b(price|pricing|cost|budget|expensive|discount|how much|afford)\b"),
        "Price objection: acknowledge it, ask what they compare it to, then tie value to their pain."),
    "objection_competitor": (
        re.compile(r"\b(current vendor|current provider|already use|competitor|switch|happy with)\b"),
        "They are attached to what they have: ask what it does not do for them today."),
    "objection_timing": (
        re.compile(r"\b(not a priority|next quarter|next year|not now|bad time|no time|busy)\b"),
        "Timing objection: ask what would have to change for this to matter this quarter."),
    "objection_authority": (
        re.compile(r"\b(my manager|my boss|my vp|the board|have to check|not my decision|owns the budget)\b"),
        "Authority: ask who else decides and offer to bring them into the next call."),
    "objection_status_quo": (
        re.compile(r"\b(fine as is|works fine|we're fine|no need|don't see a reason|not ready)\b"),
        "Status quo: quantify what staying the same costs them."),
}
QUESTION_START = re.compile(r"^(what|how|why|when|where|who|which|tell me|walk me|can you|could you|do you"
                            r"|are you|is there|have you)\b")
OPEN_QUESTION = re.compile(r"^(what|how|why|tell me|walk me|describe|help me understand)\b")
_NEXT_STEP = re.compile(r"\b(next step|meeting|demo|calendar|schedule|book|follow[- ]up|trial|pilot|next week"
                        r"|monday|tuesday|wednesday|thursday|friday)\b")
_WINDING_DOWN = re.compile(r"\b(have to go|got to run|need to jump|next meeting|time's up|wrap up|let you go)\b")


class HintOptions(msgspec.Struct, frozen=True, kw_only=True):
    monologue_ms: int = 75_000
    talk_share: float = 0.65
    talk_window_ms: int = 120_000
    discovery_by_ms: int = 180_000
    open_questions_by_ms: int = 300_000
    min_open_questions: int = 3
    max_wpm: float = 180.0
    pace_window_ms: int = 30_000
    pace_jump: float = 1.3  # rep's pace after an objection over their pace before it
    min_gap_ms: int = 20_000
    repeat_ms: int = 60_000


class _Turn(msgspec.Struct):
    speaker: str
    start_ms: int
    end_ms: int
    words: int
    segment_id: str
    text: str
    # The latest start and end of this turn and every turn before it, in arrival order: a walk
    # back from the newest turn stops once no earlier turn can reach its window (finals of two
    # speakers may arrive out of time order, so the turn's own times would not be enough).
    latest_start_ms: int = 0
    latest_end_ms: int = 0


class HintEngine:
    """Feed it every `transcript.final` of a call in order; it returns the hints to publish."""

    def __init__(self, session_id: str, options: HintOptions | None = None) -> None:
        self._session_id, self._options = session_id, options or HintOptions()
        self._turns: deque[_Turn] = deque(maxlen=400)
        self._monologue_start: int | None = None
        self._questions = 0
        self._open_questions = 0
        self._next_step_asked = False
        self._pending_buyer_question: _Turn | None = None
        self._last_hint_ms: int | None = None
        self._last_by_kind: dict[str, int] = {}
        self._objection_at: int | None = None
        self._pace_before: float | None = None

    def observe(self, event: TranscriptFinal) -> list[Hint]:
        turn = self._take(event)
        for kind, severity, message in self._rules(turn):
            hint = self._admit(kind, severity, message, turn)
            if hint is not None:
                return [hint]  # one hint per transcript event
        return []

    def replay(self, event: Event) -> None:
        """Takes in one event of the call's stored log, so an engine rebuilt from it decides as the
        one that ran the call did: finals run the rules (whose state does not depend on what was
        admitted), and the hints that were admitted set the debounce."""
        match event:
            case TranscriptFinal():
                self._rules(self._take(event))
            case Hint() if self._turns:
                # Admitted at the end of the latest final (rule hints follow their trigger; LLM
                # hints quote the latest final when they are admitted).
                self._last_hint_ms = self._last_by_kind[event.kind] = self._turns[-1].end_ms
            case _:
                pass

    def _take(self, event: TranscriptFinal) -> _Turn:
        text = event.text.strip()
        before = self._turns[-1] if self._turns else None
        turn = _Turn(event.speaker, event.start_ms, event.end_ms, len(text.split()), event.segment_id, text,
                     max(event.start_ms, before.latest_start_ms) if before else event.start_ms,
                     max(event.end_ms, before.latest_end_ms) if before else event.end_ms)
        self._turns.append(turn)
        return turn

    def _rules(self, turn: _Turn) -> list[tuple[str, Severity, str]]:
        return self._rep_rules(turn) if turn.speaker == "rep" else self._buyer_rules(turn)

    def admit(self, kind: str, severity: Severity, text: str) -> Hint | None:
        """A hint from elsewhere (the LLM mode), quoting the latest final, under the same debounce."""
        return self._admit(kind, severity, text, self._turns[-1]) if self._turns else None

    def _admit(self, kind: str, severity: Severity, text: str, turn: _Turn) -> Hint | None:
        if not self._allowed(kind, severity, turn.end_ms):
            return None
        self._last_hint_ms = turn.end_ms
        self._last_by_kind[kind] = turn.end_ms
        return Hint(session_id=self._session_id, ts=0, hint_id=uuid.uuid4().hex[:12], kind=kind,
                    severity=severity, text=text, evidence=Evidence(turn.segment_id, _quote(turn.text)))

    def _allowed(self, kind: str, severity: Severity, now_ms: int) -> bool:
        last_kind = self._last_by_kind.get(kind)
        if last_kind is not None and now_ms - last_kind < self._options.repeat_ms:
            return False
        if self._last_hint_ms is not None and now_ms - self._last_hint_ms < self._options.min_gap_ms:
            return severity == "warning"
        return True

    def _rep_rules(self, turn: _Turn) -> list[tuple[str, Severity, str]]:
        o = self._options
        out: list[tuple[str, Severity, str]] = []
        lowered = turn.text.lower()
        is_question = turn.text.endswith("?") or bool(QUESTION_START.match(lowered))
        if is_question:
            self._questions += 1
            self._open_questions += bool(OPEN_QUESTION.match(lowered))
        if _NEXT_STEP.search(lowered):
            self._next_step_asked = True
        if self._pending_buyer_question is not None:
            if is_question and turn.words < 12:
                asked = _quote(self._pending_buyer_question.text, 60)
                out.append(("unanswered_question", "info",
                            f"They asked \"{asked}\": answer it before asking your own."))
            self._pending_buyer_question = None
        if self._monologue_start is None:
            self._monologue_start = turn.start_ms
        if turn.end_ms - self._monologue_start > o.monologue_ms:
            talked_s = (turn.end_ms - self._monologue_start) // 1000
            out.append(("monologue", "warning", f"You have been talking for {talked_s} s: pause and ask a question."))
        share = self._talk_share(turn.end_ms)
        if share is not None and share > o.talk_share:
            out.append(("talk_ratio", "info",
                        f"You spoke {share:.0%} of the last two minutes; top reps stay near 43 %: let them talk."))
        if turn.end_ms >= o.discovery_by_ms and self._questions == 0:
            out.append(("no_discovery", "warning", "Three minutes in and no question yet: ask about their situation."))
        elif turn.end_ms >= o.open_questions_by_ms and self._open_questions < o.min_open_questions:
            out.append(("few_open_questions", "info",
                        "Few open questions so far: try 'how', 'what' or 'walk me through'."))
        wpm = self._rep_wpm(turn.end_ms)
        if wpm is not None and wpm > o.max_wpm:
            out.append(("pace", "info", f"You are speaking fast ({wpm:.0f} words a minute): slow down."))
        if self._objection_at is not None:
            after = self._rep_wpm(turn.end_ms, since_ms=self._objection_at, min_spoken_ms=3_000)
            if turn.end_ms - self._objection_at > o.pace_window_ms:
                self._objection_at = None
            elif after is not None and self._pace_before and after > self._pace_before * o.pace_jump:
                out.append(("pace_jump", "info",
                            f"You sped up after their objection ({self._pace_before:.0f} to {after:.0f} words a"
                            " minute): slow down and answer calmly."))
                self._objection_at = None
        return out

    def _buyer_rules(self, turn: _Turn) -> list[tuple[str, Severity, str]]:
        self._monologue_start = None
        lowered = turn.text.lower()
        out: list[tuple[str, Severity, str]] = []
        for kind, (pattern, advice) in OBJECTIONS.items():
            if pattern.search(lowered):
                out.append((kind, "warning", advice))
                self._objection_at = turn.end_ms
                self._pace_before = self._rep_wpm(turn.start_ms, since_ms=0)
                break
        if _WINDING_DOWN.search(lowered) and not self._next_step_asked:
            out.append(("no_next_step", "warning",
                        "They are wrapping up and there is no next step: propose a specific one now."))
        if turn.text.endswith("?"):
            self._pending_buyer_question = turn
        return out

    def _talk_share(self, now_ms: int) -> float | None:
        window_start = now_ms - self._options.talk_window_ms
        if now_ms < self._options.talk_window_ms // 2:
            return None  # too early to judge
        talk = {"rep": 0, "persona": 0}
        for t in reversed(self._turns):
            if t.latest_end_ms <= window_start:
                break  # neither this turn nor any before it ends inside the window
            overlap = min(t.end_ms, now_ms) - max(t.start_ms, window_start)
            if overlap > 0:
                talk[t.speaker] += overlap
        total = talk["rep"] + talk["persona"]
        return talk["rep"] / total if total else None

    def _rep_wpm(self, now_ms: int, *, since_ms: int | None = None, min_spoken_ms: int = 5_000) -> float | None:
        """The rep's words a minute over the turns that end in the pace window (or since `since_ms`)."""
        start = now_ms - self._options.pace_window_ms if since_ms is None else since_ms
        spoken_ms = words = 0
        for t in reversed(self._turns):
            if t.latest_start_ms < start:
                break  # neither this turn nor any before it starts inside the window
            if t.speaker == "rep" and start <= t.end_ms <= now_ms and t.start_ms >= start:
                spoken_ms += t.end_ms - t.start_ms
                words += t.words
        if spoken_ms < min_spoken_ms:  # a few seconds are too little to judge pace
            return None
        return words / (spoken_ms / 60_000)


def _quote(text: str, limit: int = 140) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
