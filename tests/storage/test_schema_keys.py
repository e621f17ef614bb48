"""Defence in depth in the schema: a child row belongs to its parent's organization (composite
foreign keys), probed in SQL as the app role; and the embedded default serves through a login
that is no superuser."""

import re
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest

from gateway.app import create_app
from gateway.resources import lifespan
from storage.tenancy import Tenant, tenant_tx
from tests.conftest import make_settings
from tests.storage.test_tenancy import seed_org


async def _ids(db, org, user) -> dict:
    """Org `org`'s parent rows the probe points at (seed_org's, plus a document and `user`'s chat)."""
    return {"blob": await db.fetchval("SELECT id FROM blobs WHERE org_id = $1", org),
            "upload": await db.fetchval("SELECT id FROM call_uploads WHERE org_id = $1", org),
            "job": await db.fetchval("SELECT id FROM jobs WHERE org_id = $1", org),
            "document": await db.fetchval(
                "INSERT INTO knowledge_documents (org_id, title, source, kind, size_bytes)"
                " VALUES ($1, 'Playbook', 'playbook.md', 'markdown', 1) RETURNING id", org),
            "conversation": await db.fetchval(
                "INSERT INTO chat_conversations (org_id, user_id, title) VALUES ($1, $2, 'Chat') RETURNING id",
                org, user)}


# Each statement: org A's staff (with A's tenant context) writing a row of its own org that points
# at one of org B's rows. $1 = org A, $2 = org B's session, $3 = org B's upload, $4 = org B's blob,
# $5 = a user of org A, $6 = org B's job, $7 = org B's knowledge document, $8 = org B's chat.
CROSS_ORG_WRITES = {
    "session_events": "INSERT INTO session_events (session_id, seq, org_id, type, payload)"
                      " VALUES ($2, 2, $1, 'transcript.final', '{}')",
    "transcript_segments (session)": "INSERT INTO transcript_segments (org_id, session_id, segment_id, speaker, text,"
                                     " start_ms, end_ms) VALUES ($1, $2, 'p1', 'rep', 'planted', 0, 1)",
    "transcript_segments (upload)": "INSERT INTO transcript_segments (org_id, upload_id, segment_id, speaker, text,"
                                    " start_ms, end_ms) VALUES ($1, $3, 'u1', 'rep', 'planted', 0, 1)",
    "session_scores (session)": "INSERT INTO session_scores (org_id, user_id, session_id, opening_rapport, discovery,"
                                " active_listening, value_articulation, objection_handling, closing_next_steps,"
                                " overall, scorer, version) VALUES ($1, $5, $2, 1, 1, 1, 1, 1, 1, 1, 'x', 1)",
    "session_scores (upload)": "INSERT INTO session_scores (org_id, user_id, upload_id, opening_rapport, discovery,"
                               " active_listening, value_articulation, objection_handling, closing_next_steps,"
                               " overall, scorer, version) VALUES ($1, $5, $3, 1, 1, 1, 1, 1, 1, 1, 'x', 1)",
    "blob_chunks": "INSERT INTO blob_chunks (blob_id, idx, org_id, data) VALUES ($4, 1, $1, 'planted')",
    "roleplay_sessions.recording_blob_id": "INSERT INTO roleplay_sessions (org_id, user_id, persona_id,"
                                           " persona_snapshot, recording_blob_id) VALUES ($1, $5, 'cfo', '{}', $4)",
    "call_uploads.blob_id": "INSERT INTO call_uploads (org_id, user_id, filename, content_type, blob_id)"
                            " VALUES ($1, $5, 'a.wav', 'audio/wav', $4)",
    "session_scores.job_id": "INSERT INTO session_scores (org_id, user_id, session_id, opening_rapport, discovery,"
                             " active_listening, value_articulation, objection_handling, closing_next_steps,"
                             " overall, scorer, version, job_id) VALUES ($1, $5, (SELECT id FROM roleplay_sessions"
                             " WHERE org_id = $1 LIMIT 1), 1, 1, 1, 1, 1, 1, 1, 'x', 1, $6)",
    "jobs (session)": "INSERT INTO jobs (org_id, kind, session_id) VALUES ($1, 'score_session', $2)",
    "jobs (upload)": "INSERT INTO jobs (org_id, kind, upload_id) VALUES ($1, 'transcribe_upload', $3)",
    "knowledge_base.document_id": "INSERT INTO knowledge_base (org_id, document_id, source, content)"
                                  " VALUES ($1, $7, 'planted.md', 'planted')",
    "chat_messages": "INSERT INTO chat_messages (conversation_id, org_id, role, content)"
                     " VALUES ($8, $1, 'user', 'planted')",
}


async def _write(conn, statement: str, *values) -> None:
    """Runs a statement of CROSS_ORG_WRITES with just the parameters it uses, renumbered."""
    used = sorted({int(n) for n in re.findall(r"\$(\d)", statement)})
    for new, old in enumerate(used, 1):
        statement = statement.replace(f"${old}", f"${{{new}}}")
    await conn.execute(re.sub(r"\$\{(\d)\}", r"$\1", statement), *(values[n - 1] for n in used))


@pytest.mark.parametrize("table", list(CROSS_ORG_WRITES))
async def test_staff_of_one_org_cannot_attach_rows_to_another_orgs_parent(db, app_pool, table):
    a = await seed_org(db, name="A")
    b = await seed_org(db, name="B")
    b_ids = await _ids(db, b["org"], b["coach"])
    # blob_chunks' and chat_messages' policies already look their parent up; the key holds for
    # writers outside RLS too.
    refused = (asyncpg.ForeignKeyViolationError, asyncpg.InsufficientPrivilegeError) \
        if table in ("blob_chunks", "chat_messages") else asyncpg.ForeignKeyViolationError
    with pytest.raises(refused):
        async with tenant_tx(app_pool, Tenant(org_id=a["org"], user_id=a["coach"], role="coach")) as conn:
            await _write(conn, CROSS_ORG_WRITES[table], a["org"], b["session"], b_ids["upload"], b_ids["blob"],
                         a["trainee"], b_ids["job"], b_ids["document"], b_ids["conversation"])
    # Org B's own rows are as they were.
    assert await db.fetchval("SELECT count(*) FROM session_events WHERE session_id = $1", b["session"]) == 1
    assert await db.fetchval("SELECT count(*) FROM transcript_segments WHERE org_id <> $1 AND (session_id = $2"
                             " OR upload_id = $3)", b["org"], b["session"], b_ids["upload"]) == 0


async def test_the_same_rows_within_one_org_are_still_written(db, app_pool):
    a = await seed_org(db, name="A")
    a_ids = await _ids(db, a["org"], a["coach"])
    async with tenant_tx(app_pool, Tenant(org_id=a["org"], user_id=a["coach"], role="coach")) as conn:
        for statement in CROSS_ORG_WRITES.values():
            await _write(conn, statement, a["org"], a["session"], a_ids["upload"],
                         a_ids["blob"], a["trainee"], a_ids["job"], a_ids["document"], a_ids["conversation"])


async def test_deleting_a_blob_clears_the_links_to_it_only(db):
    a = await seed_org(db, name="A")
    blob = (await _ids(db, a["org"], a["coach"]))["blob"]
    await db.execute("UPDATE roleplay_sessions SET recording_blob_id = $1 WHERE id = $2", blob, a["session"])
    await db.execute("DELETE FROM blobs WHERE id = $1", blob)
    row = await db.fetchrow("SELECT org_id, recording_blob_id FROM roleplay_sessions WHERE id = $1", a["session"])
    assert row["org_id"] == a["org"] and row["recording_blob_id"] is None


async def test_deleting_a_job_keeps_its_score_and_a_shared_document_takes_its_chunks(db):
    a = await seed_org(db, name="A")
    job = await db.fetchval("SELECT id FROM jobs WHERE org_id = $1", a["org"])
    await db.execute("UPDATE session_scores SET job_id = $1 WHERE session_id = $2", job, a["session"])
    await db.execute("DELETE FROM jobs WHERE id = $1", job)
    row = await db.fetchrow("SELECT org_id, job_id FROM session_scores WHERE session_id = $1", a["session"])
    assert row["org_id"] == a["org"] and row["job_id"] is None
    shared = await db.fetchval("INSERT INTO knowledge_documents (title, source, kind, size_bytes)"
                               " VALUES ('Shared', 'shared.md', 'markdown', 1) RETURNING id")
    await db.execute("INSERT INTO knowledge_base (document_id, source, content) VALUES ($1, 'shared.md', 'x')", shared)
    await db.execute("DELETE FROM knowledge_documents WHERE id = $1", shared)
    assert await db.fetchval("SELECT count(*) FROM knowledge_base WHERE document_id = $1", shared) == 0


async def test_the_embedded_default_serves_through_a_login_that_is_no_superuser():
    data = Path(tempfile.mkdtemp(prefix="sparring-login-"))
    app = create_app(make_settings("", sparring_data_dir=str(data)))
    async with lifespan(app):
        async with app.state.pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_user") == "sparring_app"
            await conn.execute("RESET ROLE")
            me = await conn.fetchrow(
                "SELECT current_user AS name, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb,"
                " pg_has_role(current_user, 'sparring_app', 'MEMBER') AS member"
                " FROM pg_roles WHERE rolname = current_user")
            owned = await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user")
            secrets = await conn.fetchval("SELECT has_table_privilege(current_user, 'app_secrets', 'SELECT')")
            await conn.execute("SET ROLE sparring_app")
    assert me["name"] != "postgres"
    assert (me["rolsuper"], me["rolbypassrls"], me["rolcreaterole"], me["rolcreatedb"]) == (False,) * 4
    assert me["member"] is True and owned == 0 and secrets is False
    shutil.rmtree(data, ignore_errors=True)
