"""Soak: many concurrent live calls for a long time, watching for leaks.

    .venv/bin/python bench/soak.py [--quick] [--calls N] [--minutes M] [--postgres-cpu C]

The gateway runs in its own process pinned to CPU 0 (embedded Postgres, no Redis), with fake
remote providers of fixed latency (150 ms STT and TTS, scripted persona); this process drives N
call slots from CPU 1: each slot runs calls back to back (greeting, three spoken turns in real time,
end), so sessions, sockets and tasks are created and released all the time. Every 10 s it samples
the gateway's RSS, open file descriptors, asyncio task count and live calls (the last two from
`GET /api/health`). Prints the samples, the slope of each per minute over the second half (after
warm-up), and every failed call with its reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_calls import (  # noqa: E402
    CLIENT_CPU,
    Gateway,
    failure_reason,
    fake_provider_process,
    install_uvloop,
    make_reps,
    one_call,
    pct,
)
from tests.fixtures.speech import silence, speech_pcm  # noqa: E402

SAMPLE_S = 10


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in points) / var if var else 0.0


async def slot(url: str, token: str, deadline: float, utterance: bytes, results: dict, failures: list[str],
               delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        while time.monotonic() < deadline:
            await one(http, url, token, utterance, results, failures)


async def one(http: httpx.AsyncClient, url: str, token: str, utterance: bytes, results: dict,
              failures: list[str]) -> None:
    try:
        created = await http.post("/api/sessions", json={"persona_id": "skeptical-cfo"})
        created.raise_for_status()
        session_id = created.json()["id"]
    except httpx.HTTPError as exc:
        failures.append(f"create: {type(exc).__name__}: {exc}"[:200])
        return
    try:
        await one_call(url, token, session_id, utterance, 3, results)
        results["calls"] += 1
    except Exception as exc:  # counted and reported with its reason, never hidden
        failures.append(failure_reason(exc)[:200])


async def soak(gw: Gateway, calls: int, minutes: float, utterance: bytes) -> None:
    results: dict = {"v2v_ms": [], "calls": 0}
    failures: list[str] = []
    start = time.monotonic()
    deadline = start + minutes * 60
    token = (await make_reps(gw.url, 1))[0][0]  # one rep with many calls (the bench raises the limits)
    slots = [asyncio.create_task(slot(gw.url, token, deadline, utterance, results, failures, i * 8.0 / calls))
             for i in range(calls)]
    samples: list[dict] = []
    health_timeouts: list[str] = []
    print(f"{'t':>6} {'RSS MB':>8} {'fds':>6} {'tasks':>7} {'live':>6} {'calls done':>11} {'failed':>7}")
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        while time.monotonic() < deadline:
            await asyncio.sleep(SAMPLE_S)
            try:
                process = (await client.get("/api/health")).json()["process"]
            except httpx.HTTPError as exc:  # an overloaded gateway answers late: say so, keep sampling
                health_timeouts.append(type(exc).__name__)
                process = {"asyncio_tasks": -1, "live_calls": -1}
            sample = {"t": time.monotonic() - start, "rss": gw.rss_mb(), "fds": gw.ps.num_fds(),
                      "tasks": process["asyncio_tasks"], "live": process["live_calls"]}
            samples.append(sample)
            print(f"{sample['t']:>5.0f}s {sample['rss']:>8.1f} {sample['fds']:>6} {sample['tasks']:>7} "
                  f"{sample['live']:>6} {results['calls']:>11} {len(failures):>7}", flush=True)
    await asyncio.gather(*slots, return_exceptions=True)
    steady = [s for s in samples[len(samples) // 2:] if s["tasks"] >= 0]
    print(f"\nslopes over the second half ({len(steady)} samples), per minute:")
    for key, unit in (("rss", "MB"), ("fds", "fds"), ("tasks", "tasks")):
        print(f"  {key:>6}: {slope_per_minute([(s['t'], s[key]) for s in steady]):+.2f} {unit}/min")
    print(f"calls completed: {results['calls']}, failed: {len(failures)};"
          f" health samples that timed out (10 s): {len(health_timeouts)}")
    for reason in sorted(set(failures)):
        print(f"  {failures.count(reason)} x {reason}")
    print("letting an ended call go (its `call ended` log lines), p50/p95/max: " + closing_times(gw))


def closing_times(gw: Gateway) -> str:
    """From the end of a call to the gateway letting go of it: until its last events are durable,
    then its recording's last writes. A call is in the live count until then."""
    rows = [json.loads(line) for line in Path(gw.log.name).read_text().splitlines() if '"call ended"' in line]
    parts = []
    for key in ("closing_ms", "durable_ms", "recording_ms"):
        values = sorted(r[key] for r in rows if key in r)
        if values:
            parts.append(f"{key[:-3]} {pct(values, 50):.0f}/{pct(values, 95):.0f}/{values[-1]:.0f} ms")
    return ", ".join(parts) + f" ({len(rows)} calls)" if parts else "none logged"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2 minutes instead of 10")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--postgres-cpu", type=int, default=None,
                        help="move the embedded Postgres to this CPU (as a database on its own host)")
    args = parser.parse_args()
    minutes = args.minutes if args.minutes is not None else (2 if args.quick else 10)
    install_uvloop()
    os.sched_setaffinity(0, {CLIENT_CPU})
    utterance = silence(200) + speech_pcm("How does your month end close process work today?")
    with fake_provider_process() as fake_url:
        env = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": fake_url + "/v1", "STT_PROVIDER": "openai",
               "TTS_PROVIDER": "openai", "LLM_PROVIDER": "scripted", "LOG_LEVEL": "INFO",
               "RATE_LIMIT_WS_CONNECT": "1000000/minute", "RATE_LIMIT_LOGIN": "1000000/minute"}
        where = "its core" if args.postgres_cpu is None else f"CPU {args.postgres_cpu}"
        print(f"== soak: {args.calls} call slots for {minutes:g} min, fake remote providers, no Redis,"
              f" the embedded Postgres on {where}")
        with Gateway(env, postgres_cpu=args.postgres_cpu) as gw:
            asyncio.run(soak(gw, args.calls, minutes, utterance))


if __name__ == "__main__":
    main()
