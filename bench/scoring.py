"""What scoring a finished call costs without a model: the conversation analytics alone, and the
heuristic scorer end to end (analytics + six dimensions + metrics), on a 30-minute practice call.

    .venv/bin/python bench/scoring.py [--quick] [--runs N] [--turns T]

The transcript is the test scenarios' strong lines (tests/fixtures/calls.py) cycled to T turns
(default 420) and trimmed to 10 words each, timed at ~160 wpm with ~1 s pauses: about 30
minutes of talk. Prints wall-clock min/p50/p99 and CPU p50/p99 over N runs (after a warm-up; CPU
time leaves out waiting for a core on a busy machine); the target is under 50 ms for analytics +
heuristic scoring together, on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coaching.analytics import analyse, metrics_of  # noqa: E402
from coaching.persona import load_personas  # noqa: E402
from coaching.scorecard import ScoringConfig  # noqa: E402
from coaching.scoring import HeuristicScorer  # noqa: E402
from coaching.session_log import Segment  # noqa: E402
from tests.fixtures.calls import SCENARIOS, build  # noqa: E402

TARGET_MS = 50.0


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


def long_call(turns: int) -> list[Segment]:
    """A ~30-minute practice call of `turns` turns from the scenarios' strong lines."""
    lines = [line for s in SCENARIOS for line in s.lines]
    picked = []
    for i in range(turns):
        line = lines[i % len(lines)]
        words = line.text.split()
        text = " ".join(words) if len(words) <= 10 else " ".join(words[:10]).rstrip(",") + "."
        picked.append((line.speaker, text))
    return build(picked, prefix="long")


def timed(fn: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each run (CPU time does not count waiting for a busy core)."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def row(name: str, ms: tuple[list[float], list[float]]) -> str:
    wall, cpu = ms
    return (f"{name:<32} {min(wall):>7.2f}ms {pct(wall, 50):>7.2f}ms {pct(wall, 99):>7.2f}ms"
            f" {pct(cpu, 50):>7.2f}ms {pct(cpu, 99):>7.2f}ms")


# --- scoring jobs per second on one instance ------------------------------------------------------

async def jobs_per_second(jobs: int, concurrency: int, turns: int) -> None:
    """Finished calls of `turns` turns in an embedded Postgres, one `score_session` job each, worked
    by one instance's JobRunner with the heuristic scorer: claim, read the transcript, score,
    store the scorecard, append score.ready, update progress, mark done."""
    import tempfile
    import uuid

    from coaching.events import AudioFormat, SessionStarted, TranscriptFinal
    from coaching.session_log import SessionLog
    from gateway.jobs.notifications import JobNotifications
    from gateway.jobs.runner import JobRunner
    from gateway.jobs.scoring import ScoreSession
    from storage.database import connect, create_pool
    from storage.embedded import start_embedded_postgres
    from storage.migrate import migrate
    from storage.sessions import append_events, enqueue_score

    segments = long_call(turns)
    persona = load_personas()["busy-it-director"]
    dsn, server = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="sparring-bench-pg-")) / "data")
    try:
        conn = await connect(dsn)
        try:
            await migrate(conn)
            org, user = uuid.uuid4(), uuid.uuid4()
            await conn.execute("INSERT INTO organizations (id, name) VALUES ($1, 'Bench')", org)
            await conn.execute("INSERT INTO users (id, email, name) VALUES ($1, $2, 'Rep')", user, f"{user}@x.test")
            await conn.execute("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'trainee')", org, user)
            snapshot = msgspec_json(persona.to_dict())
            sids = []
            for _ in range(jobs):
                sid = await conn.fetchval(
                    "INSERT INTO roleplay_sessions (org_id, user_id, persona_id, persona_snapshot, status, started_at,"
                    " ended_at, end_reason) VALUES ($1, $2, $3, $4::jsonb, 'ended', now(), now(), 'rep_ended')"
                    " RETURNING id", org, user, persona.id, snapshot)
                log = SessionLog(str(sid))
                entries = log.append(SessionStarted(session_id=str(sid), ts=0, protocol=1, persona_id=persona.id,
                                                    output_audio=AudioFormat(encoding="pcm_s16le", sample_rate=24000),
                                                    resumed=False)).entries
                for seg in segments:
                    speaker = "rep" if seg.speaker == "rep" else "persona"
                    entries += log.append(TranscriptFinal(
                        session_id=str(sid), ts=0, speaker=speaker, text=seg.text, start_ms=seg.start_ms,
                        end_ms=seg.end_ms, segment_id=seg.segment_id), raise_hints=False).entries
                async with conn.transaction():
                    await append_events(conn, org, [(sid, 0, e) for e in entries], locked=True)
                sids.append((org, sid))
        finally:
            await conn.close()
        pool = await create_pool(dsn, min_size=2, max_size=10)
        try:
            async with JobNotifications(pool) as notifications:
                conn = await connect(dsn)
                try:
                    start = time.perf_counter()
                    async with conn.transaction():
                        for org_id, sid in sids:
                            await enqueue_score(conn, org_id, sid)
                    score = ScoreSession(HeuristicScorer())
                    async with JobRunner(pool, {score.kind: score}, worker_id="bench", notifications=notifications,
                                         concurrency=concurrency, poll_s=0.2):
                        while await conn.fetchval("SELECT count(*) FROM jobs WHERE status NOT IN ('done', 'failed')"):
                            await asyncio.sleep(0.05)
                    elapsed = time.perf_counter() - start
                    failed = await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'failed'")
                    stored = await conn.fetchval("SELECT count(*) FROM session_scores")
                finally:
                    await conn.close()
        finally:
            await pool.close()
        print(f"scoring jobs, one instance ({concurrency} at once, {len(segments)}-segment calls): {jobs} in"
              f" {elapsed:.2f} s = {jobs / elapsed:.1f} jobs/s; {stored} scorecards stored, {failed} failed")
    finally:
        server.cleanup()


def msgspec_json(value: object) -> str:
    import msgspec

    return msgspec.json.encode(value).decode()


# ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="50 runs instead of --runs")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--turns", type=int, default=420)
    parser.add_argument("--jobs", type=int, default=100, help="scoring jobs for the jobs-per-second run (0: skip)")
    parser.add_argument("--concurrency", type=int, default=2, help="jobs worked at once (JOB_WORKERS)")
    args = parser.parse_args()
    runs = 50 if args.quick else args.runs
    segments = long_call(args.turns)
    persona = load_personas()["busy-it-director"]
    scorer, config = HeuristicScorer(), ScoringConfig()
    minutes = (segments[-1].end_ms - segments[0].start_ms) / 60_000
    words = sum(len(s.text.split()) for s in segments)
    print(f"== heuristic scoring: {len(segments)} segments, {words} words, {minutes:.1f} min call, {runs} runs")

    loop = asyncio.new_event_loop()
    try:
        def analytics() -> None:
            metrics_of(analyse(segments, persona))

        def scoring() -> None:
            loop.run_until_complete(scorer.score(segments, persona=persona, config=config))

        timed(scoring, 5)  # warm-up: regex caches, imports
        analytics_ms = timed(analytics, runs)
        scoring_ms = timed(scoring, runs)
    finally:
        loop.close()
    card = asyncio.run(scorer.score(segments, persona=persona, config=config))
    print(f"{'':<32} {'wall min':>9} {'p50':>9} {'p99':>9} {'cpu p50':>9} {'p99':>9}")
    print(row("analytics (analyse + metrics)", analytics_ms))
    print(row("analytics + heuristic scoring", scoring_ms))
    p99 = pct(scoring_ms[0], 99)
    verdict = "under" if p99 < TARGET_MS else "OVER"
    print(f"wall p99 {p99:.2f} ms: {verdict} the {TARGET_MS:.0f} ms target (scored overall {card.overall})")
    if args.jobs:
        asyncio.run(jobs_per_second(20 if args.quick else args.jobs, args.concurrency, args.turns))


if __name__ == "__main__":
    main()
