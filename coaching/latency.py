"""Voice-to-voice latency of each turn, measured from the side by reading a call's events.

Events:
    None: it only reads. `observe` returns a `TurnLatency` when a turn's first persona audio starts.
"""

from __future__ import annotations

import msgspec

from coaching.events import PersonaAudioStart, PersonaReplyDelta, TranscriptFinal

__all__ = ["LatencyObserver", "TurnLatency"]


class TurnLatency(msgspec.Struct, frozen=True):
    """From the end of the rep's speech to the first byte of the persona's answer, in parts.

    `detect_ms` is the end-of-turn silence window; `stt_ms` what transcription took after it;
    `brain_ms` until the reply's first words; `tts_ms` until its first audio.
    """

    total_ms: int
    detect_ms: int
    stt_ms: int
    brain_ms: int
    tts_ms: int


class LatencyObserver:
    """Args:
        call_started_ms: wall-clock epoch ms of the call's time zero (what `start_ms`/`end_ms` count from).
        silence_ms: the end-of-turn silence window.
    """

    def __init__(self, *, call_started_ms: int, silence_ms: int) -> None:
        self._zero, self._silence_ms = call_started_ms, silence_ms
        self._final: TranscriptFinal | None = None
        self._first_delta_ts: int | None = None

    def observe(self, event: msgspec.Struct) -> TurnLatency | None:
        if isinstance(event, TranscriptFinal) and event.speaker == "rep":
            self._final, self._first_delta_ts = event, None
        elif isinstance(event, PersonaReplyDelta) and self._final is not None and self._first_delta_ts is None:
            self._first_delta_ts = event.ts
        elif isinstance(event, PersonaAudioStart) and self._final is not None and self._first_delta_ts is not None:
            final, delta_ts = self._final, self._first_delta_ts
            self._final = None
            speech_end = self._zero + final.end_ms
            detected = speech_end + self._silence_ms if final.end_ms > final.start_ms else final.ts
            return TurnLatency(
                total_ms=event.ts - speech_end, detect_ms=detected - speech_end, stt_ms=final.ts - detected,
                brain_ms=delta_ts - final.ts, tts_ms=event.ts - delta_ts)
        return None
