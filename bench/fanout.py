"""Fan-out benchmark: two gateway instances sharing Postgres and Redis, S live calls per instance,
each emitting ~10 events a second, W watchers per call spread over both instances.

    .venv/bin/python bench/fanout.py [--quick] [--watchers W] [--seconds N]

Each call is owned by one instance (its rep's socket is there); a coach socket on the owner
whispers 10 times a second, so every event goes owner -> Redis stream -> each instance's reader
-> its local watchers. Latency is publish-to-watcher: the watcher's clock at arrival minus the
event's `ts`, stamped by the owner when it numbered the event (same machine, same clock).
Prints p50/p99 and deliveries per second at each S.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_calls import Gateway, fake_provider_process, install_uvloop, pct  # noqa: E402
from storage.embedded import start_embedded_postgres  # noqa: E402
from tests.processes import RedisServer  # noqa: E402

EVENTS_PER_S = 10


class _Stamp(msgspec.Struct):
    type: str
    ts: int = 0


_decode = msgspec.json.Decoder(_Stamp).decode


async def setup(url: str, calls: int) -> tuple[str, list[str]]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        admin = (await client.post("/api/auth/signup", json={
            "email": f"fanout-{time.time_ns()}@example.com", "password": "correct horse battery",
            "name": "Bench Coach", "org_name": "Bench"})).json()
        token = admin["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        ids = [(await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"}, headers=auth)).json()["id"]
               for _ in range(calls)]
        return token, ids


async def run_level(gateways: list[Gateway], per_instance: int, watchers: int, seconds: float) -> dict:
    from websockets.asyncio.client import connect

    token, ids = await setup(gateways[0].url, per_instance * len(gateways))
    ws = [g.url.replace("http://", "ws://") for g in gateways]
    latencies: list[float] = []
    received = [0]
    measuring = asyncio.Event()
    stop = asyncio.Event()
    start_msg = '{"type":"start","protocol":1,"audio":{"encoding":"pcm_s16le","sample_rate":16000,"channels":1}}'

    async def rep(i: int, session_id: str) -> None:
        async with connect(f"{ws[i % len(ws)]}/ws/sessions/{session_id}?token={token}", max_size=None) as sock:
            await sock.send(start_msg)
            async for _ in sock:  # keep reading (greeting audio, own events) until the round ends
                if stop.is_set():
                    break

    async def watcher(j: int, session_id: str) -> None:
        async with connect(f"{ws[j % len(ws)]}/ws/sessions/{session_id}/watch?token={token}", max_size=None) as sock:
            async for frame in sock:
                if stop.is_set():
                    break
                if '"whisper"' not in frame:
                    continue
                event = _decode(frame)
                if measuring.is_set():
                    latencies.append(time.time() * 1000 - event.ts)
                    received[0] += 1

    async def driver(i: int, session_id: str) -> None:
        async with connect(f"{ws[i % len(ws)]}/ws/sessions/{session_id}/watch?token={token}", max_size=None) as sock:
            reader = asyncio.create_task(_drain(sock))
            next_at = time.perf_counter()
            n = 0
            while not stop.is_set():
                n += 1
                await sock.send(f'{{"type":"whisper","text":"tip {n}"}}')
                next_at += 1 / EVENTS_PER_S
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            reader.cancel()

    tasks = [asyncio.create_task(rep(i, s)) for i, s in enumerate(ids)]
    await asyncio.sleep(3)  # calls started (greeting) on their owners
    tasks += [asyncio.create_task(watcher(i * watchers + k, s)) for i, s in enumerate(ids) for k in range(watchers)]
    await asyncio.sleep(2)
    tasks += [asyncio.create_task(driver(i, s)) for i, s in enumerate(ids)]
    await asyncio.sleep(3)  # warm-up
    measuring.set()
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    measuring.clear()
    elapsed = time.perf_counter() - t0
    stop.set()
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    failed = sum(1 for o in outcomes if isinstance(o, Exception) and not isinstance(o, asyncio.CancelledError))
    return {"latencies": latencies, "deliveries_per_s": received[0] / elapsed, "failed": failed,
            "expected_per_s": len(ids) * EVENTS_PER_S * watchers}


async def _drain(sock) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        async for _ in sock:
            pass
    except ConnectionClosed:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    install_uvloop()
    levels = [2, 5] if args.quick else [2, 5, 10, 25, 40]
    data = Path(tempfile.mkdtemp(prefix="sparring-fanout-"))
    dsn, pg = start_embedded_postgres(data / "postgres")
    redis = RedisServer().start()
    print(f"machine: {os.cpu_count()} cores; instance A on CPU 0, instance B on CPU 1; Postgres, Redis and "
          f"this load generator unpinned; {args.watchers} watchers per call, {EVENTS_PER_S} events/s per call")
    print(f"{'calls/inst':>10} {'expected/s':>11} {'delivered/s':>12} {'p50':>8} {'p99':>8} {'max':>8}")
    try:
        with fake_provider_process() as fake_url:
            env = {"DATABASE_URL": dsn, "REDIS_URL": redis.url, "OPENAI_API_KEY": "sk-bench",
                   "OPENAI_BASE_URL": fake_url + "/v1", "STT_PROVIDER": "openai", "TTS_PROVIDER": "openai",
                   "LLM_PROVIDER": "scripted", "LOG_LEVEL": "WARNING", "RATE_LIMIT_WATCH": "100000/minute",
                   "RATE_LIMIT_WS_CONNECT": "100000/minute", "IDLE_TIMEOUT_SECONDS": "600"}
            for per_instance in levels:
                with Gateway({**env, "INSTANCE_ID": "bench-a"}, cpu=0) as a, \
                        Gateway({**env, "INSTANCE_ID": "bench-b"}, cpu=1) as b:
                    res = asyncio.run(run_level([a, b], per_instance, args.watchers, args.seconds))
                lat = res["latencies"]
                note = f"  ({res['failed']} sockets failed)" if res["failed"] else ""
                print(f"{per_instance:>10} {res['expected_per_s']:>11.0f} {res['deliveries_per_s']:>12.0f} "
                      f"{pct(lat, 50):>6.1f}ms {pct(lat, 99):>6.1f}ms {max(lat, default=float('nan')):>6.0f}ms{note}")
    finally:
        redis.stop()
        pg.cleanup()


if __name__ == "__main__":
    main()
