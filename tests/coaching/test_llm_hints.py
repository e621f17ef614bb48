"""The LLM hints' retrieval, offline: the buyer's latest turn is the query, the passages found go
into the prompt, and a search that fails or is late leaves the hint to the transcript alone."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from coaching.brains.base import Turn
from coaching.brains.llm import LlmBackend
from coaching.coach_chat import Passage
from coaching.errors import ProviderUnavailable
from coaching.llm_hints import LlmHinter, latest_buyer_turn
from coaching.persona import load_personas

HISTORY = [Turn("persona", "Dana here. What is this about?"), Turn("rep", "Hi Dana, Pat from Ledgerly."),
           Turn("persona", "Honestly, the price is too high."), Turn("rep", "I hear you.")]


class FakeCompletions:
    """Records each request; answers a hint with no text."""

    def __init__(self) -> None:
        self.requests: list[dict] = []

    async def create(self, **request):
        self.requests.append(request)
        content = '{"stage": "objection_handling", "hint": null, "severity": "info"}'
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=content))])


def hinter(timeout_s: float = 8) -> tuple[LlmHinter, FakeCompletions]:
    completions = FakeCompletions()
    client = SimpleNamespace(chat=SimpleNamespace(completions=completions))
    return LlmHinter(LlmBackend("fake", client, "gpt-4o"), interval_s=0, timeout_s=timeout_s), completions


def test_latest_buyer_turn_is_what_the_buyer_said_last():
    assert latest_buyer_turn(HISTORY) == "Honestly, the price is too high."
    assert latest_buyer_turn([Turn("rep", "Hello?")]) is None


async def test_hint_prompt_carries_the_passages_retrieved_for_the_buyers_latest_turn():
    queries: list[tuple[str, int]] = []

    async def retrieve(query: str, *, limit: int) -> list[Passage]:
        queries.append((query, limit))
        return [Passage(1, "Price objections", "Anchor on value,\n  then ask what doing nothing costs.")]

    hints, completions = hinter()
    await hints.for_call(load_personas()["skeptical-cfo"], retrieve=retrieve).suggest(HISTORY)
    assert queries == [("Honestly, the price is too high.", 3)]
    prompt = completions.requests[0]["messages"][-1]["content"]
    assert prompt.endswith("\n[1] Price objections: Anchor on value, then ask what doing nothing costs.")


async def test_a_failing_or_late_search_leaves_the_hint_to_the_transcript():
    async def failing(query: str, *, limit: int) -> list[Passage]:
        raise ProviderUnavailable("knowledge search failed (ConnectionResetError)")

    async def late(query: str, *, limit: int) -> list[Passage]:
        await asyncio.Event().wait()
        return []

    for retrieve in (failing, late):
        hints, completions = hinter(timeout_s=0.2)
        await hints.for_call(load_personas()["skeptical-cfo"], retrieve=retrieve).suggest(HISTORY)
        prompt = completions.requests[0]["messages"][-1]["content"]
        assert "BUYER: Honestly, the price is too high." in prompt and "playbook" not in prompt
