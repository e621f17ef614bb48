"""One call's event log: the only place a session event gets its seq. Pure state, no I/O.

Every producer of session events appends through a `SessionLog`: the browser call's owner
(gateway/calls/live_call.py), the VAPI translator (gateway/vapi/calls.py) and the janitor that
ends a dead instance's calls (gateway/calls/janitor.py). Appending numbers the event, strips what
Postgres cannot store, encodes the frame every client gets byte for byte, derives the rows to
persist (the event, and a transcript segment for a final), runs the call's hint engine and turn
latency observer, and numbers the hints a final raised right behind it.

A log rebuilt from a call's stored frames (`SessionLog.rebuild`) is in the state the original was
in, hint debounce and "no kind twice" included, so a call that moves to another instance raises
exactly the hints it would have raised where it started.

Events:
    hint {hint_id, kind, severity, text, evidence}: appended right behind the final that raised it.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple, TypeVar

import msgspec

from coaching.brains.base import Turn
from coaching.errors import SparringError
from coaching.events import Event, Hint, ScoreReady, SessionEnded, TranscriptFinal, decode_event, encode, without_nul
from coaching.hints import HintEngine, HintOptions, Severity
from coaching.latency import LatencyObserver, TurnLatency

__all__ = ["Appended", "LogEntry", "Segment", "SessionLog", "as_sent", "wall_ms"]

_TAIL_EVENTS = 1000  # a resuming client gets older events from Postgres


class Segment(msgspec.Struct, frozen=True):
    """A transcript segment row: one final, with its place in the log."""

    segment_id: str
    speaker: str
    text: str
    start_ms: int
    end_ms: int
    seq: int | None


class LogEntry(NamedTuple):
    """One numbered event as it is persisted, published on the bus and sent to clients."""

    seq: int
    type: str
    frame: bytes  # the event's JSON exactly as every client gets it
    segment: Segment | None = None  # the transcript row of a final (not carried on the bus)


class Appended(NamedTuple):
    """What one append produced, in seq order: the event, then the hints it raised."""

    entries: list[LogEntry]
    hints: list[Hint]
    latency: TurnLatency | None = None


_NOTHING = Appended([], [])


E = TypeVar("E", bound=Event)


def wall_ms() -> int:
    return int(time.time() * 1000)


def as_sent(stored: bytes) -> bytes:
    """A stored event's frame byte for byte as first sent (jsonb reorders keys; the Struct does not)."""
    return encode(decode_event(stored))


def _segment(event: Event) -> Segment | None:
    if isinstance(event, TranscriptFinal):
        return Segment(event.segment_id, event.speaker, event.text, event.start_ms, event.end_ms, event.seq)
    return None


class SessionLog:
    """Args:
        session_id: the call.
        hints: live-hint thresholds; None runs no hint engine.
        last_seq: the highest seq already in the log (for a log started without its history).
        call_started_ms: epoch ms of the call's time zero (turn latency counts from it).
        silence_ms: the end-of-turn silence window (turn latency subtracts it).
        tail_events: how many recent frames to keep for clients that resume (0: none).
        clock_ms: epoch milliseconds, stamped on events built with ts 0.
    """

    def __init__(self, session_id: str, *, hints: HintOptions | None = None, last_seq: int = 0,
                 call_started_ms: int = 0, silence_ms: int = 500, tail_events: int = _TAIL_EVENTS,
                 clock_ms: Callable[[], int] = wall_ms) -> None:
        if last_seq < 0 or tail_events < 0:
            raise ValueError(f"last_seq and tail_events must be >= 0, got {last_seq} and {tail_events}")
        self.session_id = session_id
        self._seq = last_seq
        self._clock_ms = clock_ms
        self._tail: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=tail_events)
        self._hints = HintEngine(session_id, hints) if hints is not None else None
        self._latency = LatencyObserver(call_started_ms=call_started_ms, silence_ms=silence_ms)
        self.conversation: list[Turn] = []  # every final, as the persona heard the call
        self.sealed = False  # session.ended is in the log (or the call was let go): nothing more

    @classmethod
    def rebuild(cls, session_id: str, frames: Iterable[bytes], *, hints: HintOptions | None = None,
                call_started_ms: int = 0, silence_ms: int = 500, tail_events: int = _TAIL_EVENTS,
                clock_ms: Callable[[], int] = wall_ms) -> SessionLog:
        """A log in the state of the one that numbered `frames` (a call's stored events, in seq
        order); the options are the constructor's."""
        log = cls(session_id, hints=hints, call_started_ms=call_started_ms, silence_ms=silence_ms,
                  tail_events=tail_events, clock_ms=clock_ms)
        for frame in frames:
            log.replay(frame)
        return log

    # --- reading -------------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def first_seq_in_memory(self) -> int:
        return self._tail[0][0] if self._tail else self._seq + 1

    def frames_after(self, after_seq: int, upto_seq: int | None = None) -> list[bytes]:
        """The frames in memory with after_seq < seq (<= upto_seq, when given)."""
        last = self._seq if upto_seq is None else upto_seq
        return [frame for seq, frame in self._tail if after_seq < seq <= last]

    # --- appending -----------------------------------------------------------------------------

    def append(self, event: Event, *, raise_hints: bool = True) -> Appended:
        """Numbers one event (seq 0 as built) and the hints it raises; nothing once sealed, but
        for `score.ready`, which comes after the call by nature.

        Args:
            event: any log event; `ts` 0 is stamped with the clock.
            raise_hints: False for finals that are history, not live speech (a report's transcript).
        """
        if self.sealed and not isinstance(event, ScoreReady):
            return _NOTHING
        numbered = self._number(event)
        entries = [self._keep(numbered)]
        latency = self._latency.observe(numbered)
        hints: list[Hint] = []
        match numbered:
            case TranscriptFinal() if raise_hints and self._hints is not None:
                for hint in self._hints.observe(numbered):
                    hints.append(self._number(hint))
                    entries.append(self._keep(hints[-1]))
            case SessionEnded():
                self.sealed = True
            case _:
                pass
        return Appended(entries, hints, latency)

    def admit_hint(self, kind: str, severity: Severity, text: str) -> Appended:
        """A hint from elsewhere (the LLM mode), under the same debounce as rule hints, quoting the
        latest final; nothing when the debounce holds it back or the log is sealed."""
        if self.sealed or self._hints is None:
            return _NOTHING
        hint = self._hints.admit(kind, severity, text)
        if hint is None:
            return _NOTHING
        numbered = self._number(hint)
        return Appended([self._keep(numbered)], [numbered])

    def replay(self, frame: bytes) -> LogEntry:
        """Takes in an event numbered before (stored, or left on the bus by a dead owner), as it
        was: its seq, its place in the tail, what it did to the hint state. Returns its entry (with
        its transcript segment) for a caller that still has to persist it.

        Raises:
            SparringError: the frame is not a numbered log event, or its seq does not follow the log's.
        """
        event = decode_event(frame)
        if not isinstance(event, Event) or event.seq != self._seq + 1:
            seq = event.seq if isinstance(event, Event) else None
            raise SparringError(f"event {seq} cannot follow seq {self._seq} in session {self.session_id}")
        self._seq = event.seq
        if self._hints is not None:
            self._hints.replay(event)
        if isinstance(event, SessionEnded):
            self.sealed = True
        return self._keep(event)

    def seal(self) -> None:
        """Nothing more is appended (the call is let go; its next owner rebuilds the log)."""
        self.sealed = True

    def _number(self, event: E) -> E:
        self._seq += 1
        return without_nul(msgspec.structs.replace(event, seq=self._seq, ts=event.ts or self._clock_ms()))

    def _keep(self, event: Event) -> LogEntry:
        frame = encode(event)
        self._tail.append((event.seq, frame))
        if isinstance(event, TranscriptFinal):
            self.conversation.append(Turn(event.speaker, event.text))
        return LogEntry(event.seq, str(event.__struct_config__.tag), frame, _segment(event))
