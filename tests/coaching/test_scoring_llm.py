"""The LLM scorer against the fake OpenAI-compatible API over real HTTP: valid answers become the
scorecard as given; invalid ones are retried once, then the whole call goes to the heuristic scorer;
a failing backend hands over to the next."""

from __future__ import annotations

import openai
import pytest

from coaching.analytics import metrics
from coaching.brains.llm import LlmBackend
from coaching.persona import load_personas
from coaching.scorecard import DIMENSION_KEYS, Dimension, ScoringConfig
from coaching.scoring import CHECKS, HeuristicScorer
from coaching.scoring_llm import LlmScorer
from tests.fakes.openai_server import FakeOpenAI
from tests.fixtures.calls import RENEWAL_PRICE
from tests.servers import run_asgi

SEGMENTS = RENEWAL_PRICE.strong()
PERSONA = load_personas()[RENEWAL_PRICE.persona_id]
FAILED_AT, PASSED_AT = SEGMENTS[5], SEGMENTS[4]  # the buyer's "eight days", the rep's walk-me-through question
LONG_QUOTE = "word " * 60  # 300 characters


def clock(ms: int) -> str:
    return f"{ms // 60_000}:{ms // 1000 % 60:02d}"


def dimension_of(body: dict) -> str:
    return body["response_format"]["json_schema"]["name"].removeprefix("score_")


def answer(body: dict) -> dict:
    """A valid answer: each dimension's first check failed (citing FAILED_AT), the others passed (PASSED_AT)."""
    checks = []
    for i, spec in enumerate(CHECKS[dimension_of(body)]):
        if i == 0:
            checks.append({"id": spec.id, "passed": False, "segment_id": FAILED_AT.segment_id,
                           "quote": f"quote for {spec.id}",
                           "feedback": {"missing": f"missing {spec.id}", "where": "at 0:15, after the eight days",
                                        "example": f"example {spec.id}"}})
        else:
            checks.append({"id": spec.id, "passed": True, "segment_id": PASSED_AT.segment_id,
                           "quote": LONG_QUOTE if i == 1 else f"quote for {spec.id}", "feedback": None})
    return {"checks": checks}


def breaking(dimension: str, bad, *, times: int = 10**9):
    """An answer function that breaks `dimension`'s answer with `bad` the first `times` times."""
    left = {"n": times}

    def fn(body: dict) -> dict | str:
        good = answer(body)
        if dimension_of(body) != dimension or left["n"] <= 0:
            return good
        left["n"] -= 1
        return bad(good)

    return fn


@pytest.fixture(scope="module")
def servers():
    primary, secondary = FakeOpenAI(), FakeOpenAI()
    with run_asgi(primary.app()) as primary_url, run_asgi(secondary.app()) as secondary_url:
        yield {"primary": (primary, primary_url + "/v1"), "secondary": (secondary, secondary_url + "/v1")}


@pytest.fixture
def fakes(servers):
    for fake, _ in servers.values():
        fake.failing, fake.structured_fn, fake.structured_failures, fake.structured_garbage = False, answer, 0, 0
        fake.chats.clear()
        fake.requests.clear()
    return servers["primary"][0], servers["secondary"][0]


@pytest.fixture
async def scorer(servers, fakes):
    clients = {name: openai.AsyncOpenAI(base_url=url, api_key="sk-test", max_retries=0)
               for name, (_, url) in servers.items()}
    yield LlmScorer([LlmBackend("primary", clients["primary"], "gpt-4o"),
                     LlmBackend("secondary", clients["secondary"], "gpt-4o-mini")], HeuristicScorer())
    for client in clients.values():
        await client.close()


class Progress:
    def __init__(self) -> None:
        self.emitted: list[Dimension] = []

    async def __call__(self, dimension: Dimension) -> None:
        self.emitted.append(dimension)

    def latest(self) -> dict[str, Dimension]:
        return {d.key: d for d in self.emitted}


async def heuristic_card(persona=PERSONA):
    return await HeuristicScorer().score(SEGMENTS, persona=persona, config=ScoringConfig())


async def test_valid_answers_are_stored_in_the_scorecard_as_given(fakes, scorer):
    primary, secondary = fakes
    progress = Progress()
    card = await scorer.score(SEGMENTS, persona=PERSONA, config=ScoringConfig(), on_dimension=progress)

    assert (card.scorer, card.version, card.fallback_reason) == ("llm:gpt-4o", HeuristicScorer().version, None)
    assert scorer.name == "llm:gpt-4o"
    assert [d.key for d in card.dimensions] == list(DIMENSION_KEYS)
    for dimension in card.dimensions:
        specs = CHECKS[dimension.key]
        assert [c.id for c in dimension.checks] == [s.id for s in specs]
        assert [c.label for c in dimension.checks] == [s.label for s in specs]
        assert [c.passed for c in dimension.checks] == [False, True, True, True]
        assert dimension.score == 75
        failed, long_quoted = dimension.checks[0], dimension.checks[1]
        assert failed.evidence.segment_id == FAILED_AT.segment_id and failed.evidence.start_ms == FAILED_AT.start_ms
        assert failed.evidence.quote == f"quote for {failed.id}"
        assert failed.feedback is not None
        assert (failed.feedback.missing, failed.feedback.where, failed.feedback.example, failed.feedback.where_ms) == (
            f"missing {failed.id}", "at 0:15, after the eight days", f"example {failed.id}", FAILED_AT.start_ms)
        assert long_quoted.evidence.segment_id == PASSED_AT.segment_id
        assert long_quoted.evidence.start_ms == PASSED_AT.start_ms
        assert len(long_quoted.evidence.quote) <= 200 and LONG_QUOTE.startswith(long_quoted.evidence.quote[:150])
        assert all(c.feedback is None for c in dimension.checks[1:])
    assert card.overall == 75.0 and card.passed is True
    assert card.metrics == (await heuristic_card()).metrics
    assert card.metrics.keys() == metrics(SEGMENTS).keys()

    requests = primary.structured_chats()
    assert sorted(dimension_of(r) for r in requests) == sorted(DIMENSION_KEYS), "one request per dimension"
    assert secondary.structured_chats() == []
    for request in requests:
        assert request["temperature"] == 0 and request["model"] == "gpt-4o"
        response_format = request["response_format"]
        assert response_format["type"] == "json_schema" and response_format["json_schema"]["strict"] is True
        schema = response_format["json_schema"]["schema"]
        assert schema["properties"]["checks"]["items"]["properties"]["id"]["enum"] == [
            s.id for s in CHECKS[dimension_of(request)]]
        prompt = "\n".join(m["content"] for m in request["messages"])
        assert f"[{FAILED_AT.segment_id} {clock(FAILED_AT.start_ms)}] BUYER: {FAILED_AT.text}" in prompt
        assert f"[{PASSED_AT.segment_id} {clock(PASSED_AT.start_ms)}] REP: {PASSED_AT.text}" in prompt
        assert PERSONA.situation in prompt and all(s.id in prompt for s in CHECKS[dimension_of(request)])

    assert sorted(d.key for d in progress.emitted) == sorted(DIMENSION_KEYS), "on_dimension awaited six times"
    assert progress.latest() == {d.key: d for d in card.dimensions}


async def test_uploaded_call_without_persona_is_scored_from_the_transcript_alone(fakes, scorer):
    primary, _ = fakes
    progress = Progress()
    card = await scorer.score(SEGMENTS, persona=None, config=ScoringConfig(weights={"closing": 0}),
                              on_dimension=progress)
    assert card.scorer == "llm:gpt-4o" and len(progress.emitted) == 6
    assert card.dimensions[-1].weight == 0
    prompts = ["\n".join(m["content"] for m in r["messages"]) for r in primary.structured_chats()]
    assert prompts and all("not known" in p and PERSONA.situation not in p for p in prompts)


async def test_malformed_output_once_is_retried_on_the_same_backend_and_succeeds(fakes, scorer):
    primary, secondary = fakes
    primary.structured_garbage = 1
    card = await scorer.score(SEGMENTS, persona=PERSONA, config=ScoringConfig())

    assert card.scorer == "llm:gpt-4o" and card.fallback_reason is None
    assert all(d.score == 75 for d in card.dimensions)
    asked = [dimension_of(r) for r in primary.structured_chats()]
    assert len(asked) == 7 and sorted(set(asked)) == sorted(DIMENSION_KEYS)
    retried = [r for r in primary.structured_chats() if "previous answer was invalid" in r["messages"][-1]["content"]]
    assert len(retried) == 1 and asked.count(dimension_of(retried[0])) == 2
    assert secondary.structured_chats() == []


async def test_malformed_output_twice_scores_the_whole_call_with_the_heuristic(fakes, scorer, caplog):
    caplog.set_level("WARNING", logger="coaching.scoring_llm")
    primary, secondary = fakes
    primary.structured_fn = breaking("closing", lambda good: "I think the rep did fine overall.")
    progress = Progress()
    card = await scorer.score(SEGMENTS, persona=PERSONA, config=ScoringConfig(), on_dimension=progress)

    expected = await heuristic_card()
    assert card.scorer == "heuristic" and card.version == expected.version
    assert card.dimensions == expected.dimensions and card.overall == expected.overall
    assert card.fallback_reason is not None
    assert "llm:gpt-4o gave invalid output twice for 'closing'" in card.fallback_reason
    assert "not valid JSON" in card.fallback_reason and "heuristic" in card.fallback_reason
    assert [dimension_of(r) for r in primary.structured_chats()].count("closing") == 2
    assert secondary.structured_chats() == [], "invalid output is not a backend failure"
    assert progress.latest() == {d.key: d for d in card.dimensions}, "the fallback's dimensions replace the LLM's"
    logged = [r for r in caplog.records if r.name == "coaching.scoring_llm"]
    assert [(r.backend, r.dimension, r.error) for r in logged] == [("primary", "closing", "undecodable")] * 2
    assert not any("eight days" in str(vars(r)) or "did fine" in str(vars(r)) for r in logged), "no transcript text"


def _cite_unknown_segment(good: dict) -> dict:
    good["checks"][2]["segment_id"] = "renewal-price-999"
    return good


def _drop_a_check(good: dict) -> dict:
    good["checks"].pop()
    return good


def _repeat_a_check(good: dict) -> dict:
    good["checks"][3] = dict(good["checks"][2])
    return good


def _fail_without_feedback(good: dict) -> dict:
    good["checks"][0]["feedback"] = None
    return good


def _wrong_type(good: dict) -> dict:
    good["checks"][1]["passed"] = "yes"
    return good


@pytest.mark.parametrize(("bad", "why"), [
    (_cite_unknown_segment, "segment id that is not in the call"),
    (_drop_a_check, "leaves out"),
    (_repeat_a_check, "answers check"),
    (_fail_without_feedback, "has no feedback"),
    (_wrong_type, "does not match the schema"),
])
async def test_semantically_invalid_answer_counts_as_invalid_output(fakes, scorer, bad, why):
    primary, _ = fakes
    primary.structured_fn = breaking("value", bad)
    card = await scorer.score(SEGMENTS, persona=PERSONA, config=ScoringConfig())

    assert card.scorer == "heuristic"
    assert card.fallback_reason is not None and "gave invalid output twice for 'value'" in card.fallback_reason
    assert why in card.fallback_reason
    assert [dimension_of(r) for r in primary.structured_chats()].count("value") == 2


async def test_unknown_segment_id_once_is_retried_and_succeeds(fakes, scorer):
    primary, _ = fakes
    primary.structured_fn = breaking("listening", _cite_unknown_segment, times=1)
    card = await scorer.score(SEGMENTS, persona=PERSONA, config=ScoringConfig())
    assert card.scorer == "llm:gpt-4o" and card.fallback_reason is None
    assert [dimension_of(r) for r in primary.structured_chats()].count("listening") == 2


async def test_primary_returning_500_hands_the_dimensions_to_the_fallback_backend(fakes, scorer):
    primary, secondary = fakes
    primary.failing = True
    progress = Progress()
    card = await scorer.score(SEGMENTS, persona=PERSONA, config=ScoringConfig(), on_dimension=progress)

    assert card.scorer == "llm:gpt-4o" and card.fallback_reason is None
    assert all(d.score == 75 for d in card.dimensions) and len(progress.emitted) == 6
    assert sorted(dimension_of(r) for r in secondary.structured_chats()) == sorted(DIMENSION_KEYS)
    assert all(r["model"] == "gpt-4o-mini" for r in secondary.structured_chats())
    assert scorer.breaker_state("primary") == "open"

    primary.failing = False
    primary.chats.clear()
    await scorer.score(SEGMENTS, persona=PERSONA, config=ScoringConfig())
    assert primary.structured_chats() == [], "an open breaker skips the primary"


async def test_one_failed_request_moves_only_that_dimension_to_the_fallback_backend(fakes, scorer):
    primary, secondary = fakes
    primary.structured_failures = 1
    card = await scorer.score(SEGMENTS, persona=PERSONA, config=ScoringConfig())
    assert card.scorer == "llm:gpt-4o" and card.fallback_reason is None
    assert len(primary.structured_chats()) == 6 and len(secondary.structured_chats()) == 1
    assert scorer.breaker_state("primary") == "closed"


async def test_every_backend_down_scores_with_the_heuristic_and_says_why(fakes, scorer):
    primary, secondary = fakes
    primary.failing = secondary.failing = True
    progress = Progress()
    card = await scorer.score(SEGMENTS, persona=PERSONA, config=ScoringConfig(), on_dimension=progress)

    expected = await heuristic_card()
    assert card.scorer == "heuristic" and card.dimensions == expected.dimensions
    assert card.fallback_reason is not None and card.fallback_reason.startswith("no LLM could score '")
    assert "llm:gpt-4o via primary: HTTP 500" in card.fallback_reason
    assert "llm:gpt-4o-mini via secondary: HTTP 500" in card.fallback_reason
    assert card.fallback_reason.endswith("scored by the heuristic scorer")
    assert progress.latest() == {d.key: d for d in card.dimensions}


async def test_empty_call_is_scored_by_the_heuristic_without_asking_the_llm(fakes, scorer):
    primary, _ = fakes
    card = await scorer.score([], persona=PERSONA, config=ScoringConfig())
    assert card.scorer == "heuristic" and card.fallback_reason is not None and "no transcript" in card.fallback_reason
    assert primary.structured_chats() == []

