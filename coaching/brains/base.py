"""The contract every persona brain fulfils."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Literal, Protocol

import msgspec

from coaching.persona import Persona

__all__ = ["Brain", "Reply", "Turn"]


class Turn(msgspec.Struct, frozen=True):
    speaker: Literal["rep", "persona"]
    text: str


class Reply:
    """A reply being produced: iterate it for text deltas; afterwards `end_call` says whether the
    buyer is ending the call."""

    def __init__(self, deltas: AsyncIterator[str]) -> None:
        self._deltas = deltas
        self.end_call = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self._deltas


class Brain(Protocol):
    def respond(self, persona: Persona, history: Sequence[Turn]) -> Reply:
        """Starts the persona's answer to the last rep turn in `history`."""
        ...
