"""The audit trail is written by triggers, without secrets or personal data, and cannot be forged."""

import uuid

import asyncpg
import pytest

from storage.tenancy import Tenant, tenant_tx


async def test_audit_rows_record_who_did_what_without_secrets(app_pool, db):
    org, user = uuid.uuid4(), uuid.uuid4()
    admin = Tenant(org_id=org, user_id=user, role="admin")
    async with tenant_tx(app_pool, admin) as conn:
        await conn.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Acme')", org)
        await conn.execute(
            "INSERT INTO users (id, email, name, password_hash)"
            " VALUES ($1, 'ann@example.com', 'Ann', 'argon2-secret')", user)
        await conn.execute("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'admin')", org, user)
    async with tenant_tx(app_pool, admin) as conn:
        await conn.execute("UPDATE memberships SET role = 'coach' WHERE user_id = $1", user)

    rows = await db.fetch("SELECT * FROM audit_log ORDER BY id")
    assert [(r["table_name"], r["action"]) for r in rows] == [
        ("organizations", "insert"), ("users", "insert"), ("memberships", "insert"), ("memberships", "update")]
    assert {r["actor_id"] for r in rows} == {user}
    assert {r["org_id"] for r in rows} == {org}
    assert all(r["actor_role"] == "admin" for r in rows)
    assert rows[1]["row_id"] == str(user)
    everything = " ".join(str(dict(r)) for r in rows)
    for secret in ("argon2-secret", "ann@example.com", "Ann"):
        assert secret not in everything
    assert '"role": "admin"' in rows[3]["old_data"] and '"role": "coach"' in rows[3]["new_data"]


async def test_session_activity_touches_are_not_audited_but_status_changes_are(app_pool, db):
    org, user = uuid.uuid4(), uuid.uuid4()
    await db.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Acme')", org)
    await db.execute("INSERT INTO users (id, email, name) VALUES ($1, 'r@example.com', 'R')", user)
    session = await db.fetchval(
        "INSERT INTO roleplay_sessions (org_id, user_id, persona_id, persona_snapshot)"
        " VALUES ($1, $2, 'cfo', '{}') RETURNING id",
        org, user)
    async with tenant_tx(app_pool, Tenant(org_id=org, user_id=user, role="trainee")) as conn:
        await conn.execute("UPDATE roleplay_sessions SET last_activity_at = now() WHERE id = $1", session)
        await conn.execute("UPDATE roleplay_sessions SET status = 'live', started_at = now() WHERE id = $1", session)
    rows = await db.fetch("SELECT action, actor_id FROM audit_log WHERE table_name = 'roleplay_sessions' ORDER BY id")
    assert [(r["action"], r["actor_id"]) for r in rows] == [("insert", None), ("update", user)]


async def test_app_role_cannot_write_or_change_the_audit_log(app_pool, db):
    org = uuid.uuid4()
    await db.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Acme')", org)
    async with app_pool.acquire() as conn:
        for sql in ("INSERT INTO audit_log (action, table_name) VALUES ('insert', 'x')",
                    "UPDATE audit_log SET row_id = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(
                        "SELECT set_config('app.org_id', $1, true), set_config('app.role', 'admin', true)", str(org))
                    await conn.execute(sql)
