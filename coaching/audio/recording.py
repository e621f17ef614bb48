"""The call recording: rep on the left, persona on the right, 16 kHz PCM16, built as the call runs."""

from __future__ import annotations

import numpy as np

from coaching.audio.pcm import PIPELINE_RATE

__all__ = ["RECORDING_CONTENT_TYPE", "StereoRecorder"]

RECORDING_CONTENT_TYPE = f"audio/L16;rate={PIPELINE_RATE};channels=2"


class StereoRecorder:
    """Interleaves the two sides on the rep's audio clock: each rep frame takes as much persona
    audio as it is long (silence when the persona is quiet). Persona audio sent while no rep audio
    flows (a typed call) comes out at `flush` against a silent left channel. Pure: bytes in, bytes out."""

    def __init__(self) -> None:
        self._persona = bytearray()

    def persona(self, pcm16k: bytes) -> None:
        self._persona += pcm16k

    def rep(self, pcm16k: bytes) -> bytes:
        samples = len(pcm16k) // 2
        stereo = np.zeros(2 * samples, dtype=np.int16)
        stereo[0::2] = np.frombuffer(pcm16k, dtype=np.int16, count=samples)
        if self._persona:
            take = min(len(self._persona), 2 * samples)
            stereo[1:2 * (take // 2):2] = np.frombuffer(bytes(self._persona[:take]), dtype=np.int16)
            del self._persona[:take]
        return stereo.tobytes()

    def flush(self) -> bytes:
        if not self._persona:
            return b""
        right = np.frombuffer(bytes(self._persona), dtype=np.int16)
        self._persona.clear()
        return np.column_stack((np.zeros(len(right), dtype=np.int16), right)).tobytes()
