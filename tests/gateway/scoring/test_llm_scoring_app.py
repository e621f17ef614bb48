"""The LLM scorer inside the running app (SCORER=llm, an OpenAI key, the fake OpenAI server): a
practice call's scorecard is the model's, stored; a model that keeps answering garbage leaves a
heuristic scorecard that says why."""

import re

import httpx
import pytest

from coaching.scoring import CHECKS
from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.gateway.accounts_helpers import signup
from tests.gateway.scoring.test_scoring_jobs import KEYS, practice_call, scorecard
from tests.servers import run_asgi

SEGMENT = re.compile(r"\[([^\]\s]+) \d+:\d\d\]")


def judged(body: dict) -> dict:
    """Every check passed, citing the first rep segment of the transcript in the prompt."""
    dimension = body["response_format"]["json_schema"]["name"].removeprefix("score_")
    prompt = "\n".join(m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
    first = SEGMENT.search(prompt)
    assert first, "the prompt cites segment ids"
    return {"checks": [{"id": spec.id, "passed": True, "segment_id": first.group(1), "quote": "as the model quoted",
                        "feedback": None} for spec in CHECKS[dimension]]}


@pytest.fixture(scope="module")
def fake():
    fake = FakeOpenAI(reply="Honestly, our close takes eight days.")
    with run_asgi(fake.app()) as url:
        yield fake, url + "/v1"


@pytest.fixture(scope="module")
def app_url(module_database_url, fake):
    settings = make_settings(module_database_url, openai_api_key="sk-test", openai_base_url=fake[1],
                             llm_provider="scripted", stt_provider="local", tts_provider="local", hints_llm="off",
                             scorer="llm")
    with run_asgi(serve_app(create_app(settings))) as url:
        yield url


async def test_the_llm_scorers_scorecard_is_stored_and_served(app_url, fake):
    fake[0].structured_fn, fake[0].structured_garbage = judged, 0
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as client:
        rep = await signup(client)
        sid = await practice_call(app_url, client, rep, lines=["How does your month end close work today?"])
        card = await scorecard(client, rep, sid, timeout=60)
    assert card["scorer"] == "llm:gpt-4o" and card["fallback_reason"] is None
    assert [d["score"] for d in card["dimensions"]] == [100] * 6 and card["overall"] == 100
    assert {c["evidence"]["quote"] for d in card["dimensions"] for c in d["checks"]} == {"as the model quoted"}
    asked = {c["response_format"]["json_schema"]["name"] for c in fake[0].chats if "response_format" in c}
    assert asked >= {f"score_{k}" for k in KEYS}


async def test_garbage_from_the_model_leaves_a_heuristic_scorecard_that_says_why(app_url, fake):
    fake[0].structured_fn, fake[0].structured_garbage = judged, 10**6
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as client:
        rep = await signup(client)
        sid = await practice_call(app_url, client, rep, lines=["How does your month end close work today?"])
        card = await scorecard(client, rep, sid, timeout=60)
    assert card["scorer"] == "heuristic"
    assert "invalid output twice" in card["fallback_reason"] and "heuristic" in card["fallback_reason"]
