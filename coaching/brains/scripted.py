"""The scripted buyer: a deterministic dialogue policy read from the persona file.

No randomness: the buyer's state is folded from the rep's turns every time, so the same
conversation always gets the same answers, and a resumed call rebuilds exactly.
"""

from __future__ import annotations

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
    pending: str | None = None
    open_questions: int = 0
    agreed_next_step: bool = False
    ended: bool = False
    rep_turns: int = 0


def _is_question(text: str) -> bool:
    return text.rstrip().endswith("?") or bool(_QUESTION_START.match(text.strip()))


def _step(persona: Persona, state: BuyerState, raw: str) -> list[str]:
    """Advances `state` by one rep turn and returns what the buyer says to it."""
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
    if state.pending is not None:
        objection = next(o for o in persona.objections if o.id == state.pending)
        if any(k in text for k in objection.resolved_by):
            said.append(objection.resolved_reply)
            state.resolved.append(objection.id)
            state.pending = None
    if state.pending is None:
        for objection in persona.objections:
            if objection.id not in state.raised and any(k in text for k in objection.triggers):
                state.raised.append(objection.id)
                state.pending = objection.id
                said.append(objection.text)
                break
    if _is_question(text) and state.pending is None:
        unrevealed = [p for p in persona.pains if p.id not in state.revealed]
        pain = next((p for p in unrevealed if any(k in text for k in p.keywords)), None)
        if pain is None and unrevealed and _OPEN_DISCOVERY.search(text):
            # An open question earns a pain only once the buyer has warmed up to the rep.
            state.open_questions += 1
            if state.open_questions >= 2 or state.rapport > 0:
                pain = unrevealed[0]
        if pain is not None:
            state.revealed.append(pain.id)
            said.append(pain.reveal)
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
