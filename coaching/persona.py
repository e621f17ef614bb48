"""Buyer personas: the Struct every persona file fills, and the loader that validates them."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import msgspec

from coaching.errors import SparringError

__all__ = ["BUILT_IN_DIR", "CALL_TYPES", "Brief", "NextStep", "Objection", "Pain", "Persona", "PersonaFileError",
           "Voices",
           "load_personas", "public_view"]

BUILT_IN_DIR = Path(__file__).resolve().parent / "personas"

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Keywords = Annotated[list[Annotated[str, msgspec.Meta(min_length=2, max_length=60)]], msgspec.Meta(min_length=1)]


class PersonaFileError(SparringError):
    """A persona file is unreadable or invalid; the message names the file and the field."""


class Pain(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A pain the buyer reveals only when a discovery question touches its keywords."""

    id: str
    keywords: Keywords
    reveal: Text


class Objection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Raised when the rep's words hit a trigger; settled when they answer with what resolves it."""

    id: str
    triggers: Keywords
    text: Text
    resolved_by: Keywords
    resolved_reply: Text


class NextStep(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What it takes for the buyer to agree to a next step, and what they say either way."""

    min_pains: Annotated[int, msgspec.Meta(ge=0, le=10)]
    accept: Text
    decline: Text


class Voices(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A voice per TTS provider."""

    piper: str = "en_US-joe-medium"
    openai: str = "alloy"
    elevenlabs: str = "21m00Tcm4TlvDq8ikWAM"


CallType = Literal["cold call", "discovery", "demo", "negotiation"]
CALL_TYPES: tuple[str, ...] = ("cold call", "discovery", "demo", "negotiation")
BriefText = Annotated[str, msgspec.Meta(max_length=1000)]


class Brief(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The scenario the rep reads before the call (the buyer's hidden pains and objections are not in it)."""

    sells: BriefText = ""  # what the rep is selling
    call_type: CallType = "discovery"
    goal: BriefText = ""  # the rep's goal for this call
    background: BriefText = ""  # what the rep knows about the buyer going in (empty: the persona's situation)
    good_outcome: BriefText = ""  # what a good outcome looks like


class Persona(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,79}$")]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    company: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    industry: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    difficulty: Annotated[int, msgspec.Meta(ge=1, le=5)]
    situation: Text
    personality: Text
    goals: Annotated[list[Text], msgspec.Meta(min_length=1)]
    pains: Annotated[list[Pain], msgspec.Meta(min_length=1)]
    objections: Annotated[list[Objection], msgspec.Meta(min_length=1)]
    next_step: NextStep
    opening_line: Text
    closing_line: Text
    fillers: Annotated[list[Text], msgspec.Meta(min_length=1)]
    voices: Voices = Voices()
    brief: Brief = Brief()

    def to_dict(self) -> dict[str, Any]:
        return cast(dict[str, Any], msgspec.to_builtins(self))


PUBLIC_FIELDS = ("id", "name", "title", "company", "industry", "difficulty")


def public_view(spec: dict[str, Any]) -> dict[str, Any]:
    """What a rep may see of a persona before and during the call: who the buyer is and the brief, never the
    pains, objections or what it takes to win them (those are the exercise)."""
    brief = dict(spec.get("brief") or {})
    out = {k: spec[k] for k in PUBLIC_FIELDS if k in spec}
    out["brief"] = {
        "sells": brief.get("sells", ""), "call_type": brief.get("call_type", "discovery"),
        "goal": brief.get("goal", ""), "background": brief.get("background") or spec.get("situation", ""),
        "good_outcome": brief.get("good_outcome", ""),
    }
    return out


def parse_persona(data: object, *, source: str) -> Persona:
    """Validates one persona's data.

    Raises:
        PersonaFileError: naming `source` and the first bad field.
    """
    try:
        persona = msgspec.convert(data, Persona)
    except msgspec.ValidationError as exc:
        raise PersonaFileError(f"{source}: {exc}") from None
    ids = [p.id for p in persona.pains] + [o.id for o in persona.objections]
    if len(ids) != len(set(ids)):
        raise PersonaFileError(f"{source}: pain and objection ids must be unique - at `$.pains`/`$.objections`")
    return persona


def load_personas(directory: Path = BUILT_IN_DIR) -> dict[str, Persona]:
    """Loads every `*.toml` persona in `directory`, in file-name order.

    Raises:
        PersonaFileError: a file does not parse or validate, or two files share an id.
    """
    personas: dict[str, Persona] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PersonaFileError(f"{path.name}: {exc}") from None
        persona = parse_persona(data, source=path.name)
        if persona.id in personas:
            raise PersonaFileError(f"{path.name}: id {persona.id!r} is used by another persona file - at `$.id`")
        personas[persona.id] = persona
    if not personas:
        raise PersonaFileError(f"no persona files (*.toml) in {directory}")
    return personas
