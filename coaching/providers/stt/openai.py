"""OpenAI speech-to-text (`whisper-1`, as the original service used) through the openai SDK."""

from __future__ import annotations

import io
import wave
from typing import Literal

import openai

from coaching.errors import ProviderUnavailable
from coaching.providers.stt.base import TimedSegment, TimedWord, TransientSTTError

__all__ = ["OpenAIRecordingSTT", "OpenAISTT", "wav_bytes"]


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

    async def transcribe(self, pcm16k: bytes, *, partial: bool = False) -> str:
        if len(pcm16k) < 3200:  # (never asked for a partial: supports_partials is False)
            return ""
        try:
            result = await self._client.audio.transcriptions.create(
                model=self._model, file=("utterance.wav", wav_bytes(pcm16k, 16000), "audio/wav"), language="en",
            )
        except openai.OpenAIError as exc:
            raise ProviderUnavailable(f"speech-to-text failed ({type(exc).__name__})") from exc
        return result.text.strip()


def _transient(exc: openai.OpenAIError) -> bool:
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError | openai.RateLimitError):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


class OpenAIRecordingSTT:
    """Recorded calls through `whisper-1` with `verbose_json` segments and word timestamps, one
    request per chunk (each well under the API's 25 MB). No retries here: `RetryingRecordingSTT`
    wraps it. Raises `TransientSTTError` for what is worth retrying, `ProviderUnavailable` else."""

    name = "openai:whisper-1"

    def __init__(self, client: openai.AsyncOpenAI, *, model: str = "whisper-1") -> None:
        self._client, self._model = client.with_options(max_retries=0), model
        self.name = f"openai:{model}"

    async def transcribe_timed(self, pcm16k: bytes, *, offset_ms: int, words: bool) -> list[TimedSegment]:
        if len(pcm16k) < 3200:
            return []
        granularities: list[Literal["word", "segment"]] = ["segment", "word"] if words else ["segment"]
        try:
            result = await self._client.audio.transcriptions.create(
                model=self._model, file=("chunk.wav", wav_bytes(pcm16k, 16000), "audio/wav"), language="en",
                response_format="verbose_json", timestamp_granularities=granularities)
        except openai.OpenAIError as exc:
            status = getattr(exc, "status_code", None)
            reason = f"speech-to-text failed ({type(exc).__name__}{f', HTTP {status}' if status else ''})"
            raise (TransientSTTError if _transient(exc) else ProviderUnavailable)(reason) from exc
        timed = [TimedWord(offset_ms + int(w.start * 1000), offset_ms + int(max(w.end, w.start) * 1000), w.word.strip())
                 for w in (result.words or []) if w.word.strip()]
        out: list[TimedSegment] = []
        for s in result.segments or []:
            text = s.text.strip()
            if not text:
                continue
            start, end = offset_ms + int(s.start * 1000), offset_ms + int(max(s.end, s.start) * 1000)
            inside = [w for w in timed if start <= (w.start_ms + w.end_ms) // 2 < end + 1]
            out.append(TimedSegment(start, end, text, inside))
        return out
