"""The organization: invites, members and roles, and its audit trail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import asyncpg
import msgspec
from litestar import Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter

from gateway.auth.caller import Caller, CallerDep, TenantDb, require_role
from gateway.auth.revocation import sweeper_of
from gateway.auth.tokens import hash_secret, new_secret
from gateway.errors import ApiError
from storage import accounts
from storage.audit import AuditEntry, list_audit

__all__ = ["audit_log", "create_invite", "list_invites", "list_members", "remove_member", "revoke_invite",
           "update_member"]

INVITE_TTL = timedelta(days=7)
RoleName = Literal["trainee", "coach", "admin"]


class InviteIn(msgspec.Struct):
    role: RoleName


class InviteOut(msgspec.Struct):
    code: str
    role: RoleName
    expires_at: datetime
    id: uuid.UUID | None = None


class Invites(msgspec.Struct):
    items: list[accounts.Invite]


class MemberUpdate(msgspec.Struct):
    role: RoleName


class Members(msgspec.Struct):
    items: list[accounts.Member]


class AuditPage(msgspec.Struct):
    items: list[AuditEntry]
    next_before_id: int | None


@post("/api/orgs/invites", tags=["orgs"], summary="Invite someone (admin: any role; coach: trainees)")
async def create_invite(caller: CallerDep, db: TenantDb, data: JSONBody[InviteIn]) -> InviteOut:
    require_role(caller, "coach", "admin")
    if caller.role == "coach" and data.role != "trainee":
        raise ApiError(403, "forbidden", "coaches can invite trainees only; ask an admin", field="role")
    code = new_secret()
    expires_at = datetime.now(UTC) + INVITE_TTL
    invite_id = await accounts.create_invite(db, org_id=caller.org_id, code_hash=hash_secret(code), role=data.role,
                                             created_by=caller.user_id, expires_at=expires_at)
    return InviteOut(code, data.role, expires_at, invite_id)


@get("/api/orgs/invites", tags=["orgs"],
     summary="Pending invites, newest first (coach, admin; codes are not shown again)")
async def list_invites(caller: CallerDep, db: TenantDb) -> Invites:
    require_role(caller, "coach", "admin")
    return Invites(await accounts.list_invites(db, caller.org_id))


@delete("/api/orgs/invites/{invite_id:uuid}", tags=["orgs"], status_code=204,
        summary="Revoke a pending invite (admin: any; coach: trainee invites)")
async def revoke_invite(caller: CallerDep, db: TenantDb, invite_id: FromPath[uuid.UUID]) -> None:
    require_role(caller, "coach", "admin")
    pending = {i.id: i for i in await accounts.list_invites(db, caller.org_id)}
    if invite_id not in pending:
        raise ApiError(404, "not_found", "no such pending invite")
    if caller.role == "coach" and pending[invite_id].role != "trainee":
        raise ApiError(403, "forbidden", "coaches can revoke trainee invites only; ask an admin")
    await accounts.revoke_invite(db, caller.org_id, invite_id)


@get("/api/orgs/members", tags=["orgs"], summary="The org's members (coach, admin)")
async def list_members(caller: CallerDep, db: TenantDb) -> Members:
    require_role(caller, "coach", "admin")
    return Members(await accounts.list_members(db, caller.org_id))


async def _guard_last_admin(db: asyncpg.Connection, caller: Caller, user_id: uuid.UUID) -> None:
    members = {m.user_id: m for m in await accounts.list_members(db, caller.org_id)}
    if user_id not in members:
        raise ApiError(404, "not_found", "no such member in your organization")
    if members[user_id].role == "admin" and await accounts.count_admins(db, caller.org_id) == 1:
        raise ApiError(409, "last_admin", "the organization needs an admin: promote someone else first")


@patch("/api/orgs/members/{user_id:uuid}", tags=["orgs"], summary="Change a member's role (admin)")
async def update_member(request: Request, caller: CallerDep, db: TenantDb, user_id: FromPath[uuid.UUID],
                        data: JSONBody[MemberUpdate]) -> accounts.Member:
    require_role(caller, "admin")
    if data.role != "admin":
        await _guard_last_admin(db, caller, user_id)
    if not await accounts.set_member_role(db, caller.org_id, user_id, data.role):
        raise ApiError(404, "not_found", "no such member in your organization")
    sweeper = sweeper_of(request)
    if data.role == "trainee" and sweeper is not None:  # no longer staff: stops watching here now,
        sweeper.close_user(user_id, calls=False)  # on the other instances at their next sweep
    return next(m for m in await accounts.list_members(db, caller.org_id) if m.user_id == user_id)


@delete("/api/orgs/members/{user_id:uuid}", tags=["orgs"], summary="Remove a member (admin)", status_code=204)
async def remove_member(request: Request, caller: CallerDep, db: TenantDb, user_id: FromPath[uuid.UUID]) -> None:
    require_role(caller, "admin")
    await _guard_last_admin(db, caller, user_id)
    await accounts.remove_member(db, caller.org_id, user_id)
    sweeper = sweeper_of(request)
    if sweeper is not None:  # their watchers and calls end here now, elsewhere at the next sweep
        sweeper.close_user(user_id, calls=True)


@get("/api/audit", tags=["orgs"], summary="The org's audit trail, newest first (admin)")
async def audit_log(
    caller: CallerDep, db: TenantDb,
    before_id: Annotated[int | None, Parameter(ge=1)] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
) -> AuditPage:
    require_role(caller, "admin")
    items = await list_audit(db, caller.org_id, before_id=before_id, limit=limit)
    return AuditPage(items, items[-1].id if len(items) == limit else None)
