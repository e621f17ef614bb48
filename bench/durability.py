"""What making every event durable before it is sent costs: the time from numbering an event to
its commit in Postgres (the latency it adds before a client may see it), and the writes per
second the group-committing EventWriter sustains.

    .venv/bin/python bench/durability.py [--quick] [--sessions S] [--orgs O] [--seconds N]

An embedded Postgres (the zero-config default) in a temporary folder; S live sessions spread over
O organizations; events are offered open-loop at increasing rates, round robin over the sessions
(a mix like a live call: every fourth is a transcript final with its segment row). For each rate:
committed events per second, and add-to-commit p50/p99/max. The writer and this load generator
share one process and loop, as the writer shares the gateway's loop.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_calls import install_uvloop, pct  # noqa: E402
from coaching.events import PersonaReplyDelta, TranscriptFinal  # noqa: E402
from coaching.session_log import SessionLog  # noqa: E402
from storage.database import connect, create_pool  # noqa: E402
from storage.embedded import start_embedded_postgres  # noqa: E402
from storage.event_writer import EventWriter  # noqa: E402
from storage.migrate import migrate  # noqa: E402

TICK_S = 0.005


async def setup(dsn: str, sessions: int, orgs: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    conn = await connect(dsn)
    try:
        await migrate(conn)
        out = []
        org_ids = [uuid.uuid4() for _ in range(orgs)]
        for org in org_ids:
            user = uuid.uuid4()
            await conn.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Bench')", org)
            await conn.execute("INSERT INTO users (id, email, name) VALUES ($1, $2, 'Rep')", user,
                               f"{user.hex}@example.com")
            await conn.execute("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'trainee')", org, user)
        for i in range(sessions):
            org = org_ids[i % orgs]
            user = await conn.fetchval("SELECT user_id FROM memberships WHERE org_id = $1", org)
            sid = await conn.fetchval(
                "INSERT INTO roleplay_sessions (org_id, user_id, persona_id, persona_snapshot, status, started_at)"
                " VALUES ($1, $2, 'skeptical-cfo', '{}', 'live', now()) RETURNING id", org, user)
            await conn.execute("UPDATE roleplay_sessions SET owner_fence = 1 WHERE id = $1", sid)
            out.append((org, sid))
        return out
    finally:
        await conn.close()


async def run_rate(writer: EventWriter, sessions: list[tuple[uuid.UUID, uuid.UUID]],
                   logs: dict[uuid.UUID, SessionLog], rate: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    committed, last_commit = 0, 0.0

    def done(started: float, future: asyncio.Future[None]) -> None:
        nonlocal committed, last_commit
        if not future.cancelled() and future.exception() is None:
            committed += 1
            last_commit = time.perf_counter()
            latencies.append((last_commit - started) * 1000)

    n, owed, start = 0, 0.0, time.perf_counter()
    while (now := time.perf_counter()) - start < seconds:
        owed += rate * TICK_S
        while owed >= 1:
            owed -= 1
            org, sid = sessions[n % len(sessions)]
            key = str(sid)
            event = (TranscriptFinal(session_id=key, ts=0, speaker="rep", text="How does the month end close work?",
                                     start_ms=n, end_ms=n + 1500, segment_id=f"b-{n}") if n % 4 == 0 else
                     PersonaReplyDelta(session_id=key, ts=0, reply_id="r", text="Month-end close takes eight days. "))
            for entry in logs[sid].append(event).entries:
                writer.add(org, sid, 1, entry).add_done_callback(lambda f, t=now: done(t, f))
            n += 1
        await asyncio.sleep(TICK_S)
    deadline = time.perf_counter() + 30
    while writer.pending and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    wall = max(last_commit - start, seconds)
    return {"offered": rate, "committed_s": committed / wall, "p50": pct(latencies, 50), "p99": pct(latencies, 99),
            "max": max(latencies) if latencies else 0.0}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--orgs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    dsn, server = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="sparring-bench-pg-")) / "data")
    try:
        sessions = await setup(dsn, args.sessions, args.orgs)
        pool = await create_pool(dsn, min_size=4, max_size=10)
        logs = {sid: SessionLog(str(sid), tail_events=0) for _, sid in sessions}
        rates = [500, 2000] if args.quick else [500, 1000, 2000, 4000, 8000, 12000]
        print(f"== durable before sent: {args.sessions} sessions in {args.orgs} organizations, embedded Postgres")
        print(f"{'offered/s':>10} {'committed/s':>12} {'p50':>8} {'p99':>8} {'max':>8}")
        async with EventWriter(pool) as writer:
            await run_rate(writer, sessions, logs, 500, 1)  # warm-up: connections, plans, caches
            for rate in rates:
                r = await run_rate(writer, sessions, logs, rate, args.seconds)
                print(f"{r['offered']:>10} {r['committed_s']:>12.0f} {r['p50']:>6.1f}ms {r['p99']:>6.1f}ms "
                      f"{r['max']:>6.1f}ms", flush=True)
        await pool.close()
    finally:
        server.cleanup()


if __name__ == "__main__":
    install_uvloop()
    asyncio.run(main())
