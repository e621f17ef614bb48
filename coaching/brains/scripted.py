"""The scripted buyer: a deterministic dialogue policy read from the persona file.

No randomness: the buyer's state is folded from the rep's turns every time, so the same
conversation always gets the same answers, and a resumed call rebuilds exactly.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Sequence

import msgspec

from coaching.brains.base import Reply, Turn
from coaching.persona import Persona

__all__ = ["BuyerState", "ScriptedBrain", "fold_state", "scripted_reply"]

_QUESTION_START = re.compile(
    r"^(what|how|why|when|where|who|which|tell me|walk me|can you tell|could you tell|would you say|"
    r"do you|does|are you|is there|have you|help me understand)\b")
_OPEN_DISCOVERY = re.compile(
    r"\b(challenge|problem|struggle|priorit|goal|pain|frustrat|keeps you up|biggest|currently|today|"
    r"how do you|how are you|what's working|what is working|what would|tell me about|walk me through)")
_NEXT_STEP = re.compile(
    r"\b(next step|meeting|meet|demo|calendar|schedule|book|set up a call|follow[- ]up call|trial|pilot|"
    r"monday|tuesday|wednesday|thursday|friday|next week)\b")
_GOODBYE = re.compile(r"\b(goodbye|bye|have a (great|good) (day|one)|thanks for your time|thank you for your time)\b")
_INTRO = re.compile(r"\b(my name is|this is|i'm|i am)\b.*\b(from|with|at)\b")
_EMPATHY = re.compile(r"\b(understand|makes sense|fair|i hear you|that's reasonable|good question)\b")


class BuyerState(msgspec.Struct):
    """What the buyer has revealed and agreed to so far."""

    rapport: int = 0
    revealed: list[str] = msgspec.field(default_factory=list)
    raised: list[str] = msgspec.field(default_factory=list)
    resolved: list[str] = msgspec.field(default_factory=list)
    pending: str | None = None  # the objection the buyer is waiting on an answer to
    waiting: list[str] = msgspec.field(default_factory=list)  # raised, unanswered, set aside for a newer concern
    open_questions: int = 0
    agreed_next_step: bool = False
    ended: bool = False
    rep_turns: int = 0


_REPEAT = "That still leaves my concern. "  # an ignored objection comes back, in the buyer's own words


def _is_question(text: str) -> bool:
    return text.rstrip().endswith("?") or bool(_QUESTION_START.match(text.strip()))


@functools.lru_cache(maxsize=4096)
def _phrase(phrase: str) -> re.Pattern[str]:
    # At the start of a word ("ops" is not in "stops", "api" not in "rapid"); keywords may be stems ("reconcil").
    return re.compile(r"(?<![a-z0-9])" + re.escape(phrase.lower()))


def _hits(text: str, phrases: Sequence[str]) -> bool:
    return any(_phrase(k).search(text) for k in phrases)


def _discovery_answer(persona: Persona, state: BuyerState, text: str) -> tuple[bool, str | None]:
    """Whether the rep's question asks about the buyer's world, and what the buyer answers (None: nothing new).

    A discovery question is answered, never met with an objection, whatever words it happens to contain."""
    unrevealed = [p for p in persona.pains if p.id not in state.revealed]
    hits = {p.id: sum(bool(_phrase(k).search(text)) for k in p.keywords) for p in persona.pains}
    best = max(unrevealed, key=lambda p: hits[p.id], default=None)  # the pain it touches most (first on a tie)
    if best is not None and hits[best.id]:
        state.revealed.append(best.id)
        return True, best.reveal
    if _OPEN_DISCOVERY.search(text):
        # An open question earns a pain only once the buyer has warmed up to the rep.
        state.open_questions += 1
        if unrevealed and (state.open_questions >= 2 or state.rapport > 0):
            state.revealed.append(unrevealed[0].id)
            return True, unrevealed[0].reveal
        return True, None
    known = max(persona.pains, key=lambda p: hits[p.id])
    if hits[known.id] and not _NEXT_STEP.search(text):  # asked again about what they told already
        return True, f"Like I said, {known.reveal[0].lower()}{known.reveal[1:]}"
    return False, None


def _step(persona: Persona, state: BuyerState, raw: str) -> list[str]:
    """Advances `state` by one rep turn and returns what the buyer says to it.

    The policy: questions about the buyer's world are answered (a pain, when earned); objections are raised
    by what the rep asserts or proposes (a pitch, a price, a meeting), or by asking about the concern itself;
    the objection then waits for an answer in a later turn (the turn that raises it cannot settle it) and
    comes back every turn it is ignored; a new concern meanwhile is raised and the older one returns once
    the new one is settled."""
    text = raw.lower()
    state.rep_turns += 1
    said: list[str] = []
    if _GOODBYE.search(text):
        state.ended = True
        return [persona.closing_line]
    if state.rep_turns == 1 and _INTRO.search(text):
        state.rapport += 1
    if _EMPATHY.search(text):
        state.rapport += 1
    by_id = {o.id: o for o in persona.objections}
    question = _is_question(text)
    discovery, answer = _discovery_answer(persona, state, text) if question else (False, None)
    answered_pending = False
    if state.pending is not None and _hits(text, by_id[state.pending].resolved_by):
        objection = by_id[state.pending]
        said.append(objection.resolved_reply)
        state.resolved.append(objection.id)
        state.pending = None
        answered_pending = True
    if answer is not None:
        said.append(answer)
    if not discovery:
        fresh = next((o for o in persona.objections if o.id not in state.raised and _hits(text, o.triggers)), None)
        if fresh is not None:
            if state.pending is not None:
                state.waiting.append(state.pending)
            state.raised.append(fresh.id)
            state.pending = fresh.id
            said.append(fresh.text)
    if state.pending is None and state.waiting:
        # The newer concern is settled: the one set aside for it comes back now.
        state.pending = state.waiting.pop()
        said.append(by_id[state.pending].text)
    elif state.pending is not None and not answered_pending and by_id[state.pending].text not in said:
        if _NEXT_STEP.search(text) and not said:
            said.append(persona.next_step.decline)
        said.append(_REPEAT + by_id[state.pending].text)  # ignored: it comes back
    if _NEXT_STEP.search(text) and not said:
        ready = len(state.revealed) >= persona.next_step.min_pains and state.pending is None
        state.agreed_next_step = state.agreed_next_step or ready
        said.append(persona.next_step.accept if ready else persona.next_step.decline)
    if not said:
        said.append(persona.fillers[(state.rep_turns - 1) % len(persona.fillers)])
    return said


def fold_state(persona: Persona, history: Sequence[Turn]) -> tuple[BuyerState, list[str]]:
    """Replays every rep turn; returns the state and the buyer's answer to the last one."""
    state = BuyerState()
    last: list[str] = []
    for turn in history:
        if turn.speaker == "rep":
            last = _step(persona, state, turn.text)
    return state, last


def scripted_reply(persona: Persona, history: Sequence[Turn]) -> tuple[str, bool]:
    state, said = fold_state(persona, history)
    return " ".join(said), state.ended


class ScriptedBrain:
    """The default persona brain when no LLM key is set."""

    def respond(self, persona: Persona, history: Sequence[Turn]) -> Reply:
        text, ended = scripted_reply(persona, history)

        async def deltas() -> AsyncIterator[str]:
            # Sentence by sentence, like a streaming LLM, so speech can start on the first one.
            for sentence in re.findall(r"[^.!?]+[.!?]*\s*", text):
                yield sentence

        reply = Reply(deltas())
        reply.end_call = ended
        return reply
