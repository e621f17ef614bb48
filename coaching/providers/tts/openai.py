"""OpenAI text-to-speech, streamed as raw 24 kHz PCM through the openai SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai

from coaching.errors import ProviderUnavailable
from coaching.persona import Voices

__all__ = ["OpenAITTS"]


class OpenAITTS:
    sample_rate_hz = 24000  # response_format="pcm" is 24 kHz mono PCM16
    streams = True

    def __init__(self, client: openai.AsyncOpenAI, *, model: str = "tts-1") -> None:
        self._client, self._model = client, model

    async def synthesize(self, text: str, voices: Voices) -> AsyncIterator[bytes]:
        try:
            async with self._client.audio.speech.with_streaming_response.create(
                model=self._model, voice=voices.openai, input=text, response_format="pcm",
            ) as response:
                async for chunk in response.iter_bytes(4800):
                    yield chunk
        except openai.OpenAIError as exc:
            raise ProviderUnavailable(f"text-to-speech failed ({type(exc).__name__})") from exc
