"""ElevenLabs text-to-speech over its streaming HTTP API, voice ids from the persona file."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from coaching.errors import ProviderUnavailable
from coaching.persona import Voices

__all__ = ["ElevenLabsTTS"]


class ElevenLabsTTS:
    sample_rate_hz = 24000
    streams = True

    def __init__(self, client: httpx.AsyncClient, *, model_id: str = "eleven_turbo_v2_5") -> None:
        self._client, self._model_id = client, model_id

    async def synthesize(self, text: str, voices: Voices) -> AsyncIterator[bytes]:
        url = f"/v1/text-to-speech/{voices.elevenlabs}/stream"
        try:
            async with self._client.stream(
                "POST", url, params={"output_format": "pcm_24000"},
                json={"text": text, "model_id": self._model_id},
            ) as response:
                if not response.is_success:
                    raise ProviderUnavailable(f"text-to-speech failed (HTTP {response.status_code})")
                async for chunk in response.aiter_bytes(4800):
                    yield chunk
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"text-to-speech failed ({type(exc).__name__})") from exc
