"""An in-process stand-in for an OpenAI-compatible API (OpenAI, OpenRouter), speaking its HTTP
protocol: model listing, streaming chat completions (SSE), speech synthesis (raw PCM)."""

from __future__ import annotations

import json
import math
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from litestar import Litestar, Request, Response, get, post
from litestar.response import Stream


@dataclass
class FakeOpenAI:
    """Controls what the fake answers. `reply` is streamed word by word as chat deltas; `requests`
    records (method, path, authorization) per call and `chats` the request bodies of completions.

    Structured-output completions (`response_format`, not streamed) answer with `structured`, or
    with what `structured_fn(body)` returns when it is set: an object sent as JSON content, or a
    string sent as the content as is (for malformed output). The next `structured_failures` of
    them answer 500 and the next `structured_garbage` (after those) answer content that is not JSON."""

    failing: bool = False
    reply: str = "Sure. Tell me more about it."
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    chats: list[dict] = field(default_factory=list)
    # Answer to a completion asking for structured output (`response_format`), sent as its content.
    structured: dict = field(default_factory=lambda: {"stage": "discovery", "hint": None, "severity": "info"})
    structured_fn: Callable[[dict], dict | str] | None = None
    structured_failures: int = 0
    structured_garbage: int = 0

    def persona_chats(self) -> list[dict]:
        """The streamed (persona) completions, without structured-output requests (LLM hints)."""
        return [c for c in self.chats if c.get("stream")]

    def structured_chats(self) -> list[dict]:
        """The structured-output completions (LLM hints, LLM scoring), in the order they came."""
        return [c for c in self.chats if "response_format" in c and not c.get("stream")]

    def _structured_content(self, body: dict) -> str | None:
        """The content to answer a structured request with; None: fail it with 500."""
        if self.structured_failures > 0:
            self.structured_failures -= 1
            return None
        if self.structured_garbage > 0:
            self.structured_garbage -= 1
            return 'Sure! Here is the JSON you asked for: {"'
        answer = self.structured_fn(body) if self.structured_fn is not None else self.structured
        return answer if isinstance(answer, str) else json.dumps(answer)

    def _record(self, request: Request) -> None:
        self.requests.append((request.method, request.url.path, request.headers.get("authorization")))

    def _failure(self) -> Response:
        return Response({"error": {"message": "upstream down", "type": "server_error"}}, status_code=500)

    def app(self) -> Litestar:
        fake = self

        @get("/v1/models")
        async def models(request: Request) -> Response:
            fake._record(request)
            if fake.failing:
                return fake._failure()
            return Response({"object": "list", "data": [{"id": "gpt-4o", "object": "model", "owned_by": "openai"}]})

        @post("/v1/chat/completions", status_code=200)
        async def chat(request: Request) -> Response | Stream:
            fake._record(request)
            body = await request.json()
            fake.chats.append(body)
            if fake.failing:
                return fake._failure()
            if "response_format" in body and not body.get("stream"):
                content = fake._structured_content(body)
                if content is None:
                    return fake._failure()
                return Response({
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                })

            async def sse() -> AsyncIterator[bytes]:
                base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                        "model": body["model"]}
                first = {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                              "finish_reason": None}]}
                yield f"data: {json.dumps(first)}\n\n".encode()
                for word in fake.reply.split(" "):
                    chunk = {**base, "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
                    yield f"data: {json.dumps(chunk)}\n\n".encode()
                done = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                yield f"data: {json.dumps(done)}\n\n".encode()
                yield b"data: [DONE]\n\n"

            return Stream(sse(), media_type="text/event-stream")

        @post("/v1/audio/speech", status_code=200)
        async def speech(request: Request) -> Response | Stream:
            fake._record(request)
            body = await request.json()
            if fake.failing:
                return fake._failure()
            seconds = max(0.3, len(body["input"]) * 0.06)  # about 16 characters a second
            samples = [int(8000 * math.sin(2 * math.pi * 220 * i / 24000)) for i in range(int(24000 * seconds))]
            pcm = struct.pack(f"<{len(samples)}h", *samples)

            async def chunks() -> AsyncIterator[bytes]:
                for i in range(0, len(pcm), 9600):
                    yield pcm[i:i + 9600]

            return Stream(chunks(), media_type="audio/pcm")

        return Litestar([models, chat, speech], logging_config=None)
