"""OpenAI speech-to-text (`whisper-1`, as the original service used) through the openai SDK."""

from __future__ import annotations

import io
import wave

import openai

from coaching.errors import ProviderUnavailable

__all__ = ["OpenAISTT", "wav_bytes"]


def wav_bytes(pcm: bytes, sample_rate_hz: int, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate_hz)
        wav.writeframes(pcm)
    return buffer.getvalue()


class OpenAISTT:
    supports_partials = False  # one request per finished utterance

    def __init__(self, client: openai.AsyncOpenAI, *, model: str = "whisper-1") -> None:
        self._client, self._model = client, model

    async def transcribe(self, pcm16k: bytes) -> str:
        if len(pcm16k) < 3200:
            return ""
        try:
            result = await self._client.audio.transcriptions.create(
                model=self._model, file=("utterance.wav", wav_bytes(pcm16k, 16000), "audio/wav"), language="en",
            )
        except openai.OpenAIError as exc:
            raise ProviderUnavailable(f"speech-to-text failed ({type(exc).__name__})") from exc
        return result.text.strip()
