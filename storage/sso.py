"""Single sign-on: the identities accounts log in with, the email domains organizations claim, and
whether an organization requires SSO."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from coaching.errors import SparringError

__all__ = [
    "ClaimedDomain", "IdentityTaken", "add_identity", "claim_domain", "end_password_logins", "has_verified_email_on",
    "list_domains",
    "org_for_domain", "release_domain", "set_sso_required", "sso_required", "touch_identity", "user_by_identity",
]


class IdentityTaken(SparringError):
    """(provider, subject) was linked to an account a moment ago, by a login racing this one."""


class ClaimedDomain(msgspec.Struct, frozen=True):
    domain: str
    claimed_by_name: str | None
    created_at: datetime


async def user_by_identity(conn: asyncpg.Connection, provider: str, subject: str) -> uuid.UUID | None:
    """The account that logged in before as (provider, subject); any tenant may ask."""
    user_id: uuid.UUID | None = await conn.fetchval("SELECT auth_user_by_identity($1, $2)", provider, subject)
    return user_id


async def org_for_domain(conn: asyncpg.Connection, domain: str) -> uuid.UUID | None:
    """The organization that claimed `domain` (any case); any tenant may ask."""
    org_id: uuid.UUID | None = await conn.fetchval("SELECT auth_org_for_domain($1)", domain)
    return org_id


async def sso_required(conn: asyncpg.Connection, org_id: uuid.UUID) -> bool:
    """Whether the organization's members must log in through SSO; any tenant may ask."""
    required: bool = await conn.fetchval("SELECT auth_sso_required($1)", org_id)
    return required


async def add_identity(conn: asyncpg.Connection, *, provider: str, subject: str, user_id: uuid.UUID,
                       email: str | None) -> None:
    """Links (provider, subject) to the account (the tenant context must be that user).

    Raises:
        IdentityTaken: another login linked it first.
    """
    try:
        await conn.execute(
            "INSERT INTO user_identities (provider, subject, user_id, email) VALUES ($1, $2, $3, $4)",
            provider, subject, user_id, email,
        )
    except asyncpg.UniqueViolationError:
        raise IdentityTaken(f"the {provider} identity is already linked; sign in again") from None


async def end_password_logins(conn: asyncpg.Connection, user_id: uuid.UUID) -> list[uuid.UUID]:
    """Clears the account's password and revokes its open logins (refresh-token families),
    returning their ids. For an account first linked to a provider: its password was never
    proven to belong to the email's owner (sign-ups verify no email), so whoever set it loses it."""
    await conn.execute("UPDATE users SET password_hash = NULL WHERE id = $1", user_id)
    rows = await conn.fetch(
        "WITH ended AS (UPDATE refresh_tokens SET revoked_at = now()"
        " WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING family_id)"
        " SELECT DISTINCT family_id FROM ended", user_id)
    return [r["family_id"] for r in rows]


async def touch_identity(conn: asyncpg.Connection, *, provider: str, subject: str, email: str | None) -> None:
    """Records a later login: when, and the verified email it carried (kept when it carried none)."""
    await conn.execute(
        "UPDATE user_identities SET last_login_at = now(), email = coalesce($3, email)"
        " WHERE provider = $1 AND subject = $2",
        provider, subject, email,
    )


async def has_verified_email_on(conn: asyncpg.Connection, user_id: uuid.UUID, domain: str) -> bool:
    """Whether a provider vouched (email_verified) for an email of this user on `domain`."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM user_identities"
        " WHERE user_id = $1 AND lower(split_part(email, '@', 2)) = lower($2))",
        user_id, domain,
    )
    return found


async def list_domains(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[ClaimedDomain]:
    rows = await conn.fetch(
        """
        SELECT d.domain, u.name AS claimed_by_name, d.created_at
        FROM org_email_domains d LEFT JOIN users u ON u.id = d.claimed_by
        WHERE d.org_id = $1 ORDER BY d.domain
        """,
        org_id,
    )
    return [ClaimedDomain(**dict(r)) for r in rows]


async def claim_domain(conn: asyncpg.Connection, org_id: uuid.UUID, domain: str, claimed_by: uuid.UUID) -> bool:
    """Claims `domain` (lower case) for the org; True when it is the org's now (newly or already),
    False when another organization holds it."""
    inserted = await conn.fetchval(
        "INSERT INTO org_email_domains (domain, org_id, claimed_by) VALUES ($1, $2, $3)"
        " ON CONFLICT (domain) DO NOTHING RETURNING domain",
        domain, org_id, claimed_by,
    )
    if inserted is not None:
        return True
    ours: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM org_email_domains WHERE domain = $1 AND org_id = $2)", domain, org_id)
    return ours


async def release_domain(conn: asyncpg.Connection, org_id: uuid.UUID, domain: str) -> bool:
    status = await conn.execute("DELETE FROM org_email_domains WHERE domain = $1 AND org_id = $2", domain, org_id)
    return status == "DELETE 1"


async def set_sso_required(conn: asyncpg.Connection, org_id: uuid.UUID, required: bool) -> None:
    await conn.execute(
        "INSERT INTO org_settings (org_id, sso_required) VALUES ($1, $2)"
        " ON CONFLICT (org_id) DO UPDATE SET sso_required = EXCLUDED.sso_required, updated_at = now()",
        org_id, required,
    )
