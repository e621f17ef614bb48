"""A WebRTC call's audio: the rep's Opus track decoded into the pipeline's 16 kHz mono PCM16, and
the persona's voice on an outbound track paced at 20 ms frames of 48 kHz.

aiortc decodes Opus itself (48 kHz stereo s16 frames, after its fixed jitter buffer: 16 packets,
released once 4 later ones arrived, so about 80 ms). Its sender pulls the outbound track's `recv`
as fast as it returns, so the track keeps the RTP clock: it sleeps until each frame is due and
sends silence when the persona is quiet (a track that blocks would stall the clock and the
browser's jitter buffer would stretch the next reply).
"""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from coaching.audio.pcm import PIPELINE_RATE, Resampler
from coaching.call import OUTPUT_RATE

__all__ = ["FRAME_MS", "TRACK_RATE", "InboundAudio", "Pacing", "PersonaTrack"]

TRACK_RATE = 48000  # Opus' clock; the encoder takes our mono frames at this rate
FRAME_MS = 20  # aiortc's AUDIO_PTIME
FRAME_SAMPLES = TRACK_RATE * FRAME_MS // 1000
_MAX_BUFFER_S = 30  # persona audio waiting to go out; the pipeline paces at most 300 ms ahead
_SILENCE = bytes(FRAME_SAMPLES * 2)


_REANCHOR_AFTER_S = 0.06  # three frames late

class Pacing:
    """How late the outbound frames went out against their schedule (pure; fed by the track).

    Args:
        slip_limit_ms: a frame later than this counts as slipped.
    """

    def __init__(self, *, slip_limit_ms: float = 20.0) -> None:
        if slip_limit_ms <= 0:
            raise ValueError(f"slip_limit_ms must be positive, got {slip_limit_ms}")
        self.slip_limit_ms = slip_limit_ms
        self.frames = 0
        self.slipped = 0
        self.max_late_ms = 0.0

    def record(self, late_ms: float) -> None:
        self.frames += 1
        self.max_late_ms = max(self.max_late_ms, late_ms)
        if late_ms > self.slip_limit_ms:
            self.slipped += 1


class PersonaTrack(MediaStreamTrack):
    """The persona's voice as an aiortc audio track: `feed` 24 kHz PCM16, `flush` at a barge-in.

    Frames are 20 ms of 48 kHz mono s16, due at `start + n * 20 ms` on the monotonic clock; a
    frame `recv` returns late is recorded in `pacing`, and the clock is not reset (late frames
    are caught up at once, as the browser's jitter buffer expects).
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.pacing = Pacing()
        self._buffer = bytearray()
        self._upsample = Resampler(OUTPUT_RATE, TRACK_RATE)
        self._start: float | None = None
        self._timestamp = 0
        self._time_base = fractions.Fraction(1, TRACK_RATE)
        self.sent_audio_frames = 0  # frames that carried persona audio (not silence)

    def feed(self, pcm24k: bytes) -> None:
        if self.readyState != "live":
            return
        self._buffer += self._upsample.feed(pcm24k)
        overflow = len(self._buffer) - _MAX_BUFFER_S * TRACK_RATE * 2
        if overflow > 0:
            del self._buffer[:overflow]

    def flush(self) -> None:
        """Drops what has not gone out (the rep barged in)."""
        self._buffer.clear()
        self._upsample = Resampler(OUTPUT_RATE, TRACK_RATE)

    @property
    def buffered_ms(self) -> float:
        return len(self._buffer) / 2 / TRACK_RATE * 1000

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            self._timestamp += FRAME_SAMPLES
            due = self._start + self._timestamp / TRACK_RATE
            if due > now:
                await asyncio.sleep(due - now)
            late_s = time.monotonic() - due
            self.pacing.record(max(0.0, late_s * 1000))
            if late_s > _REANCHOR_AFTER_S:
                # After a stall, carry on from now rather than send every missed frame at once (a
                # burst only grows the browser's jitter buffer): the schedule moves, the media
                # timestamps stay contiguous.
                self._start += late_s
        size = FRAME_SAMPLES * 2
        if len(self._buffer) >= size:
            chunk = bytes(self._buffer[:size])
            del self._buffer[:size]
            self.sent_audio_frames += 1
        elif self._buffer:
            chunk = bytes(self._buffer) + _SILENCE[len(self._buffer):]
            self._buffer.clear()
            self.sent_audio_frames += 1
        else:
            chunk = _SILENCE
        frame = av.AudioFrame.from_ndarray(np.frombuffer(chunk, dtype=np.int16).reshape(1, -1), format="s16",
                                           layout="mono")
        frame.sample_rate = TRACK_RATE
        frame.pts = self._timestamp
        frame.time_base = self._time_base
        return frame


class InboundAudio:
    """The rep's decoded Opus frames (48 kHz stereo from aiortc) as the pipeline's 16 kHz mono PCM16.

    One stateful PyAV resampler per track, so no sample is lost at frame edges.
    """

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = av.AudioResampler(format="s16", layout="mono",
                                                                      rate=PIPELINE_RATE)
        self.frames = 0

    def convert(self, frame: av.AudioFrame) -> bytes:
        if self._resampler is None:
            return b""
        self.frames += 1
        return b"".join(out.to_ndarray().tobytes() for out in self._resampler.resample(frame))

    def close(self) -> None:
        self._resampler = None

    @property
    def open(self) -> bool:
        return self._resampler is not None
