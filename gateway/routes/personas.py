"""Personas: the built-in library (read-only) plus the org's own (coaches and admins write)."""

from __future__ import annotations

import re
import secrets
from typing import Any

import asyncpg
import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody

from coaching.persona import Persona, PersonaFileError, parse_persona, public_view
from gateway.auth.caller import Caller, CallerDep, TenantDb, require_role
from gateway.errors import ApiError
from storage import personas as store

__all__ = ["create_persona", "delete_persona", "get_persona", "list_personas", "persona_view", "replace_persona",
           "resolve_persona", "update_persona"]


def persona_view(caller: Caller, spec: dict[str, Any]) -> dict[str, Any]:
    """The whole persona for coaches and admins; for reps the public view (who the buyer is and the brief),
    so the hidden pains, objections and what wins them never reach a rep's browser."""
    return spec if caller.role in ("coach", "admin") else public_view(spec)


class PersonaOut(msgspec.Struct):
    persona: Persona
    built_in: bool

    def to_json(self, caller: Caller | None = None) -> dict[str, Any]:
        spec = self.persona.to_dict()
        return {**(spec if caller is None else persona_view(caller, spec)), "built_in": self.built_in}


class PersonaList(msgspec.Struct):
    items: list[dict[str, Any]]


def _built_ins(request: Request[Any, Any, Any]) -> dict[str, Persona]:
    personas: dict[str, Persona] = request.app.state.personas
    return personas


_PLAIN = [
    (re.compile(r"^Expected `str` of length >= 1$"), "This can't be empty."),
    (re.compile(r"^Expected `array` of length >= 1$"), "Add at least one."),
    (re.compile(r"^Object missing required field `[^`]+`$"), "This is required."),
    (re.compile(r"^Expected `str` of length <= (\d+)$"), r"At most \1 characters."),
]


def _plain(message: str) -> str:
    """msgspec's wording, in words a coach filling in the persona builder reads (the field names where)."""
    for pattern, plain in _PLAIN:
        if pattern.match(message):
            return pattern.sub(plain, message)
    return message


def _validate(data: dict[str, Any]) -> Persona:
    data = {k: v for k, v in data.items() if k != "built_in"}  # as GET answers it: a duplicate may send it back
    try:
        return parse_persona(data, source="persona")
    except PersonaFileError as exc:
        message = str(exc).removeprefix("persona: ")
        at = re.search(r"at `\$\.?([^`]*)`", message)
        path = at.group(1) if at else ""
        missing = re.search(r"missing required field `([^`]+)`", message)
        if missing:  # msgspec names the object that lacks it; the field is the one to fill in
            path = f"{path}.{missing.group(1)}" if path else missing.group(1)
        raise ApiError(400, "invalid_persona", _plain(message.split(" - at ")[0]), field=path or None) from None


async def resolve_persona(request: Request[Any, Any, Any], db: asyncpg.Connection,
                          persona_id: str) -> tuple[Persona, bool] | None:
    """A built-in persona, or one of the caller's org's (row-level security hides others')."""
    if persona_id in _built_ins(request):
        return _built_ins(request)[persona_id], True
    spec = await store.get_org_persona(db, persona_id)
    return (parse_persona(spec, source=persona_id), False) if spec else None


@get("/api/personas", tags=["personas"], summary="Built-in and your organization's personas")
async def list_personas(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb) -> PersonaList:
    items = [PersonaOut(p, True).to_json(caller) for p in _built_ins(request).values()]
    items += [PersonaOut(parse_persona(spec, source=spec.get("id", "?")), False).to_json(caller)
              for spec in await store.list_org_personas(db, caller.org_id)]
    return PersonaList(items)


@get("/api/personas/{persona_id:str}", tags=["personas"], summary="One persona")
async def get_persona(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb,
                      persona_id: FromPath[str]) -> dict[str, Any]:
    found = await resolve_persona(request, db, persona_id)
    if found is None:
        raise ApiError(404, "not_found", f"no persona {persona_id!r}")
    return PersonaOut(*found).to_json(caller)


@post("/api/personas", tags=["personas"], summary="Add a persona to your organization (coach, admin)")
async def create_persona(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb,
                         data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    require_role(caller, "coach", "admin")
    slug = re.sub(r"[^a-z0-9]+", "-", str(data.get("name", "persona")).lower()).strip("-")[:40] or "persona"
    persona = _validate({**data, "id": f"{slug}-{secrets.token_hex(3)}"})
    await store.create_persona(db, org_id=caller.org_id, spec=persona.to_dict(), created_by=caller.user_id)
    return PersonaOut(persona, False).to_json()


async def _change(request: Request[Any, Any, Any], caller: Caller, db: asyncpg.Connection, persona_id: str,
                  data: dict[str, Any], *, replace: bool) -> dict[str, Any]:
    require_role(caller, "coach", "admin")
    if persona_id in _built_ins(request):
        raise ApiError(403, "built_in_persona", "built-in personas are read-only; create your own instead")
    spec = await store.get_org_persona(db, persona_id)
    if spec is None:
        raise ApiError(404, "not_found", f"no persona {persona_id!r}")
    persona = _validate({**({} if replace else spec), **data, "id": persona_id})
    await store.update_persona(db, persona_id, persona.to_dict())
    return PersonaOut(persona, False).to_json()


@patch("/api/personas/{persona_id:str}", tags=["personas"], summary="Change one of your organization's personas")
async def update_persona(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb, persona_id: FromPath[str],
                         data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return await _change(request, caller, db, persona_id, data, replace=False)


@put("/api/personas/{persona_id:str}", tags=["personas"],
     summary="Replace one of your organization's personas (coach, admin; the persona builder saves with it)")
async def replace_persona(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb, persona_id: FromPath[str],
                          data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return await _change(request, caller, db, persona_id, data, replace=True)


@delete("/api/personas/{persona_id:str}", tags=["personas"], summary="Remove one of your organization's personas",
        status_code=204)
async def delete_persona(request: Request[Any, Any, Any], caller: CallerDep, db: TenantDb,
                         persona_id: FromPath[str]) -> None:
    require_role(caller, "coach", "admin")
    if persona_id in _built_ins(request):
        raise ApiError(403, "built_in_persona", "built-in personas are read-only")
    if not await store.delete_persona(db, persona_id):
        raise ApiError(404, "not_found", f"no persona {persona_id!r}")
