"""Row-level security at the SQL level: the app role sees only what its tenant context allows."""

import uuid

import pytest

from storage.tenancy import Tenant, savepoint, set_tenant, tenant_tx

TENANT_TABLES = [
    "organizations", "users", "memberships", "invites", "refresh_tokens", "org_settings",
    "vapi_phone_numbers", "personas", "roleplay_sessions", "session_events", "call_uploads",
    "transcript_segments", "session_scores", "blobs", "blob_chunks", "jobs", "webhook_inbox",
    "knowledge_base", "curriculum_progress", "audit_log",
]


async def seed_org(db, *, name: str) -> dict:
    """One org with a trainee, a coach, a session with an event and transcript, and every other
    tenant table filled in, written as the superuser (RLS does not apply to it)."""
    org, trainee, coach = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    session, upload, blob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await db.execute("INSERT INTO organizations (id, name) VALUES ($1, $2)", org, name)
    for user, role in ((trainee, "trainee"), (coach, "coach")):
        await db.execute("INSERT INTO users (id, email, name) VALUES ($1, $2, $3)", user, f"{user}@example.com", role)
        await db.execute("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)", org, user, role)
    await db.execute(
        "INSERT INTO invites (org_id, code_hash, role, expires_at)"
        " VALUES ($1, $2, 'trainee', now() + interval '1 day')",
        org, uuid.uuid4().hex)
    await db.execute(
        "INSERT INTO refresh_tokens (user_id, org_id, family_id, token_hash, expires_at)"
        " VALUES ($1, $2, $3, $4, now() + interval '1 day')", trainee, org, uuid.uuid4(), uuid.uuid4().hex)
    await db.execute("INSERT INTO org_settings (org_id) VALUES ($1)", org)
    await db.execute("INSERT INTO vapi_phone_numbers (phone_number, org_id, persona_id) VALUES ($1, $2, 'cfo')",
                     f"+1555{uuid.uuid4().int % 10**7:07d}", org)
    await db.execute("INSERT INTO personas (id, org_id, name, spec) VALUES ($1, $2, 'P', '{}')",
                     f"p-{org.hex[:8]}", org)
    await db.execute(
        "INSERT INTO roleplay_sessions (id, org_id, user_id, persona_id, persona_snapshot)"
        " VALUES ($1, $2, $3, 'cfo', '{}')",
        session, org, trainee)
    await db.execute(
        "INSERT INTO session_events (session_id, seq, org_id, type, payload)"
        " VALUES ($1, 1, $2, 'session.started', '{}')",
        session, org)
    await db.execute(
        "INSERT INTO transcript_segments (org_id, session_id, segment_id, speaker, text, start_ms, end_ms)"
        " VALUES ($1, $2, 's1', 'rep', 'hello', 0, 500)", org, session)
    await db.execute(
        "INSERT INTO session_scores (org_id, user_id, session_id, opening_rapport, discovery, active_listening,"
        " value_articulation, objection_handling, closing_next_steps, overall, scorer, version)"
        " VALUES ($1, $2, $3, 50, 50, 50, 50, 50, 50, 50, 'rules', 1)", org, trainee, session)
    await db.execute("INSERT INTO blobs (id, org_id, owner_id, content_type) VALUES ($1, $2, $3, 'audio/wav')",
                     blob, org, trainee)
    await db.execute("INSERT INTO blob_chunks (blob_id, idx, org_id, data) VALUES ($1, 0, $2, 'x')", blob, org)
    await db.execute(
        "INSERT INTO call_uploads (id, org_id, user_id, filename, content_type, blob_id)"
        " VALUES ($1, $2, $3, 'a.wav', 'audio/wav', $4)",
        upload, org, trainee, blob)
    await db.execute("INSERT INTO jobs (org_id, kind) VALUES ($1, 'score_session')", org)
    await db.execute(
        "INSERT INTO webhook_inbox (org_id, provider, dedupe_key, message_type, payload)"
        " VALUES ($1, 'vapi', $2, 'status-update', '{}')",
        org, uuid.uuid4().hex)
    await db.execute("INSERT INTO knowledge_base (org_id, source, content) VALUES ($1, 'playbook', 'text')", org)
    await db.execute("INSERT INTO curriculum_progress (org_id, user_id, module_id) VALUES ($1, $2, 'discovery')",
                     org, trainee)
    return {"org": org, "trainee": trainee, "coach": coach, "session": session}


async def test_queries_without_tenant_context_see_no_tenant_rows(db, app_pool):
    await seed_org(db, name="A")
    await seed_org(db, name="B")
    async with app_pool.acquire() as conn:
        for table in TENANT_TABLES:
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table


async def test_org_a_context_never_sees_org_b_rows(db, app_pool):
    a = await seed_org(db, name="A")
    b = await seed_org(db, name="B")
    # `system` is the broadest role inside an org (background work): it still sees one org only.
    async with tenant_tx(app_pool, Tenant(org_id=a["org"], role="system")) as conn:
        for table in TENANT_TABLES:
            if table == "users":
                continue
            rows = await conn.fetch(f"SELECT to_jsonb(t)::text AS r FROM {table} t")
            # Refresh tokens are visible to their user only, never to background work.
            assert rows or table == "refresh_tokens", f"{table}: org A's own rows must be visible"
            for row in rows:
                assert str(b["org"]) not in row["r"], f"{table} leaked org B"
        users = {r["id"] for r in await conn.fetch("SELECT id FROM users")}
    assert users == {a["trainee"], a["coach"]}


async def test_trainee_sees_own_sessions_and_coach_sees_the_orgs(db, app_pool):
    a = await seed_org(db, name="A")
    other = uuid.uuid4()
    await db.execute("INSERT INTO users (id, email, name) VALUES ($1, 'o@example.com', 'O')", other)
    await db.execute("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'trainee')", a["org"], other)
    await db.execute(
        "INSERT INTO roleplay_sessions (org_id, user_id, persona_id, persona_snapshot) VALUES ($1, $2, 'cfo', '{}')",
        a["org"], other)
    async with tenant_tx(app_pool, Tenant(org_id=a["org"], user_id=a["trainee"], role="trainee")) as conn:
        assert [r["id"] for r in await conn.fetch("SELECT id FROM roleplay_sessions")] == [a["session"]]
        assert await conn.fetchval("SELECT count(*) FROM session_events") == 1
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0
    async with tenant_tx(app_pool, Tenant(org_id=a["org"], user_id=a["coach"], role="coach")) as conn:
        assert await conn.fetchval("SELECT count(*) FROM roleplay_sessions") == 2


async def test_trainee_cannot_write_a_row_for_another_org(db, app_pool):
    a = await seed_org(db, name="A")
    b = await seed_org(db, name="B")
    import asyncpg

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with tenant_tx(app_pool, Tenant(org_id=a["org"], user_id=a["trainee"], role="trainee")) as conn:
            await conn.execute(
                "INSERT INTO roleplay_sessions (org_id, user_id, persona_id, persona_snapshot)"
                " VALUES ($1, $2, 'x', '{}')",
                b["org"], a["trainee"])


async def test_tenant_context_ends_with_its_transaction(db, app_pool):
    a = await seed_org(db, name="A")
    async with app_pool.acquire() as conn:
        async with conn.transaction():
            await set_tenant(conn, Tenant(org_id=a["org"], role="system"))
            assert await conn.fetchval("SELECT count(*) FROM roleplay_sessions") == 1
        assert await conn.fetchval("SELECT count(*) FROM roleplay_sessions") == 0


async def test_a_tenant_transaction_commits_together_or_not_at_all_and_leaves_the_connection_clean(db, app_pool):
    a = await seed_org(db, name="A")
    tenant = Tenant(org_id=a["org"], role="system")
    async with tenant_tx(app_pool, tenant) as conn:
        await conn.execute("INSERT INTO knowledge_base (org_id, source, content) VALUES ($1, 'kept', 'x')", a["org"])
    with pytest.raises(RuntimeError):
        async with tenant_tx(app_pool, tenant) as conn:
            await conn.execute("INSERT INTO knowledge_base (org_id, source, content) VALUES ($1, 'lost', 'x')",
                               a["org"])
            raise RuntimeError("the work failed")
    sources = await db.fetch("SELECT source FROM knowledge_base WHERE org_id = $1 ORDER BY source", a["org"])
    assert [r["source"] for r in sources] == ["kept", "playbook"]
    pooled = [await app_pool.acquire() for _ in range(app_pool.get_size())]  # every one, held at once
    try:
        for conn in pooled:  # no transaction, no context
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT current_setting('app.org_id', true)") in (None, "")
            assert await conn.fetchval("SELECT count(*) FROM roleplay_sessions") == 0
    finally:
        for conn in pooled:
            await app_pool.release(conn)


async def test_a_savepoint_undoes_only_its_own_part_of_a_tenant_transaction(db, app_pool):
    import asyncpg

    a = await seed_org(db, name="A")
    async with tenant_tx(app_pool, Tenant(org_id=a["org"], role="system")) as conn:
        await conn.execute("INSERT INTO knowledge_base (org_id, source, content) VALUES ($1, 'before', 'x')", a["org"])
        with pytest.raises(asyncpg.UniqueViolationError):
            async with savepoint(conn):
                await conn.execute("INSERT INTO organizations (id, name) VALUES ($1, 'again')", a["org"])
        await conn.execute("INSERT INTO knowledge_base (org_id, source, content) VALUES ($1, 'after', 'x')", a["org"])
    sources = await db.fetch("SELECT source FROM knowledge_base WHERE org_id = $1 ORDER BY source", a["org"])
    assert [r["source"] for r in sources] == ["after", "before", "playbook"]


async def test_match_knowledge_ranks_by_cosine_within_the_callers_org(db, app_pool):
    a = await seed_org(db, name="A")
    b = await seed_org(db, name="B")

    def vec(*head: float) -> list[float]:
        return [*head, *([0.0] * (1536 - len(head)))]

    rows = [
        (a["org"], "objections", "price objection playbook", vec(1, 0, 0)),
        (a["org"], "discovery", "discovery questions", vec(0.7, 0.7, 0)),
        (None, "objections", "shared objection guide", vec(0.9, 0.1, 0)),
        (b["org"], "objections", "org B secret playbook", vec(1, 0, 0)),
    ]
    async with tenant_tx(app_pool, Tenant(org_id=a["org"], role="admin")) as conn:
        for org, source, content, emb in rows[:2]:
            await conn.execute(
                "INSERT INTO knowledge_base (org_id, source, content, embedding, embedding_model)"
                " VALUES ($1, $2, $3, $4, 'm')",
                org, source, content, emb)
    for org, source, content, emb in rows[2:]:
        await db.execute(
            "INSERT INTO knowledge_base (org_id, source, content, embedding, embedding_model)"
            " VALUES ($1, $2, $3, $4::float4[]::vector, 'm')",
            org, source, content, emb)
    async with tenant_tx(app_pool, Tenant(org_id=a["org"], user_id=a["trainee"], role="trainee")) as conn:
        found = await conn.fetch("SELECT content, similarity FROM match_knowledge($1, 0.5, 5, NULL, 'm')", vec(1, 0, 0))
        only_objections = await conn.fetch(
            "SELECT content FROM match_knowledge($1, 0.0, 5, 'objections', 'm')", vec(1, 0, 0))
    assert [r["content"] for r in found] == [
        "price objection playbook", "shared objection guide", "discovery questions"]
    assert found[0]["similarity"] == pytest.approx(1.0)
    assert [r["content"] for r in only_objections] == ["price objection playbook", "shared objection guide"]
