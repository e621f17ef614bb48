import asyncio
import shutil

import asyncpg
import pytest

from storage.database import create_pool
from storage.migrate import MIGRATIONS_DIR, MigrationError, load_migrations, migrate


async def test_migrate_on_fresh_database_applies_every_file_once(empty_database_url):
    conn = await asyncpg.connect(empty_database_url)
    try:
        applied = await migrate(conn)
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    files = [m.name for m in load_migrations()]
    assert applied == files
    assert [r["name"] for r in rows] == files


async def test_migrate_twice_applies_nothing_the_second_time(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        before = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert await migrate(conn) == []
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == before
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_each_file_exactly_once(empty_database_url):
    conns = [await asyncpg.connect(empty_database_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        count = await conns[0].fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        for c in conns:
            await c.close()
    files = [m.name for m in load_migrations()]
    # One process did all the work; the others waited on the lock and found nothing to do.
    assert sorted(results, key=len) == [[], [], files]
    assert count == len(files)


async def test_changed_applied_migration_is_refused_with_its_name(empty_database_url, tmp_path):
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, directory)
        edited = directory / "0007_curriculum.sql"
        edited.write_text(edited.read_text() + "\n-- edited after the fact\n")
        with pytest.raises(MigrationError, match="0007_curriculum.sql.*changed"):
            await migrate(conn, directory)
    finally:
        await conn.close()


async def test_removed_applied_migration_is_refused(database_url, tmp_path):
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    (directory / "0007_curriculum.sql").unlink()
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(MigrationError, match="0007_curriculum.sql.*missing"):
            await migrate(conn, directory)
    finally:
        await conn.close()


async def test_failing_migration_leaves_no_trace_and_no_record(empty_database_url, tmp_path):
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_ok.sql").write_text("CREATE TABLE first_table (id int);")
    (directory / "0002_broken.sql").write_text("CREATE TABLE half_done (id int); SELECT no_such_function();")
    conn = await asyncpg.connect(empty_database_url)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(conn, directory)
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert await conn.fetchval("SELECT array_agg(name) FROM schema_migrations") == ["0001_ok.sql"]
    finally:
        await conn.close()


async def test_app_role_is_neither_superuser_nor_rls_bypassing(db):
    row = await db.fetchrow("SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'sparring_app'")
    assert dict(row) == {"rolsuper": False, "rolbypassrls": False, "rolcanlogin": False}


async def test_app_pool_queries_run_as_app_role_after_connection_reuse(database_url):
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        for _ in range(3):  # the same connection, released (RESET ALL) and acquired again
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT current_user") == "sparring_app"
    finally:
        await pool.close()


async def test_app_role_cannot_turn_row_security_off(app_pool):
    async with app_pool.acquire() as conn:
        await conn.execute("SET row_security = off")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.fetch("SELECT * FROM roleplay_sessions")
        assert await conn.fetchval("SELECT current_user") == "sparring_app"


async def test_app_role_cannot_read_instance_secrets(app_pool):
    async with app_pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM app_secrets")


async def test_sessions_from_before_0021_get_their_last_event_seq(empty_database_url, tmp_path):
    directory = tmp_path / "migrations"
    directory.mkdir()
    for migration in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if migration.name < "0021":
            shutil.copy(migration, directory)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, directory)
        org = await conn.fetchval("INSERT INTO organizations (name) VALUES ('Acme') RETURNING id")
        user = await conn.fetchval("INSERT INTO users (email, name) VALUES ('rep@example.com', 'Rep') RETURNING id")
        talked, silent = [await conn.fetchval(
            "INSERT INTO roleplay_sessions (org_id, user_id, persona_id, persona_snapshot) VALUES ($1, $2, 'cfo', '{}')"
            " RETURNING id", org, user) for _ in range(2)]
        await conn.executemany("INSERT INTO session_events (session_id, seq, org_id, type, payload)"
                               " VALUES ($1, $2, $3, 'x', '{}')", [(talked, seq, org) for seq in (1, 2, 3)])
        shutil.copy(MIGRATIONS_DIR / "0021_session_last_seq.sql", directory)
        assert await migrate(conn, directory) == ["0021_session_last_seq.sql"]
        rows = await conn.fetch("SELECT id, last_seq FROM roleplay_sessions")
        assert {r["id"]: r["last_seq"] for r in rows} == {talked: 3, silent: 0}
    finally:
        await conn.close()
