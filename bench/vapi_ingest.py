"""VAPI ingest benchmark: signed transcript webhooks at increasing rates against one gateway.

    .venv/bin/python bench/vapi_ingest.py [--quick] [--sessions K] [--seconds N]

The gateway runs in its own process on CPU 0 with Postgres (embedded) and Redis; this load
generator runs on CPU 1: a minimal keep-alive HTTP/1.1 client (raw asyncio streams + uvloop) that
sends pre-signed `transcript` finals (HMAC, `{timestamp}.{body}`, each one distinct) open-loop at a
fixed rate over K VAPI sessions, each watched by one coach socket, so every event is verified,
kept in the inbox, numbered and persisted, run through the hint engine and fanned out.
Prints sustained events/s and latency p50/p99 at each offered rate, each webhook's latency from the
time it was due (queueing for a connection included), and the most connections busy at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_calls import Gateway, install_uvloop, pct, profile_top, profiled  # noqa: E402
from gateway.vapi.auth import HmacScheme, sign_hmac  # noqa: E402
from storage.embedded import start_embedded_postgres  # noqa: E402
from tests.processes import RedisServer  # noqa: E402

SECRET = "bench-vapi-secret-0123456789abcdef"
LINES = ["How does your month end close work today?", "It takes us eight days and the team hates it.",
         "What does a late close cost you?", "Honestly the price sounds high for us.",
         "Who else is involved in approving this?", "We would need the board to sign off on it."]


async def setup(url: str, sessions: int) -> tuple[str, list[tuple[str, str]]]:
    """A coach's token and (session id, session token) per VAPI session: webhooks map a call to a
    session only with both, as `vapi.start(assistant, assistantOverrides)` carries them."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        admin = (await client.post("/api/auth/signup", json={
            "email": f"vapi-bench-{time.time_ns()}@example.com", "password": "correct horse battery",
            "name": "Bench", "org_name": "Bench"})).json()
        auth = {"Authorization": f"Bearer {admin['access_token']}"}
        ids = []
        for _ in range(sessions):
            created = await client.post("/api/sessions", json={"persona_id": "skeptical-cfo", "transport": "vapi"},
                                        headers=auth)
            if created.status_code != 201:
                raise SystemExit(f"creating a VAPI session failed: {created.status_code} {created.text}")
            ref = created.json()["vapi"]["assistantOverrides"]["variableValues"]
            ids.append((ref["sparring_session_id"], ref["sparring_session_token"]))
        return admin["access_token"], ids


def request_bytes(host: str, session: tuple[str, str], n: int, spoken_at_ms: int) -> bytes:
    """The n-th final of the round; `spoken_at_ms` is when it ended, in the call's time."""
    session_id, session_token = session
    body = json.dumps({"message": {
        "type": "transcript", "timestamp": spoken_at_ms, "role": "user" if n % 2 else "assistant",
        "transcriptType": "final", "transcript": f"{LINES[n % len(LINES)]} ({n})",
        "call": {
            "id": f"bench-{session_id}",
            "assistantOverrides": {"variableValues": {"sparring_session_id": session_id,
                                                      "sparring_session_token": session_token}},
        },
    }}).encode()
    stamp = str(int(time.time()))
    signature = sign_hmac(HmacScheme(), SECRET, body, stamp)
    head = (f"POST /api/vapi/webhook HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nx-timestamp: {stamp}\r\nx-signature: {signature}\r\n\r\n")
    return head.encode() + body


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, request: bytes) -> int:
        self.writer.write(request)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await self.reader.readexactly(length)
        return int(status_line.split()[1])


async def run_rate(url: str, ids: list[tuple[str, str]], rate: int, seconds: float, connections: int) -> dict:
    """Open loop: each webhook is due at its own time and its latency counts from then, waiting
    for a connection included (VAPI sends each webhook as its own request, never waiting for the
    last one's answer). Keep-alive connections are opened as the load needs them, up to
    `connections`; the most that were busy at once is reported."""
    host, port = url.removeprefix("http://").split(":")
    total = int(rate * seconds)
    base = time.time_ns() % 10**9 * 1000  # distinct messages in every round
    # Each call's finals end 3 s of call time apart, as a conversation's turns do (the bench sends
    # them far faster than that): the hint engine's 30 s and 2 min windows hold what a real call's
    # would, not every turn of the round.
    now_ms = int(time.time() * 1000)
    requests = [request_bytes(f"{host}:{port}", ids[n % len(ids)], base + n, now_ms + n // len(ids) * 3000)
                for n in range(total)]
    idle: list[tuple[float, Connection]] = []  # (when it was last answered, connection)
    free = asyncio.Semaphore(connections)
    opened: list[Connection] = []
    busy = [0, 0]  # now, most at once
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    late = [0]

    async def one(request: bytes, due: float) -> None:
        async with free:
            conn = None
            while idle and conn is None:
                answered, conn = idle.pop()
                if time.perf_counter() - answered > 3:  # the server drops it after 5 s (keep-alive)
                    conn.writer.close()
                    conn = None
            if conn is None:
                conn = Connection(*await asyncio.open_connection(host, int(port)))
                opened.append(conn)
            busy[0] += 1
            busy[1] = max(busy)
            try:
                status = await conn.send(request)
            finally:
                busy[0] -= 1
                idle.append((time.perf_counter(), conn))
        latencies.append((time.perf_counter() - due) * 1000)
        statuses[status] = statuses.get(status, 0) + 1

    tasks = []
    t0 = time.perf_counter()
    for i, request in enumerate(requests):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            late[0] += 1
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    for conn in opened:
        conn.writer.close()
    return {"latencies": latencies, "statuses": statuses, "events_per_s": len(latencies) / elapsed,
            "late": late[0], "connections": busy[1]}


async def watch_all(url: str, token: str, ids: list[tuple[str, str]], stop: asyncio.Event,
                    counter: list[int]) -> None:
    """Counts the `transcript.final` events each coach socket receives (the work being timed)."""
    from websockets.asyncio.client import connect

    async def one(session_id: str) -> None:
        async with connect(url.replace("http://", "ws://") + f"/ws/sessions/{session_id}/watch?token={token}") as ws:
            async for frame in ws:
                if isinstance(frame, str) and '"transcript.final"' in frame:
                    counter[0] += 1
                if stop.is_set():
                    return

    tasks = [asyncio.create_task(one(s)) for s, _ in ids]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def postgres_cpu_s() -> float:
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] and proc.info["name"].startswith("postgres"):
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=1000, help="the most open at once")
    parser.add_argument("--rates", type=int, nargs="+", help="offered events/s to step through")
    parser.add_argument("--profile", action="store_true", help="py-spy samples the gateway during each rate")
    args = parser.parse_args()
    install_uvloop()
    os.sched_setaffinity(0, {1})
    rates = args.rates or ([250, 500] if args.quick else [250, 500, 750, 1000, 1250, 1500])
    data = Path(tempfile.mkdtemp(prefix="sparring-vapi-bench-"))
    dsn, pg = start_embedded_postgres(data / "postgres")
    redis = RedisServer().start()
    print(f"machine: {os.cpu_count()} cores; gateway on CPU 0, load generator on CPU 1, Postgres and Redis unpinned;"
          f" {args.sessions} VAPI sessions, each watched by one coach socket; {args.seconds:.0f} s per rate")
    print(f"{'offered/s':>9} {'sustained/s':>12} {'p50':>8} {'p99':>8} {'max':>8} {'non-2xx':>8} {'fanned out':>11}"
          f" {'gw CPU':>7} {'PG CPU':>7} {'client':>7} {'conns':>6}")
    env = {"DATABASE_URL": dsn, "REDIS_URL": redis.url, "VAPI_WEBHOOK_SECRET": SECRET, "LOG_LEVEL": "WARNING",
           "LLM_PROVIDER": "scripted", "SITE_URL": "http://127.0.0.1",
           "RATE_LIMIT_WATCH": "100000/minute"}  # the webhook limit as shipped: it counts failed deliveries only
    drifted = []
    try:
        for rate in rates:
            profile_out = data / f"profile-{rate}.txt"
            with Gateway(env, cpu=0) as gw:
                async def run(rate=rate, profile_out=profile_out):
                    token, ids = await setup(gw.url, args.sessions)
                    stop, delivered = asyncio.Event(), [0]
                    watchers = asyncio.create_task(watch_all(gw.url, token, ids, stop, delivered))
                    await asyncio.sleep(1)
                    # Warm-up, not measured: each call's first webhook starts its session.
                    warm_round = await run_rate(gw.url, ids, len(ids), 1, args.connections)
                    warm = sum(n for status, n in warm_round["statuses"].items() if 200 <= status < 300)
                    spy = profiled(gw.proc.pid, args.seconds, profile_out) if args.profile else None
                    me = psutil.Process()
                    cpu0, pg0, me0, t0 = gw.cpu_s(), postgres_cpu_s(), sum(me.cpu_times()[:2]), time.perf_counter()
                    result = await run_rate(gw.url, ids, rate, args.seconds, args.connections)
                    wall = time.perf_counter() - t0
                    result["gw_cpu"] = (gw.cpu_s() - cpu0) / wall * 100
                    result["pg_cpu"] = (postgres_cpu_s() - pg0) / wall * 100
                    result["client_cpu"] = (sum(me.cpu_times()[:2]) - me0) / wall * 100
                    if spy is not None:
                        spy.wait(30)  # after the CPU shares: waiting for py-spy's output is not the round
                    # Let the last deliveries reach the watchers, then count only the measured round.
                    await asyncio.sleep(1)
                    result["warmup_finals"] = warm
                    stop.set()
                    await watchers
                    return result, delivered[0]

                res, delivered = asyncio.run(run())
            lat = res["latencies"]
            bad = sum(n for status, n in res["statuses"].items() if not 200 <= status < 300)
            delivered -= res["warmup_finals"]
            if delivered < len(lat) - bad:
                drifted.append(f"{rate}/s: {len(lat) - bad} accepted but {delivered} reached the watchers")
            print(f"{rate:>9} {res['events_per_s']:>12.0f} {pct(lat, 50):>6.1f}ms {pct(lat, 99):>6.1f}ms "
                  f"{max(lat):>6.0f}ms {bad:>8} {delivered:>11} {res['gw_cpu']:>6.0f}% {res['pg_cpu']:>6.0f}%"
                  f" {res['client_cpu']:>6.0f}% {res['connections']:>6}"
                  + (f"  statuses {res['statuses']}" if bad else ""))
            if args.profile and profile_out.exists():
                print(f"== py-spy at {rate}/s (raw profile: {profile_out})")
                print("\n".join(profile_top(profile_out.read_text(), count=25)))
    finally:
        redis.stop()
        pg.cleanup()
    if drifted:
        # The bench measured something other than the product's work: fail loudly.
        raise SystemExit("bench drifted from the product: " + "; ".join(drifted))


if __name__ == "__main__":
    main()
