"""Load benchmark for live calls over WebRTC.

    .venv/bin/python bench/webrtc_calls.py [--quick] [--counts 1,4,8,12]

Starts the gateway in its own process pinned to CPU 0 (WebRTC on, ICE on loopback, DATABASE_URL
passed through when set, else the embedded Postgres) with the fake remote providers of
bench/fake_providers.py (speech-to-text and speech 150 ms each, scripted persona), and drives it
from this process pinned to CPU 1: N concurrent aiortc peers, each streaming 20 ms Opus frames in
real time (the rep's question, then silence) and reading the persona's track and the `events`
data channel. So every call has Opus decode + resampling, the pipeline, and Opus encode of the
persona's voice on the gateway.

Per round it prints the gateway's CPU (share of its one core, and per call), its memory (RSS
growth per call) and the outbound pacing the gateway itself measured on each persona track
(`webrtc peer released` log lines: frames later than 20 ms against their schedule, and the
latest). Calls per core: the largest N whose frames stayed within 20 ms (under 1 % late).
Figures are taken on whatever else the machine is running; the load generator's core saturates
too (aiortc costs the clients about what it costs the gateway).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import aioice.ice
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_calls import CLIENT_CPU, Gateway, fake_provider_process, install_uvloop, make_reps, remote_env  # noqa: E402
from tests.fixtures.speech import silence, speech_pcm  # noqa: E402
from tests.gateway.webrtc.rtc_client import RtcClient  # noqa: E402

QUESTION = "How does your month end close process work today?"
SLIP_SHARE = 0.01  # more than this share of frames later than 20 ms: pacing slipped


async def one_call(url: str, token: str, session_id: str, utterance: bytes, turns: int, delay_s: float,
                   stats: dict) -> None:
    await asyncio.sleep(delay_s)
    auth = {"access_token": token}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        call = await RtcClient(url, session_id, auth).connect(client)
        try:
            await call.greeting()
            for _ in range(turns):
                mark = len(call.events)
                call.mic.say(utterance)
                await call.wait_for(lambda e: e["type"] == "persona.audio.end", after=mark, timeout=120)
            stats["voiced_ms"].append(call.voiced_ms())
            call.send({"type": "end"})
            await call.wait_for(lambda e: e["type"] == "session.ended", timeout=60)
        finally:
            await call.close()


def pacing_lines(log_path: str, seen: int) -> tuple[list[dict], int]:
    lines = Path(log_path).read_text().splitlines()
    rows = [json.loads(line) for line in lines[seen:] if '"webrtc peer released"' in line]
    return rows, len(lines)


async def round_(gw: Gateway, n: int, utterance: bytes, turns: int, seen: int) -> tuple[dict, int]:
    reps = await make_reps(gw.url, n)
    rss_before, cpu_before, t0 = gw.rss_mb(), gw.cpu_s(), time.monotonic()
    stats: dict = {"voiced_ms": []}
    peak = {"rss": rss_before}

    async def sample() -> None:
        while True:
            peak["rss"] = max(peak["rss"], gw.rss_mb())
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    outcomes = await asyncio.gather(*(one_call(gw.url, t, s, utterance, turns, i * 2.0 / n, stats)
                                      for i, (t, s) in enumerate(reps)), return_exceptions=True)
    sampler.cancel()
    wall = time.monotonic() - t0
    cpu = gw.cpu_s() - cpu_before
    await asyncio.sleep(1.5)  # the peers' release lines are written as they close
    rows, seen = pacing_lines(gw.log.name, seen)
    frames = sum(r["frames_out"] for r in rows)
    late = sum(r["frames_late"] for r in rows)
    failures = [f"{type(o).__name__}: {o}"[:120] for o in outcomes if isinstance(o, BaseException)]
    return {
        "n": n, "wall_s": wall, "cpu_share": cpu / wall, "cpu_per_call": cpu / wall / n,
        "rss_per_call_mb": (peak["rss"] - rss_before) / n, "frames": frames, "late": late,
        "late_share": late / frames if frames else float("nan"),
        "max_late_ms": max((r["max_late_ms"] for r in rows), default=float("nan")),
        "failed": failures, "peers_logged": len(rows),
    }, seen


async def main(counts: list[int], turns: int) -> None:
    install_uvloop()
    os.sched_setaffinity(0, {CLIENT_CPU})
    # The clients gather on loopback only, as the gateway does (aioice leaves loopback out by default).
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    utterance = silence(200) + speech_pcm(QUESTION) + silence(900)
    env = {"WEBRTC_CALLS": "true", "WEBRTC_HOST_ADDRESSES": "127.0.0.1", "RESUME_GRACE_SECONDS": "5"}
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    with fake_provider_process() as fake_url, Gateway({**remote_env(fake_url), **env}) as gw:
        print(f"gateway pid {gw.proc.pid} on CPU 0, {gw.rss_mb():.0f} MB RSS idle; load generator on CPU {CLIENT_CPU}")
        print(f"load average now: {os.getloadavg()[0]:.2f} (the machine is shared: figures are taken under load)")
        seen = 0
        best = 0
        for n in counts:
            res, seen = await round_(gw, n, utterance, turns, seen)
            slipped = not res["late_share"] <= SLIP_SHARE
            print(f"{n:3d} calls: gateway CPU {100 * res['cpu_share']:5.1f}% of a core"
                  f" ({100 * res['cpu_per_call']:.1f}% per call), +{res['rss_per_call_mb']:.1f} MB RSS per call;"
                  f" outbound frames late >20 ms {res['late']}/{res['frames']} ({100 * res['late_share']:.2f}%),"
                  f" latest {res['max_late_ms']:.0f} ms; {len(res['failed'])} failed"
                  + (f" {res['failed'][:2]}" if res["failed"] else "") + (" <- pacing slipped" if slipped else ""))
            if slipped or res["failed"]:
                break
            best = n
        print(f"calls per core before outbound pacing slips by more than 20 ms: {best}"
              f" (largest round with under {100 * SLIP_SHARE:.0f}% of frames late; rounds {counts})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="rounds of 1, 4 and 8 calls, one turn each")
    parser.add_argument("--counts", default="1,4,8,12,16,24", help="concurrent calls per round")
    parser.add_argument("--turns", type=int, default=2)
    args = parser.parse_args()
    counts = [1, 4, 8] if args.quick else [int(c) for c in args.counts.split(",")]
    asyncio.run(main(counts, 1 if args.quick else args.turns))
