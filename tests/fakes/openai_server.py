"""An in-process stand-in for an OpenAI-compatible API (OpenAI, OpenRouter), speaking its HTTP
protocol: model listing, streaming chat completions (SSE), speech synthesis (raw PCM),
transcription (verbose_json segments and words), embeddings (1536-d bags of hashed words)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import struct
import threading
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
    # Transcriptions (`/v1/audio/transcriptions`, verbose_json): each request answers the segments
    # `transcription_fn(wav_bytes)` returns ([{"start", "end", "text"}] in seconds; words are spread
    # over each segment), by default one segment over the whole audio saying `transcript`. The next
    # `transcription_failures` answer 500; `transcription_failing` makes every one answer 500.
    # `transcriptions` records each request's form fields (without the file).
    transcript: str = "Hello, this is Sam from Ledgerly. How does your month end close work today?"
    transcription_fn: Callable[[bytes], list[dict]] | None = None
    transcription_failures: int = 0
    transcription_failing: bool = False
    transcriptions: list[dict] = field(default_factory=list)
    # Embeddings (`/v1/embeddings`): each input is a normalised bag of its hashed words, so texts
    # sharing words are near. Not recorded in `requests` (the knowledge base embeds on start-up);
    # `embedding_inputs` records (model, inputs). The next `embedding_failures` answer 500, and
    # `embeddings_failing` makes every one answer 500. `stream_failures`: the next streamed chat
    # completions that answer 500.
    embedding_inputs: list[tuple[str, list[str]]] = field(default_factory=list)
    speech_inputs: list[str] = field(default_factory=list)  # each `/v1/audio/speech` request's text
    # An embeddings request whose inputs `embedding_hold` is true for waits (up to a minute) until
    # `embedding_release` is set: a test looks at the state while a batch is being embedded.
    embedding_hold: Callable[[list[str]], bool] | None = None
    embedding_release: threading.Event = field(default_factory=threading.Event)
    embedding_failures: int = 0
    embeddings_failing: bool = False
    stream_failures: int = 0

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
            if body.get("stream") and fake.stream_failures > 0:
                fake.stream_failures -= 1
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
            fake.speech_inputs.append(body["input"])
            if fake.failing:
                return fake._failure()
            seconds = max(0.3, len(body["input"]) * 0.06)  # about 16 characters a second
            samples = [int(8000 * math.sin(2 * math.pi * 220 * i / 24000)) for i in range(int(24000 * seconds))]
            pcm = struct.pack(f"<{len(samples)}h", *samples)

            async def chunks() -> AsyncIterator[bytes]:
                for i in range(0, len(pcm), 9600):
                    yield pcm[i:i + 9600]

            return Stream(chunks(), media_type="audio/pcm")

        @post("/v1/audio/transcriptions", status_code=200)
        async def transcriptions(request: Request) -> Response:
            fake._record(request)
            form = await request.form()
            upload = form.get("file")
            audio = await upload.read() if hasattr(upload, "read") else b""
            fields = {k: form.getall(k) if k == "timestamp_granularities[]" else form.get(k)
                      for k in form if k != "file"}
            fake.transcriptions.append(fields)
            if fake.failing or fake.transcription_failing:
                return fake._failure()
            if fake.transcription_failures > 0:
                fake.transcription_failures -= 1
                return fake._failure()
            seconds = max(0.0, (len(audio) - 44) / 32000)  # 16 kHz mono PCM16 WAV
            segments = (fake.transcription_fn(audio) if fake.transcription_fn is not None
                        else [{"start": 0.0, "end": seconds, "text": fake.transcript}])
            out, words = [], []
            for i, s in enumerate(segments):
                out.append({"id": i, "seek": 0, "start": s["start"], "end": s["end"], "text": " " + s["text"],
                            "tokens": [], "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.2,
                            "no_speech_prob": 0.01})
                spoken = s["text"].split()
                step = (s["end"] - s["start"]) / max(1, len(spoken))
                words += [{"word": w, "start": s["start"] + j * step, "end": s["start"] + (j + 1) * step}
                          for j, w in enumerate(spoken)]
            body = {"task": "transcribe", "language": "english", "duration": seconds,
                    "text": " ".join(s["text"] for s in segments), "segments": out}
            if "word" in fields.get("timestamp_granularities[]", []):
                body["words"] = words
            return Response(body)

        @post("/v1/embeddings", status_code=200)
        async def embeddings(request: Request) -> Response:
            body = await request.json()
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            fake.embedding_inputs.append((body["model"], inputs))
            if fake.embedding_hold is not None and fake.embedding_hold(inputs):
                await asyncio.to_thread(fake.embedding_release.wait, 60)
            if fake.failing or fake.embeddings_failing:
                return fake._failure()
            if fake.embedding_failures > 0:
                fake.embedding_failures -= 1
                return fake._failure()
            data = [{"object": "embedding", "index": i, "embedding": bag_of_words(text)}
                    for i, text in enumerate(inputs)]
            return Response({"object": "list", "data": data, "model": body["model"],
                             "usage": {"prompt_tokens": 10, "total_tokens": 10}})

        return Litestar([models, chat, speech, transcriptions, embeddings], logging_config=None)


def bag_of_words(text: str, dimensions: int = 1536) -> list[float]:
    """A unit vector with one bucket per hashed (lower-cased, crudely stemmed) word."""
    vector = [0.0] * dimensions
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        stem = word[:6]
        vector[int.from_bytes(hashlib.sha256(stem.encode()).digest()[:4], "little") % dimensions] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
