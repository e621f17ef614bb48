"""The wire protocol of a live call: server events (one tagged union) and client messages.

The same Structs are sent to the rep and to watchers, cross instances, are persisted, and are
replayed on resume. Every event but `transcript.partial` carries a per-session, gap-free `seq`,
assigned by the call's owner (events are built with seq 0 and numbered there).
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec

__all__ = [
    "PROTOCOL_VERSION", "AudioFormat", "Evidence", "ClientMessage", "ClientEnd", "ClientPing", "ClientStart",
    "ClientText", "Decoder", "ErrorEvent", "Event", "Hint", "Notice", "PersonaAudioEnd", "PersonaAudioStart",
    "PersonaReply", "PersonaReplyDelta",
    "Pong", "ScoreReady", "Sender", "ServerMessage", "SessionEnded", "SessionStarted", "Speaker", "TranscriptFinal",
    "TranscriptPartial", "WatcherMessage", "WatcherWhisper", "Whisper", "client_decoder", "decode_event", "encode",
    "event_decoder", "watcher_decoder", "without_nul",
]

PROTOCOL_VERSION = 1
Speaker = Literal["rep", "persona"]


class AudioFormat(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    encoding: Literal["pcm_s16le"] = "pcm_s16le"
    sample_rate: Annotated[int, msgspec.Meta(ge=8000, le=48000)] = 16000
    channels: Literal[1] = 1


# --- server -> client -------------------------------------------------------------------------

class _Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    session_id: str
    ts: int  # epoch milliseconds


class Event(_Message, frozen=True, kw_only=True):
    """An event with a place in the session's log."""

    seq: int = 0


class SessionStarted(Event, frozen=True, kw_only=True, tag="session.started"):
    protocol: int
    persona_id: str
    output_audio: AudioFormat
    resumed: bool = False


class TranscriptPartial(_Message, frozen=True, kw_only=True, tag="transcript.partial"):
    """Ephemeral: no seq, never persisted or replayed."""

    speaker: Speaker
    text: str
    start_ms: int


class TranscriptFinal(Event, frozen=True, kw_only=True, tag="transcript.final"):
    speaker: Speaker
    text: str
    start_ms: int
    end_ms: int
    segment_id: str


class PersonaReplyDelta(Event, frozen=True, kw_only=True, tag="persona.reply.delta"):
    reply_id: str
    text: str


class PersonaReply(Event, frozen=True, kw_only=True, tag="persona.reply"):
    reply_id: str
    text: str


class PersonaAudioStart(Event, frozen=True, kw_only=True, tag="persona.audio.start"):
    reply_id: str


class PersonaAudioEnd(Event, frozen=True, kw_only=True, tag="persona.audio.end"):
    reply_id: str
    interrupted: bool


class Evidence(msgspec.Struct, frozen=True):
    segment_id: str
    quote: str


class Hint(Event, frozen=True, kw_only=True, tag="hint"):
    hint_id: str
    kind: str
    severity: Literal["info", "warning"]
    text: str
    evidence: Evidence


class Sender(msgspec.Struct, frozen=True):
    id: str
    name: str


class Whisper(Event, frozen=True, kw_only=True, tag="whisper", rename={"sender": "from"}):
    sender: Sender
    text: str


class SessionEnded(Event, frozen=True, kw_only=True, tag="session.ended"):
    reason: str
    duration_ms: int


class ScoreReady(Event, frozen=True, kw_only=True, tag="score.ready"):
    """The call's scorecard is stored (after `session.ended`; again after each rescore). The
    scorecard itself: `GET /api/sessions/{id}/score`."""

    score_id: str
    overall: float
    passed: bool
    scorer: str


class ErrorEvent(Event, frozen=True, kw_only=True, tag="error"):
    code: str
    message: str


class Pong(_Message, frozen=True, kw_only=True, tag="pong"):
    """Ephemeral answer to a ping."""


class Notice(_Message, frozen=True, kw_only=True, tag="notice"):
    """Ephemeral, to one client only: something about its own request (e.g. a whisper that could
    not be delivered). Not part of the session's log."""

    code: str
    message: str


ServerMessage = (
    SessionStarted | TranscriptPartial | TranscriptFinal | PersonaReplyDelta | PersonaReply | PersonaAudioStart
    | PersonaAudioEnd | Hint | Whisper | SessionEnded | ScoreReady | ErrorEvent | Pong | Notice
)

# --- client -> server -------------------------------------------------------------------------

class _Client(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=False):
    pass


class ClientStart(_Client, frozen=True, kw_only=True, tag="start"):
    protocol: int = PROTOCOL_VERSION
    audio: AudioFormat = AudioFormat()
    last_seq: Annotated[int, msgspec.Meta(ge=0)] | None = None


class ClientText(_Client, frozen=True, kw_only=True, tag="text"):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class ClientEnd(_Client, frozen=True, kw_only=True, tag="end"):
    pass


class ClientPing(_Client, frozen=True, kw_only=True, tag="ping"):
    pass


ClientMessage = ClientStart | ClientText | ClientEnd | ClientPing


class WatcherWhisper(_Client, frozen=True, kw_only=True, tag="whisper"):
    """A coach watching a call whispers to the rep."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


WatcherMessage = WatcherWhisper | ClientPing

T = TypeVar("T")


class Decoder(Generic[T]):
    """msgspec's JSON decoder for `type`, whose RecursionError on input nested too deep (even in
    a field it skips) is a `msgspec.DecodeError` like any other message it cannot read, so every
    edge that refuses unreadable input refuses that too (1008 on a socket, 400 over HTTP)."""

    def __init__(self, type: Any) -> None:
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(type)

    def decode(self, data: bytes | str | msgspec.Raw) -> T:
        try:
            return self._decoder.decode(data)
        except RecursionError:
            raise msgspec.DecodeError("JSON nested too deeply") from None


_encoder = msgspec.json.Encoder()
client_decoder: Decoder[ClientMessage] = Decoder(ClientMessage)
watcher_decoder: Decoder[WatcherMessage] = Decoder(WatcherMessage)
event_decoder: Decoder[ServerMessage] = Decoder(ServerMessage)


M = TypeVar("M", bound=msgspec.Struct)


def without_nul(message: M) -> M:
    """The message with NUL characters removed from every text field, nested ones included
    (Postgres stores no NUL, in text or in jsonb)."""
    changes: dict[str, object] = {}
    for name in message.__struct_fields__:
        value = getattr(message, name)
        if isinstance(value, str) and "\x00" in value:
            changes[name] = value.replace("\x00", "")
        elif isinstance(value, msgspec.Struct):
            cleaned = without_nul(value)
            if cleaned is not value:
                changes[name] = cleaned
    return msgspec.structs.replace(message, **changes) if changes else message


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


def decode_event(data: bytes | str) -> ServerMessage:
    return event_decoder.decode(data)
