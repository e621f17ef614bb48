"""PCM16 helpers and a streaming resampler (soxr), pure and I/O-free."""

from __future__ import annotations

import numpy as np
import soxr

__all__ = ["PIPELINE_RATE", "Resampler", "frame_bytes", "rms_dbfs", "to_float32"]

PIPELINE_RATE = 16000  # what VAD and STT see


def frame_bytes(sample_rate_hz: int, duration_ms: int) -> int:
    return sample_rate_hz * duration_ms // 1000 * 2


def to_float32(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


def rms_dbfs(pcm: bytes) -> float:
    """Loudness of PCM16 in dBFS (-inf for digital silence)."""
    samples = to_float32(pcm)
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(samples * samples)))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


class Resampler:
    """Streaming PCM16 mono resampler: feed chunks of any size, get the converted PCM16 out.

    Args:
        from_rate_hz: the input sample rate.
        to_rate_hz: the output sample rate.
    """

    def __init__(self, from_rate_hz: int, to_rate_hz: int) -> None:
        if from_rate_hz <= 0 or to_rate_hz <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate_hz} and {to_rate_hz}")
        self.from_rate_hz, self.to_rate_hz = from_rate_hz, to_rate_hz
        self._stream = (
            None if from_rate_hz == to_rate_hz
            else soxr.ResampleStream(from_rate_hz, to_rate_hz, 1, dtype="int16", quality="HQ")
        )

    def feed(self, pcm: bytes, *, last: bool = False) -> bytes:
        if self._stream is None:
            return pcm
        samples = np.frombuffer(pcm, dtype=np.int16)
        resampled: np.ndarray = self._stream.resample_chunk(samples, last=last)
        return resampled.tobytes()
