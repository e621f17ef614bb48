"""The caller's own data: export it all, or delete the account; and their curriculum."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath

from gateway.auth.caller import CallerDep, TenantDb
from gateway.auth.revocation import sweeper_of
from gateway.auth.sessions import clear_cookies
from gateway.errors import ApiError
from storage import accounts
from storage.curriculum import ModuleProgress, complete_module, list_modules
from storage.user_data import delete_user, export_user

__all__ = ["complete_curriculum_module", "curriculum", "delete_account", "export_data"]


class Curriculum(msgspec.Struct):
    items: list[ModuleProgress]


@post("/api/user/export", tags=["user"], summary="Everything you own, as JSON", status_code=200)
async def export_data(caller: CallerDep, db: TenantDb) -> Response[dict[str, Any]]:
    export = await export_user(db, caller.user_id)
    return Response(export, headers={"Content-Disposition": 'attachment; filename="sparring-export.json"',
                                     "Cache-Control": "no-store"})


@post("/api/user/delete", tags=["user"], summary="Delete your account and everything you own", status_code=204)
async def delete_account(request: Request, caller: CallerDep, db: TenantDb) -> Response[None]:
    members = await accounts.list_members(db, caller.org_id)
    others = [m for m in members if m.user_id != caller.user_id]
    if caller.role == "admin" and others and not any(m.role == "admin" for m in others):
        raise ApiError(409, "last_admin", "you are the organization's only admin: make someone else admin first")
    await delete_user(db, caller.user_id, caller.org_id, delete_org=not others)
    sweeper = sweeper_of(request)
    if sweeper is not None:  # their sockets close here now, elsewhere at the next sweep
        sweeper.close_user(caller.user_id, calls=True)
    return clear_cookies(Response(None, status_code=204))


@get("/api/curriculum", tags=["curriculum"], summary="The curriculum with your progress")
async def curriculum(caller: CallerDep, db: TenantDb) -> Curriculum:
    return Curriculum(await list_modules(db, caller.user_id, caller.org_id))


@post("/api/curriculum/{module_id:str}/complete", tags=["curriculum"], summary="Mark a module completed",
      status_code=200)
async def complete_curriculum_module(caller: CallerDep, db: TenantDb, module_id: FromPath[str]) -> ModuleProgress:
    progress = await complete_module(db, caller.user_id, caller.org_id, module_id)
    if progress is None:
        raise ApiError(404, "not_found", f"there is no curriculum module {module_id!r}")
    return progress
