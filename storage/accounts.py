"""Organizations, users, memberships, invites and refresh tokens: the SQL behind accounts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from coaching.errors import SparringError

__all__ = [
    "Account", "EmailTaken", "InviteClaim", "LoginUser", "Member", "RefreshRecord", "Role",
    "add_membership", "claim_invite", "create_invite", "create_org", "create_user", "get_account",
    "list_members", "login_user", "mark_refresh_used", "primary_membership", "remove_member",
    "revoke_family", "set_member_role", "store_refresh_token", "find_refresh_token", "user_by_external_id",
    "count_admins", "Invite", "list_invites", "revoke_invite",
    "RefreshUse", "revoke_tokens", "sockets_allowed", "token_revoked", "use_refresh_token",
]

Role = Literal["trainee", "coach", "admin"]
RefreshUse = Literal["fresh", "grace", "reused"]


class EmailTaken(SparringError):
    """Another account already has this email (or external id)."""


class LoginUser(msgspec.Struct, frozen=True):
    id: uuid.UUID
    name: str
    email: str
    password_hash: str | None


class Account(msgspec.Struct, frozen=True):
    """The caller as the database sees them now (role changes apply at once)."""

    user_id: uuid.UUID
    email: str
    name: str
    org_id: uuid.UUID
    org_name: str
    role: Role


class InviteClaim(msgspec.Struct, frozen=True):
    id: uuid.UUID
    org_id: uuid.UUID
    role: Role


class RefreshRecord(msgspec.Struct, frozen=True):
    id: uuid.UUID
    user_id: uuid.UUID
    org_id: uuid.UUID
    family_id: uuid.UUID
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class Invite(msgspec.Struct, frozen=True):
    """A pending invite (its code is shown once, at creation: only its hash is stored)."""

    id: uuid.UUID
    role: Role
    created_at: datetime
    expires_at: datetime
    created_by_name: str | None
    uses: int
    max_uses: int


class Member(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    joined_at: datetime


async def login_user(conn: asyncpg.Connection, email: str) -> LoginUser | None:
    row = await conn.fetchrow("SELECT * FROM auth_user_by_email($1)", email)
    return LoginUser(**dict(row)) if row else None


async def user_by_external_id(conn: asyncpg.Connection, external_id: str) -> uuid.UUID | None:
    user_id: uuid.UUID | None = await conn.fetchval("SELECT auth_user_by_external_id($1)", external_id)
    return user_id


async def primary_membership(conn: asyncpg.Connection, user_id: uuid.UUID) -> tuple[uuid.UUID, Role] | None:
    row = await conn.fetchrow("SELECT org_id, role FROM auth_primary_membership($1)", user_id)
    return (row["org_id"], row["role"]) if row else None


async def claim_invite(conn: asyncpg.Connection, code_hash: str) -> InviteClaim | None:
    """Takes one use of the invite, or returns None when it is unknown, expired, revoked or used up."""
    row = await conn.fetchrow("SELECT id, org_id, role FROM auth_claim_invite($1)", code_hash)
    return InviteClaim(**dict(row)) if row else None


async def create_org(conn: asyncpg.Connection, org_id: uuid.UUID, name: str) -> None:
    await conn.execute("INSERT INTO organizations (id, name) VALUES ($1, $2)", org_id, name)
    await conn.execute("INSERT INTO org_settings (org_id) VALUES ($1)", org_id)


async def create_user(conn: asyncpg.Connection, user_id: uuid.UUID, *, email: str, name: str,
                      password_hash: str | None, external_id: str | None = None) -> None:
    """Raises:
        EmailTaken: the email (in any case) or the external id belongs to another account.
    """
    try:
        await conn.execute(
            "INSERT INTO users (id, email, name, password_hash, external_id) VALUES ($1, $2, $3, $4, $5)",
            user_id, email, name, password_hash, external_id,
        )
    except asyncpg.UniqueViolationError:
        raise EmailTaken("an account with this email exists; log in instead") from None


async def add_membership(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> None:
    await conn.execute("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)", org_id, user_id, role)


async def get_account(conn: asyncpg.Connection, user_id: uuid.UUID, org_id: uuid.UUID) -> Account | None:
    row = await conn.fetchrow(
        """
        SELECT u.id AS user_id, u.email, u.name, o.id AS org_id, o.name AS org_name, m.role
        FROM memberships m
        JOIN users u ON u.id = m.user_id
        JOIN organizations o ON o.id = m.org_id
        WHERE m.user_id = $1 AND m.org_id = $2 AND u.deleted_at IS NULL AND o.deleted_at IS NULL
        """,
        user_id, org_id,
    )
    return Account(**dict(row)) if row else None


async def create_invite(conn: asyncpg.Connection, *, org_id: uuid.UUID, code_hash: str, role: Role,
                        created_by: uuid.UUID, expires_at: datetime) -> uuid.UUID:
    invite_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO invites (org_id, code_hash, role, created_by, expires_at) VALUES ($1, $2, $3, $4, $5)"
        " RETURNING id",
        org_id, code_hash, role, created_by, expires_at,
    )
    return invite_id


async def list_invites(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[Invite]:
    """The org's invites that can still be used (not revoked, expired or used up), newest first."""
    rows = await conn.fetch(
        """
        SELECT i.id, i.role, i.created_at, i.expires_at, u.name AS created_by_name, i.uses, i.max_uses
        FROM invites i LEFT JOIN users u ON u.id = i.created_by
        WHERE i.org_id = $1 AND i.revoked_at IS NULL AND i.expires_at > now() AND i.uses < i.max_uses
        ORDER BY i.created_at DESC, i.id
        """,
        org_id,
    )
    return [Invite(**dict(r)) for r in rows]


async def revoke_invite(conn: asyncpg.Connection, org_id: uuid.UUID, invite_id: uuid.UUID) -> Role | None:
    """Revokes a pending invite; returns its role, or None when there is no such pending invite."""
    role: Role | None = await conn.fetchval(
        "UPDATE invites SET revoked_at = now() WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL RETURNING role",
        invite_id, org_id,
    )
    return role


async def store_refresh_token(conn: asyncpg.Connection, *, user_id: uuid.UUID, org_id: uuid.UUID,
                              family_id: uuid.UUID, token_hash: str, expires_at: datetime) -> None:
    """Stores a refresh token; one already stored (the successor a concurrent rotation of the
    same token stored a moment ago) is kept as it is."""
    await conn.execute(
        "INSERT INTO refresh_tokens (user_id, org_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (token_hash) DO NOTHING",
        user_id, org_id, family_id, token_hash, expires_at,
    )


async def find_refresh_token(conn: asyncpg.Connection, token_hash: str) -> RefreshRecord | None:
    row = await conn.fetchrow("SELECT * FROM auth_refresh_token($1)", token_hash)
    return RefreshRecord(**dict(row)) if row else None


async def mark_refresh_used(conn: asyncpg.Connection, token_id: uuid.UUID) -> bool:
    """Marks a token spent; False when another request spent it first (a reuse)."""
    status = await conn.execute(
        "UPDATE refresh_tokens SET used_at = now() WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL", token_id
    )
    return status == "UPDATE 1"


async def use_refresh_token(conn: asyncpg.Connection, token_id: uuid.UUID, *, grace_s: float) -> RefreshUse:
    """Spends a refresh token. `fresh`: this request spent it. `grace`: another request spent it
    less than `grace_s` ago and its login is not revoked (two tabs refreshing at once).
    `reused`: it was spent earlier, or revoked (a copy is being replayed)."""
    if await mark_refresh_used(conn, token_id):
        return "fresh"
    within: bool | None = await conn.fetchval(
        """
        SELECT used_at IS NOT NULL AND revoked_at IS NULL AND used_at > clock_timestamp() - make_interval(secs => $2)
        FROM refresh_tokens WHERE id = $1
        """,
        token_id, grace_s,
    )
    return "grace" if within else "reused"


async def revoke_tokens(conn: asyncpg.Connection, token_ids: list[str], expires_at: datetime) -> None:
    """Denies access tokens (`jti:<id>`) or whole logins (`family:<id>`) until `expires_at`, on
    every instance; expired entries are dropped on the way."""
    await conn.execute("SELECT auth_revoke_tokens($1::text[], $2)", token_ids, expires_at)


async def token_revoked(conn: asyncpg.Connection, token_ids: list[str]) -> bool:
    revoked: bool = await conn.fetchval("SELECT auth_token_revoked($1::text[])", token_ids)
    return revoked


async def sockets_allowed(conn: asyncpg.Connection, entries: list[tuple[uuid.UUID, uuid.UUID, list[str], bool]]
                          ) -> list[bool]:
    """For each (user_id, org_id, token ids, needs a staff role): whether the socket may stay
    open. One query for all of them."""
    if not entries:
        return []
    rows = await conn.fetch(
        "SELECT i FROM auth_sockets_allowed($1::uuid[], $2::uuid[], $3::text[], $4::boolean[]) AS i",
        [e[0] for e in entries], [e[1] for e in entries], [" ".join(e[2]) for e in entries], [e[3] for e in entries],
    )
    allowed = {int(r["i"]) for r in rows}
    return [i + 1 in allowed for i in range(len(entries))]


async def revoke_family(conn: asyncpg.Connection, family_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL", family_id
    )


async def list_members(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[Member]:
    rows = await conn.fetch(
        """
        SELECT m.user_id, u.email, u.name, m.role, m.created_at AS joined_at
        FROM memberships m JOIN users u ON u.id = m.user_id
        WHERE m.org_id = $1 ORDER BY m.created_at, u.email
        """,
        org_id,
    )
    return [Member(**dict(r)) for r in rows]


async def count_admins(conn: asyncpg.Connection, org_id: uuid.UUID) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'admin'", org_id)
    return count


async def set_member_role(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> bool:
    status = await conn.execute(
        "UPDATE memberships SET role = $3, updated_at = now() WHERE org_id = $1 AND user_id = $2", org_id, user_id, role
    )
    return status == "UPDATE 1"


async def remove_member(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    status = await conn.execute("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2", org_id, user_id)
    return status == "DELETE 1"
