"""Messages one gateway instance sends another about a call the other one owns."""

from __future__ import annotations

import msgspec

__all__ = ["Command", "EndCall", "Handover", "RelayedWhisper", "decode_command", "encode_command"]


class Handover(msgspec.Struct, tag="handover", frozen=True):
    """The rep reconnected elsewhere: persist the call, let its lease go."""
    session_id: str


class RelayedWhisper(msgspec.Struct, tag="whisper", frozen=True):
    """A coach watching on another instance whispered: the owner numbers and publishes it."""
    session_id: str
    sender_id: str
    sender_name: str
    text: str


class EndCall(msgspec.Struct, tag="end", frozen=True):
    """The rep ended their call from another window (`POST /api/sessions/{id}/end`): end it."""
    session_id: str
    reason: str


Command = Handover | RelayedWhisper | EndCall
_decoder = msgspec.json.Decoder(Command)
encode_command = msgspec.json.encode


def decode_command(data: bytes) -> Command:
    return _decoder.decode(data)
