"""The LLM persona and API speech, against fake OpenAI-compatible servers (streaming SSE)."""

import httpx
import pytest

from gateway.app import create_app, serve_app
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAI
from tests.gateway.accounts_helpers import bearer, signup
from tests.gateway.live_client import LiveClient
from tests.servers import run_asgi


@pytest.fixture(scope="module")
def fakes():
    router, openai = FakeOpenAI(reply="OpenRouter here."), FakeOpenAI(reply="Honestly, our close takes eight days.")
    with run_asgi(router.app()) as router_url, run_asgi(openai.app()) as openai_url:
        yield {"router": router, "openai": openai, "router_url": router_url + "/v1", "openai_url": openai_url + "/v1"}


async def start_call(url):
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        rep = await signup(client)
        session = (await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"}, headers=bearer(rep))).json()
    call = await LiveClient(url, session["id"], rep["access_token"]).open()
    await call.wait_for(lambda e: e["type"] == "persona.audio.end", timeout=60)
    return call


async def ask(call, text):
    mark = len(call.events)
    await call.send({"type": "text", "text": text})
    return await call.wait_for(lambda e: e["type"] == "persona.reply", after=mark, timeout=60), mark


async def test_llm_persona_streams_its_reply_from_the_primary(module_database_url, fakes):
    fakes["router"].failing = fakes["openai"].failing = False
    settings = make_settings(module_database_url, openrouter_api_key="sk-or-test",
                             openrouter_base_url=fakes["router_url"],
                             stt_provider="local", tts_provider="local", hints_llm="off")
    with run_asgi(serve_app(create_app(settings))) as url:
        call = await start_call(url)
        reply, mark = await ask(call, "How does your month-end close work?")
        assert reply["text"] == "OpenRouter here."
        deltas = [e for e in call.events[mark:] if e["type"] == "persona.reply.delta"]
        assert len(deltas) >= 2, "the reply arrives as it streams"
        request = fakes["router"].persona_chats()[-1]
        assert request["stream"] is True and request["model"] == "openai/gpt-4o"
        assert request["messages"][0]["role"] == "system" and "Dana Whitfield" in request["messages"][0]["content"]
        assert request["messages"][-1] == {"role": "user", "content": "How does your month-end close work?"}
        assert any(m["role"] == "assistant" and "Dana Whitfield" in m["content"] for m in request["messages"][1:])
        await call.close()


async def test_failing_primary_trips_the_breaker_and_the_fallback_answers(module_database_url, fakes):
    fakes["router"].failing, fakes["openai"].failing = True, False
    settings = make_settings(module_database_url, openrouter_api_key="sk-or-test",
                             openrouter_base_url=fakes["router_url"],
                             openai_api_key="sk-test", openai_base_url=fakes["openai_url"],
                             stt_provider="local", tts_provider="local", hints_llm="off")
    with run_asgi(serve_app(create_app(settings))) as url:
        call = await start_call(url)
        before = len([r for r in fakes["router"].requests if r[1] == "/v1/chat/completions"])
        for i in range(4):
            reply, _ = await ask(call, f"Question {i}: how do you close the books?")
            assert reply["text"] == "Honestly, our close takes eight days."
        tried = len([r for r in fakes["router"].requests if r[1] == "/v1/chat/completions"]) - before
        assert tried == 3, "after three failures the primary is skipped"
        assert fakes["openai"].persona_chats()[-1]["model"] == "gpt-4o"
        await call.close()


async def test_both_llms_down_is_an_error_event_and_the_call_goes_on(module_database_url, fakes):
    fakes["router"].failing = fakes["openai"].failing = True
    settings = make_settings(module_database_url, openai_api_key="sk-test", openai_base_url=fakes["openai_url"],
                             llm_provider="openai", stt_provider="local", tts_provider="local", hints_llm="off")
    with run_asgi(serve_app(create_app(settings))) as url:
        call = await start_call(url)
        mark = len(call.events)
        await call.send({"type": "text", "text": "Hello?"})
        error = await call.wait_for(lambda e: e["type"] == "error", after=mark)
        assert error["code"] == "provider_unavailable"
        fakes["openai"].failing = False
        reply, _ = await ask(call, "Are you there now?")
        assert reply["text"] == "Honestly, our close takes eight days."
        await call.close()


async def test_openai_speech_is_streamed_to_the_rep(module_database_url, fakes):
    fakes["openai"].failing = False
    settings = make_settings(module_database_url, openai_api_key="sk-test", openai_base_url=fakes["openai_url"],
                             llm_provider="scripted", stt_provider="local", tts_provider="openai")
    asked_before = len(fakes["openai"].speech_inputs)
    with run_asgi(serve_app(create_app(settings))) as url:
        call = await start_call(url)
        assert sum(call.audio.values()) > 24000, "the greeting was spoken through the API"
        speech = [r for r in fakes["openai"].requests if r[1] == "/v1/audio/speech"]
        assert speech and speech[-1][2] == "Bearer sk-test"
        await call.close()
    # The greeting's first sentence alone, so it is heard soonest, then the rest in one request.
    assert fakes["openai"].speech_inputs[asked_before:] == ["Dana Whitfield.",
                                                            "I have a few minutes. What is this about?"]


async def test_elevenlabs_speaks_with_the_personas_voice_id(module_database_url):
    from tests.fakes.elevenlabs_server import FakeElevenLabs

    fake = FakeElevenLabs()
    with run_asgi(fake.app()) as eleven_url:
        settings = make_settings(module_database_url, elevenlabs_api_key="el-test", elevenlabs_base_url=eleven_url,
                                 llm_provider="scripted", stt_provider="local")
        with run_asgi(serve_app(create_app(settings))) as url:
            call = await start_call(url)
            assert sum(call.audio.values()) > 24000 * 2, "the greeting came through ElevenLabs"
            await call.close()
    request = fake.requests[0]
    assert request["voice_id"] == "pNInz6obpgDQGcFmaJgB"  # skeptical-cfo's voice in its persona file
    assert request["output_format"] == "pcm_24000" and request["text"].startswith("Dana Whitfield")


async def test_llm_hint_mode_adds_a_stage_aware_hint_through_the_same_debounce(module_database_url, fakes):
    fakes["router"].failing = fakes["openai"].failing = False
    fakes["openai"].structured = {"stage": "discovery", "hint": "Ask what a late close costs them.",
                                  "severity": "info"}
    settings = make_settings(module_database_url, openai_api_key="sk-test", openai_base_url=fakes["openai_url"],
                             stt_provider="local", tts_provider="local", hints_llm_interval_seconds="60")
    with run_asgi(serve_app(create_app(settings))) as url:
        call = await start_call(url)
        await ask(call, "Hi Dana, thanks for taking the call.")
        hint = await call.wait_for(lambda e: e["type"] == "hint" and e["kind"].startswith("llm_"), timeout=20)
        assert hint["kind"] == "llm_discovery" and hint["text"] == "Ask what a late close costs them."
        assert hint["evidence"]["segment_id"] and hint["evidence"]["quote"]
        request = next(c for c in fakes["openai"].chats if "response_format" in c)
        assert request["response_format"]["type"] == "json_schema"
        assert "REP: Hi Dana, thanks for taking the call." in request["messages"][-1]["content"]
        asked = len([c for c in fakes["openai"].chats if "response_format" in c])
        await ask(call, "How does your month-end close work today?")
        await ask(call, "Who else is involved in it?")
        assert len([c for c in fakes["openai"].chats if "response_format" in c]) == asked, "one request per interval"
        assert len([e for e in call.events if e["type"] == "hint" and e["kind"].startswith("llm_")]) == 1
        await call.close()

