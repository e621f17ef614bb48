"""Voice activity: speech onset and end of turn from 20 ms frames (WebRTC VAD), pure state."""

from __future__ import annotations

from typing import Literal

import webrtcvad

from coaching.audio.pcm import PIPELINE_RATE, frame_bytes

__all__ = ["FRAME_MS", "TurnDetector", "VadEvent"]

FRAME_MS = 20
_FRAME_BYTES = frame_bytes(PIPELINE_RATE, FRAME_MS)

VadEvent = Literal["speech_start", "speech_end"]


class TurnDetector:
    """Turns a stream of 16 kHz PCM16 into `speech_start` / `speech_end` events.

    Args:
        silence_ms: how long the rep must be silent for their turn to end.
        onset_ms: how much speech (within a short window) counts as the rep starting to talk;
            short enough that barge-in reacts fast, long enough to ignore clicks.
        aggressiveness: WebRTC VAD mode 0-3 (3 rejects the most non-speech).
    """

    def __init__(self, *, silence_ms: int = 500, onset_ms: int = 60, aggressiveness: int = 2) -> None:
        errors = []
        if silence_ms < FRAME_MS:
            errors.append(f"silence_ms must be at least {FRAME_MS}, got {silence_ms}")
        if onset_ms < FRAME_MS:
            errors.append(f"onset_ms must be at least {FRAME_MS}, got {onset_ms}")
        if aggressiveness not in (0, 1, 2, 3):
            errors.append(f"aggressiveness must be 0-3, got {aggressiveness}")
        if errors:
            raise ValueError("; ".join(errors))
        self._vad = webrtcvad.Vad(aggressiveness)
        self._onset_frames = onset_ms // FRAME_MS
        self._silence_frames = silence_ms // FRAME_MS
        self._buffer = bytearray()
        self._recent: list[bool] = []
        self._silent_run = 0
        self.speaking = False
        self.position_ms = 0  # audio time consumed so far

    @property
    def silent_ms(self) -> int:
        """How long the rep has been silent within their current turn (0 while not in a turn)."""
        return self._silent_run * FRAME_MS if self.speaking else 0

    def feed(self, pcm: bytes) -> list[tuple[VadEvent, int]]:
        """Feeds PCM of any length; returns the events it completes, each with its audio time in ms."""
        self._buffer += pcm
        events: list[tuple[VadEvent, int]] = []
        while len(self._buffer) >= _FRAME_BYTES:
            frame = bytes(self._buffer[:_FRAME_BYTES])
            del self._buffer[:_FRAME_BYTES]
            self.position_ms += FRAME_MS
            voiced = self._vad.is_speech(frame, PIPELINE_RATE)
            if not self.speaking:
                self._recent = (self._recent + [voiced])[-(self._onset_frames + 1):]
                if sum(self._recent) >= self._onset_frames:
                    self.speaking = True
                    self._silent_run = 0
                    events.append(("speech_start", self.position_ms - self._onset_frames * FRAME_MS))
            else:
                self._silent_run = 0 if voiced else self._silent_run + 1
                if self._silent_run >= self._silence_frames:
                    self.speaking = False
                    self._recent = []
                    events.append(("speech_end", self.position_ms - self._silent_run * FRAME_MS))
        return events
