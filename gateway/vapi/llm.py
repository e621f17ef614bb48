"""Sparring's persona brain as VAPI's custom LLM: OpenAI chat-completions in, SSE chunks out
(`data: {chunk}` ... `data: [DONE]`) whenever the body says `stream: true`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from coaching.brains.base import Brain, Turn
from coaching.persona import Persona
from gateway.vapi.messages import session_ref_in

__all__ = ["ChatRequest", "history_of", "sse_chunks", "whole_completion"]


class ChatRequest(msgspec.Struct, kw_only=True):
    messages: list[dict[str, Any]]
    model: str = "sparring-persona"
    stream: bool = False
    call: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    def session_ref(self) -> tuple[uuid.UUID, str] | None:
        return session_ref_in(self.call, self.metadata)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def history_of(request: ChatRequest) -> list[Turn]:
    """The conversation as the persona hears it: user turns are the rep's, assistant turns its own."""
    turns = []
    for message in request.messages:
        text = _text(message.get("content")).strip()
        if text and message.get("role") in ("user", "assistant"):
            turns.append(Turn("rep" if message["role"] == "user" else "persona", text))
    return turns


def _chunk(ident: str, model: str, delta: dict, finish: str | None) -> bytes:
    body = {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


async def sse_chunks(brain: Brain, persona: Persona, history: list[Turn], model: str) -> AsyncIterator[bytes]:
    ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    yield _chunk(ident, model, {"role": "assistant", "content": ""}, None)
    try:
        async for delta in brain.respond(persona, history):
            yield _chunk(ident, model, {"content": delta}, None)
        yield _chunk(ident, model, {}, "stop")
    except Exception:  # the persona brain failed mid-stream: end the stream cleanly, VAPI moves on
        yield _chunk(ident, model, {}, "stop")
    yield b"data: [DONE]\n\n"


async def whole_completion(brain: Brain, persona: Persona, history: list[Turn], model: str) -> dict:
    text = "".join([delta async for delta in brain.respond(persona, history)])
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": text}}]}
