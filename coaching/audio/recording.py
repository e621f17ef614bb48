"""The call recording: rep on the left, persona on the right, 16 kHz PCM16, built as the call runs."""

from __future__ import annotations

import numpy as np

from coaching.audio.pcm import PIPELINE_RATE, Resampler

__all__ = ["RECORDING_CONTENT_TYPE", "StereoRecorder"]

RECORDING_CONTENT_TYPE = f"audio/L16;rate={PIPELINE_RATE};channels=2"
_PERSONA_BATCH_MS = 100


class StereoRecorder:
    """Interleaves the two sides on the rep's audio clock: each rep frame takes as much persona
    audio as it is long (silence when the persona is quiet). Persona audio sent while no rep audio
    flows (a typed call) comes out at `flush` against a silent left channel. Pure: bytes in, bytes out.

    A frame only appends to the two channels (`rep`); they are interleaved when the caller takes
    what is pending (`drain`, `flush`), a blob chunk at a time: numpy's per-call cost, paid 50
    times a second per call, was most of the recording's CPU. For the same reason the persona's
    audio (at `persona_rate_hz`) is resampled to 16 kHz in batches: when a rep frame needs more
    than is converted, or once `_PERSONA_BATCH_MS` of it waits (it arrives up to 300 ms ahead).

    Args:
        persona_rate_hz: the sample rate of the audio given to `persona`.
    """

    def __init__(self, persona_rate_hz: int = PIPELINE_RATE) -> None:
        self._to_16k = Resampler(persona_rate_hz, PIPELINE_RATE)
        self._batch_bytes = persona_rate_hz * 2 * _PERSONA_BATCH_MS // 1000
        self._arrived = bytearray()  # the persona's audio not resampled yet
        self._persona = bytearray()  # the persona's audio (16 kHz) no rep frame has taken yet
        # Pending, a piece per frame (joined once at `drain`: a bytearray grown 640 bytes at a time
        # is copied again and again as it grows): the rep's frames, and what each took of the persona.
        self._left: list[bytes] = []
        self._right: list[bytes] = []
        self._pending = 0

    def persona(self, pcm: bytes) -> None:
        self._arrived += pcm
        if len(self._arrived) >= self._batch_bytes:
            self._convert()

    def _convert(self) -> None:
        whole = len(self._arrived) & ~1  # an odd byte waits for its other half
        if whole:
            self._persona += self._to_16k.feed(bytes(self._arrived[:whole]))
            del self._arrived[:whole]

    def rep(self, pcm16k: bytes) -> None:
        size = len(pcm16k) & ~1  # whole samples
        if len(self._persona) < size and self._arrived:
            self._convert()
        self._left.append(pcm16k[:size] if size != len(pcm16k) else pcm16k)
        self._pending += size
        take = min(len(self._persona), size) & ~1
        right = bytes(self._persona[:take])
        del self._persona[:take]
        self._right.append(right if take == size else right + bytes(size - take))

    @property
    def pending_bytes(self) -> int:
        """Stereo bytes that `drain` would return now."""
        return 2 * self._pending

    def drain(self) -> bytes:
        """The stereo audio of every rep frame so far, interleaved, then forgotten."""
        if not self._pending:
            return b""
        stereo = np.empty(self._pending, dtype=np.int16)
        stereo[0::2] = np.frombuffer(b"".join(self._left), dtype=np.int16)
        stereo[1::2] = np.frombuffer(b"".join(self._right), dtype=np.int16)
        self._left.clear()
        self._right.clear()
        self._pending = 0
        return stereo.tobytes()

    def flush(self) -> bytes:
        """`drain`, then the persona audio no rep frame took, against a silent left channel."""
        pending = self.drain()
        self._convert()
        # The resampler's last ~30 ms stay in it: flushed here they would land at the end of the
        # recording, after every rep frame. Audio after a flush starts a new stream.
        self._to_16k = Resampler(self._to_16k.from_rate_hz, PIPELINE_RATE)
        self._arrived.clear()
        if not self._persona:
            return pending
        right = np.frombuffer(bytes(self._persona), dtype=np.int16)
        self._persona.clear()
        return pending + np.column_stack((np.zeros(len(right), dtype=np.int16), right)).tobytes()
