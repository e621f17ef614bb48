"""Postgres through asyncpg: pool, migrations, row-level security context, repositories."""
