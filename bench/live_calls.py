"""Load benchmark for live calls and the /ws/echo socket.

    .venv/bin/python bench/live_calls.py [--quick]

Starts the gateway in its own process pinned to CPU 0 (embedded Postgres), and drives it from
this process pinned to CPU 1 (uvloop): N concurrent real-time calls with fake remote providers of
fixed latency (speech-to-text and speech 150 ms each, scripted persona), one call with the local
providers, and N echo sockets sending 20 ms frames in real time. Prints every number it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import fake_providers  # noqa: E402
from tests.fixtures.speech import silence, speech_pcm  # noqa: E402

SERVER_CPU, CLIENT_CPU = 0, 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_uvloop() -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        print("(uvloop not installed: pip install -e '.[bench]')")


def breakdown(rows: list[dict]) -> str:
    parts = []
    for key in ("total_ms", "stt_ms", "brain_ms", "tts_ms"):
        values = [r[key] for r in rows]
        parts.append(f"{key.removesuffix('_ms')} {pct(values, 50):.0f}/{pct(values, 95):.0f}")
    return ", ".join(parts) + f" ms ({len(rows)} turns)"


def core_busy_s(cpu: int) -> float:
    """Seconds core `cpu` has been busy (anything but idle and iowait), whoever ran there: the
    gateway shares its core with the embedded Postgres it started."""
    t = psutil.cpu_times(percpu=True)[cpu]
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] if ordered else float("nan")


class Gateway:
    """`sparring serve` in its own process, pinned to one core."""

    def __init__(self, env: dict[str, str], cpu: int = SERVER_CPU, postgres_cpu: int | None = None,
                 argv: list[str] | None = None) -> None:
        self.cpu, self.postgres_cpu = cpu, postgres_cpu
        self.argv = argv or [str(ROOT / ".venv/bin/sparring"), "serve"]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "LOG_LEVEL": "INFO",
                    "JWT_SECRET": "bench-" + "x" * 40, "HOST": "127.0.0.1", "PORT": str(self.port),
                    "SPARRING_DATA_DIR": tempfile.mkdtemp(prefix="sparring-bench-"),
                    "MAX_LIVE_SESSIONS_PER_USER": "10000", "RATE_LIMIT_SIGNUP": "1000000/minute",
                    # One process on its core, unless a bench asks for more (WORKERS in `env`).
                    "WORKERS": "1",
                    # The fake providers speak STT and TTS only: no LLM hints, the heuristic scorer.
                    "HINTS_LLM": "off", "SCORER": "heuristic",
                    # Not the starter playbook: embedding it on first start took 40 % of the
                    # gateway's core for the first measured round (seen in the VAPI bench's profile).
                    "KNOWLEDGE_STARTER": "false", **env}

    def __enter__(self) -> Gateway:
        self.log = tempfile.NamedTemporaryFile(prefix="sparring-bench-", suffix=".log", delete=False)
        cpu = self.cpu
        # Pinned before exec, so every thread it ever starts inherits the core (pinning the pid
        # afterwards moves only the main thread: a thread started before that stayed on the
        # load generator's core, as an inference thread was found doing).
        self.proc = subprocess.Popen(self.argv, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True,
                                     preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        self.ps = psutil.Process(self.proc.pid)
        if self.postgres_cpu is not None:
            self.pin_postgres(self.postgres_cpu)
        return self

    def pin_postgres(self, cpu: int) -> None:
        """Moves the embedded Postgres the gateway started (its postmaster, whose future backends
        inherit the mask, and the processes it runs now) to `cpu`, as a database on its own host."""
        data_dir = self.env["SPARRING_DATA_DIR"]
        pinned = 0
        for proc in psutil.process_iter(["name", "cmdline"]):
            if proc.info["name"] == "postgres" and any(data_dir in part for part in proc.info["cmdline"] or []):
                for each in [proc, *proc.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        os.sched_setaffinity(each.pid, {cpu})
                        pinned += 1
        if not pinned:
            raise SystemExit(f"no embedded Postgres found under {data_dir} to pin")

    def __exit__(self, *exc) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(60)

    def turn_latencies(self) -> list[dict]:
        """The gateway's own per-turn breakdown (its `turn latency` log lines)."""
        rows = []
        for line in Path(self.log.name).read_text().splitlines():
            if '"turn latency"' in line:
                rows.append(json.loads(line))
        return rows

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system


async def make_reps(url: str, count: int) -> list[tuple[str, str]]:
    """(access_token, session_id) for `count` calls in one org, each by its own rep (invited as a
    trainee), as in a real team: per-user limits (live calls, socket connects) apply as they do
    in production, and the bench measures calls, not the limiter."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        stamp = time.time_ns()
        admin = await _ok(client.post("/api/auth/signup", json={
            "email": f"bench-{stamp}@example.com", "password": "correct horse battery", "name": "Bench",
            "org_name": "Bench"}))
        auth = {"Authorization": f"Bearer {admin['access_token']}"}

        async def rep(i: int) -> tuple[str, str]:
            code = (await _ok(client.post("/api/orgs/invites", json={"role": "trainee"}, headers=auth)))["code"]
            rep = await _ok(client.post("/api/auth/signup", json={
                "email": f"bench-{stamp}-{i}@example.com", "password": "correct horse battery",
                "name": f"Rep {i}", "invite_code": code}))
            token = rep["access_token"]
            created = await _ok(client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                                            headers={"Authorization": f"Bearer {token}"}))
            return token, created["id"]

        reps = []
        for first in range(0, count, 20):  # sign-ups hash passwords: a few at a time
            reps += await asyncio.gather(*(rep(i) for i in range(first, min(count, first + 20))))
        return reps


async def _ok(request) -> dict:
    response = await request
    if response.status_code >= 300:
        raise SystemExit(f"bench set-up failed: {response.request.method} {response.request.url.path}"
                         f" {response.status_code} {response.text}")
    return response.json()


def failure_reason(error: BaseException) -> str:
    """Why a call failed, in one line: a close code and reason, a refused handshake, a timeout."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    match error:
        case InvalidStatus():
            return f"handshake refused {error.response.status_code}"
        case ConnectionClosed():
            close = error.rcvd or error.sent
            return f"closed {close.code} {close.reason}" if close else "closed without a close frame"
        case TimeoutError():
            return "timed out waiting for the call"
        case _:
            return f"{type(error).__name__}: {error}"


async def one_call(url: str, token: str, session_id: str, utterance: bytes, turns: int, results: dict,
                   delay_s: float = 0.0) -> None:
    """A rep who talks in real time: waits out the greeting, then asks `turns` questions, timing
    each from the end of their speech to the persona's first audio byte. Calls start `delay_s`
    apart, as real calls do, rather than all speaking in the same instant. A turn the gateway
    refuses (an `error` event, e.g. `overloaded`, before the persona starts to answer) is counted
    by its code and asked again, as the rep is told to; its time still runs from the end of the
    first asking. An error once the answer's audio has started (a sentence the persona could not
    voice) is counted as `code mid-reply` and not asked again."""
    from websockets.asyncio.client import connect

    await asyncio.sleep(delay_s)
    from websockets.exceptions import ConnectionClosed

    ws_url = url.replace("http://", "ws://") + f"/ws/sessions/{session_id}?token={token}"
    async with connect(ws_url, max_size=None) as ws:
        await ws.send('{"type":"start","protocol":1,"audio":{"encoding":"pcm_s16le","sample_rate":16000,"channels":1}}')
        state = {"speech_end": None, "audio_ends": 0, "refused": 0, "answering": False}
        first_audio, ended = asyncio.Event(), asyncio.Event()

        async def reader():
          try:
            async for frame in ws:
                if isinstance(frame, bytes):
                    if state["speech_end"] is not None:
                        results["v2v_ms"].append((time.perf_counter() - state["speech_end"]) * 1000)
                        state["speech_end"] = None
                        first_audio.set()
                elif '"persona.audio.start"' in frame:
                    state["answering"] = True
                elif '"persona.audio.end"' in frame:
                    state["audio_ends"] += 1
                elif '"session.ended"' in frame:
                    ended.set()
                elif '"type":"error"' in frame:
                    code = json.loads(frame).get("code", "?")
                    if state["answering"]:
                        code += " mid-reply"
                    else:
                        state["refused"] += 1
                    results["errors"][code] = results["errors"].get(code, 0) + 1
          except ConnectionClosed:
            pass

        task = asyncio.create_task(reader())
        frame_bytes = 640  # 20 ms frames, as browsers send them
        quiet = silence(100)
        started = time.perf_counter()

        async def send_realtime(pcm: bytes) -> None:
            nonlocal started
            for i in range(0, len(pcm), frame_bytes):
                started += 0.02
                await asyncio.sleep(max(0, started - time.perf_counter()))
                await ws.send(pcm[i:i + frame_bytes])

        while state["audio_ends"] < 1:  # the greeting
            await send_realtime(quiet)
        for _ in range(turns):
            first_audio.clear()
            ends_before = state["audio_ends"]
            state["answering"] = False
            await send_realtime(utterance)
            state["speech_end"] = time.perf_counter()
            refused = state["refused"]
            while state["audio_ends"] == ends_before:
                if state["refused"] > refused:  # "try again in a moment": the rep asks again
                    refused = state["refused"]  # speech_end stays the first asking's
                    state["answering"] = False
                    await send_realtime(utterance)
                await send_realtime(quiet)
        await ws.send('{"type":"end"}')
        # As a browser does: wait for the end to be confirmed, so the call ends `rep_ended` at once
        # rather than waiting out the resume grace of a dropped socket.
        await asyncio.wait_for(ended.wait(), 30)
        task.cancel()


async def calls_round(url: str, n: int, utterance: bytes, turns: int,
                      sessions: list[tuple[str, str]] | None = None) -> dict:
    sessions = sessions or await make_reps(url, n)
    results = {"v2v_ms": [], "errors": {}}
    outcomes = await asyncio.gather(*(one_call(url, t, s, utterance, turns, results, delay_s=i * 4.0 / n)
                                      for i, (t, s) in enumerate(sessions)), return_exceptions=True)
    failures = [failure_reason(o) for o in outcomes if isinstance(o, BaseException)]
    results["failed"] = len(failures)
    results["reasons"] = {reason: failures.count(reason) for reason in sorted(set(failures))}
    # The work really happened: every call that did not fail timed each of its turns.
    results["missing_turns"] = (n - len(failures)) * turns - len(results["v2v_ms"])
    return results


async def barge_in_round(url: str, utterance: bytes, rounds: int) -> list[tuple[float, int]]:
    """Talks over the persona's greeting: time from the first speech frame sent to
    `persona.audio.end {interrupted: true}`, and persona audio bytes received after that."""
    from websockets.asyncio.client import connect

    out = []
    for token, session_id in await make_reps(url, rounds):
        ws_url = url.replace("http://", "ws://") + f"/ws/sessions/{session_id}?token={token}"
        async with connect(ws_url, max_size=None) as ws:
            await ws.send(
                '{"type":"start","protocol":1,"audio":{"encoding":"pcm_s16le","sample_rate":16000,"channels":1}}'
            )
            while True:
                frame = await ws.recv()
                if isinstance(frame, str) and '"persona.audio.start"' in frame:
                    break
            await asyncio.sleep(0.4)
            speech = utterance[6400:]  # skip the leading silence: speech from the first frame
            first_sent = time.perf_counter()
            stop = asyncio.Event()
            stats = {"after": 0, "reaction": None}

            async def reader(stats=stats, first_sent=first_sent, stop=stop):
                async for frame in ws:
                    if isinstance(frame, bytes):
                        if stats["reaction"] is not None:
                            stats["after"] += len(frame)
                    elif '"persona.audio.end"' in frame and '"interrupted":true' in frame:
                        stats["reaction"] = (time.perf_counter() - first_sent) * 1000
                        stop.set()

            task = asyncio.create_task(reader())
            for i in range(0, len(speech), 640):  # 20 ms frames in real time
                await ws.send(speech[i:i + 640])
                if stop.is_set() and i > 16000:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            task.cancel()
            out.append((stats["reaction"], stats["after"]))
    return out


async def echo_round(url: str, token: str, n: int, seconds: float) -> list[float]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    rtts: list[float] = []
    payload = b"\x00" * 632

    async def one() -> None:
        async with connect(url.replace("http://", "ws://") + f"/ws/echo?token={token}") as ws:
            # Measure the steady state: start once the socket is authenticated and echoing.
            await ws.send('{"type":"ping"}')
            await ws.recv()
            pending: dict[int, float] = {}

            async def reader():
                try:
                    async for frame in ws:
                        seq = int.from_bytes(frame[:8], "little")
                        rtts.append((time.perf_counter() - pending.pop(seq)) * 1000)
                except ConnectionClosed:
                    pass

            task = asyncio.create_task(reader())
            start = time.perf_counter()
            for seq in range(int(seconds * 50)):
                await asyncio.sleep(max(0, start + seq * 0.02 - time.perf_counter()))
                pending[seq] = time.perf_counter()
                await ws.send(seq.to_bytes(8, "little") + payload)
            await asyncio.sleep(0.5)
            task.cancel()

    await asyncio.gather(*(one() for _ in range(n)))
    return rtts


class fake_provider_process:
    """The fake providers in their own process (on the load generator's core), so their latency
    is theirs and not the load generator's."""

    def __enter__(self) -> str:
        port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.fake_providers", str(port), str(CLIENT_CPU)],
                                     cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.post(url + "/v1/audio/transcriptions", content=b"", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        return url

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def remote_env(fake_url: str) -> dict[str, str]:
    """The gateway's environment for calls through the fake remote providers."""
    return {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": fake_url + "/v1", "STT_PROVIDER": "openai",
            "TTS_PROVIDER": "openai", "LLM_PROVIDER": "scripted"}


def profile_top(raw: str, count: int = 15) -> list[str]:
    """The functions with the most samples in py-spy's raw (collapsed-stack) output: self time
    (the frame on top of the stack) and total time (anywhere on it), as a share of all samples."""
    own: dict[str, int] = {}
    idle = ("Runner.run (", "Condition.wait (", "_worker (", "select (", "poll (")
    anywhere: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 2)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        if frames[-1].startswith(idle):  # the event loop in uvloop's C code, idle pool threads
            continue
        total += int(n)
        own[frames[-1]] = own.get(frames[-1], 0) + int(n)
        for frame in set(frames):
            anywhere[frame] = anywhere.get(frame, 0) + int(n)
    rows = [f"  self  {100 * v / total:5.1f}%  {k}" for k, v in sorted(own.items(), key=lambda kv: -kv[1])[:count]]
    rows += [f"  total {100 * v / total:5.1f}%  {k}" for k, v in sorted(anywhere.items(), key=lambda kv: -kv[1])
             if not k.startswith(("<module>", "run (", "_run (", "run_forever", "run_until_complete"))][:count]
    return rows


def profiled(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    """py-spy sampling a gateway's threads (native frames off) for `seconds`, raw output to `out`."""
    return subprocess.Popen([str(ROOT / ".venv/bin/py-spy"), "record", "--pid", str(pid), "--format", "raw",
                             "--rate", "100", "--duration", str(int(seconds)), "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_round(env: dict[str, str], n: int, utterance: bytes, seconds: int) -> None:
    """py-spy samples the gateway (all its threads, native frames off) while N calls run."""
    out = Path(tempfile.mkdtemp(prefix="sparring-profile-")) / "gateway.txt"
    with Gateway(env) as gw:
        sessions = asyncio.run(make_reps(gw.url, n))  # sign-ups hash passwords: not what is profiled
        spy = profiled(gw.proc.pid, seconds, out)
        res = asyncio.run(calls_round(gw.url, n, utterance, turns=max(2, seconds // 6), sessions=sessions))
        spy.wait(seconds + 60)
    print(f"== py-spy, {n} calls, {seconds} s: v2v p95 {pct(res['v2v_ms'], 95):.0f} ms, {res['failed']} failed"
          f" (raw profile: {out})")
    print("\n".join(profile_top(out.read_text())))


def local_rows(utterance: bytes, sizes: list[int], postgres_cpu: int | None) -> None:
    """Local providers on the gateway's one core: one call, then N calls speaking at once. A
    size keeps up with real time while its voice-to-voice p95 stays within 1.5x of one call's
    (past that, speech queues behind inference)."""
    print("\n== one call, local providers (faster-whisper tiny.en, Piper, scripted persona)")
    with Gateway({"STT_PROVIDER": "local", "TTS_PROVIDER": "local", "LLM_PROVIDER": "scripted"},
                 postgres_cpu=postgres_cpu) as gw:
        time.sleep(5)  # models warm up in the background after start
        res = asyncio.run(calls_round(gw.url, 1, utterance, turns=3))
        print(f"voice-to-voice: {', '.join(f'{v:.0f} ms' for v in res['v2v_ms'])} "
              f"(p50 {pct(res['v2v_ms'], 50):.0f} ms, 500 ms end-of-turn silence included)")
        print("server-side p50/p95: " + breakdown(gw.turn_latencies()))
        single_p95 = pct(res["v2v_ms"], 95)
        for n in sizes:
            cpu0, t0 = gw.cpu_s(), time.perf_counter()
            res = asyncio.run(calls_round(gw.url, n, utterance, turns=1))
            cpu = (gw.cpu_s() - cpu0) / (time.perf_counter() - t0) * 100
            p95 = pct(res["v2v_ms"], 95)
            verdict = ("keeps up" if p95 <= single_p95 * 1.5 and not res["failed"] and not res["errors"]
                       else "falls behind")
            failed = f", {res['failed']} failed: {res['reasons']}" if res["failed"] else ""
            failed += f", error events (refused turns asked again): {res['errors']}" if res["errors"] else ""
            print(f"{n} local calls speaking at once: v2v p50 {pct(res['v2v_ms'], 50):.0f} ms, p95 {p95:.0f} ms,"
                  f" gateway {cpu:.0f}% CPU: {verdict} (1.5x one call's p95 = {single_p95 * 1.5:.0f} ms){failed}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer and shorter rounds")
    parser.add_argument("--profile", type=int, metavar="N", help="only profile the gateway under N calls (py-spy)")
    parser.add_argument("--calls", type=int, nargs="+", metavar="N", help="only the live-call rows, at these sizes")
    parser.add_argument("--local", type=int, nargs="+", metavar="N",
                        help="only the local-provider rows: N calls speaking at once, at these sizes (#18 target 6)")
    parser.add_argument("--postgres-cpu", type=int, metavar="CPU",
                        help="pin the gateway's embedded Postgres to this CPU (default: it shares the gateway's)")
    args = parser.parse_args()
    install_uvloop()
    os.sched_setaffinity(0, {CLIENT_CPU})
    utterance = silence(200) + speech_pcm("How does your month end close process work today?")
    if args.profile:
        with fake_provider_process() as fake_url:
            profile_round(remote_env(fake_url), args.profile, utterance, 30)
        return
    if args.local:
        local_rows(utterance, args.local, args.postgres_cpu)
        return
    postgres = (f"its Postgres on CPU {args.postgres_cpu}" if args.postgres_cpu is not None
                else "its embedded Postgres beside it")
    print(f"machine: {os.cpu_count()} cores; server on CPU {SERVER_CPU} ({postgres}), load generator on CPU"
          f" {CLIENT_CPU}")

    with fake_provider_process() as fake_url:
        env = remote_env(fake_url)
        provider_ms = 500 + fake_providers.STT_LATENCY_S * 1000 + fake_providers.TTS_LATENCY_S * 1000
        print("\n== live calls, fake remote providers"
              f" (VAD silence 500 ms + STT 150 ms + TTS 150 ms = {provider_ms:.0f} ms floor)")
        print(f"{'calls':>6} {'v2v p50':>9} {'v2v p95':>9} {'added p95':>10} {'srv CPU':>8} {'core 0':>7}"
              f" {'MB/call':>8} {'client CPU':>10}")
        baseline_p95 = None
        sizes = args.calls or ([10, 50] if args.quick else [10, 50, 100, 200, 300])
        for n in sizes:
            with Gateway(env, postgres_cpu=args.postgres_cpu) as gw:
                # Sign the reps up before measuring: each sign-up hashes a password (argon2, 64 MiB
                # a hash on the default thread pool), which is neither call CPU nor call memory.
                reps = asyncio.run(make_reps(gw.url, n))
                time.sleep(2)
                rss0, cpu0, ccpu0, t0 = gw.rss_mb(), gw.cpu_s(), time.process_time(), time.perf_counter()
                core0 = core_busy_s(SERVER_CPU)
                peak = {"rss": rss0}

                async def sample(peak=peak):
                    while True:
                        peak["rss"] = max(peak["rss"], gw.rss_mb())
                        await asyncio.sleep(0.5)

                async def run(n=n, reps=reps):
                    sampler = asyncio.create_task(sample())
                    try:
                        return await calls_round(gw.url, n, utterance, turns=2, sessions=reps)
                    finally:
                        sampler.cancel()

                res = asyncio.run(run())
                wall = time.perf_counter() - t0
                cpu = (gw.cpu_s() - cpu0) / wall * 100
                core = (core_busy_s(SERVER_CPU) - core0) / wall * 100  # the gateway and its Postgres
                ccpu = (time.process_time() - ccpu0) / wall * 100
                p50, p95 = pct(res["v2v_ms"], 50), pct(res["v2v_ms"], 95)
                baseline_p95 = baseline_p95 or p95
                flag = "  <- p95 +50% over 10 calls" if p95 > baseline_p95 * 1.5 else ""
                if res["failed"]:
                    flag += f"  ({res['failed']} calls failed: {res['reasons']})"
                if res["missing_turns"]:
                    flag += f"  ({res['missing_turns']} turns never answered)"
                if res["errors"]:
                    flag += f"  (error events, refused turns asked again: {res['errors']})"
                print(f"{n:>6} {p50:>8.0f}ms {p95:>8.0f}ms {p95 - provider_ms:>9.0f}ms {cpu:>7.0f}% {core:>6.0f}% "
                      f"{(peak['rss'] - rss0) / n:>7.2f} {ccpu:>9.0f}%{flag}")
                print("        server-side p50/p95: " + breakdown(gw.turn_latencies()))

        if args.calls:
            return
        print("\n== barge-in (fake providers): first rep speech frame -> persona.audio.end {interrupted}")
        with Gateway(env) as gw:
            rows = asyncio.run(barge_in_round(gw.url, utterance, 5))
            reactions = [r for r, _ in rows if r is not None]
            print(f"reaction p50 {pct(reactions, 50):.0f} ms, max {max(reactions):.0f} ms "
                  f"(VAD onset needs 60 ms of speech); persona audio after the stop: {[a for _, a in rows]} bytes")

    local_rows(utterance, [2] if args.quick else [2, 4, 6], None)

    print("\n== /ws/echo round trip, 20 ms frames in real time")
    print(f"{'sockets':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'frames':>8} {'srv CPU':>8} {'client CPU':>10}")
    with Gateway({}) as gw:
        token = asyncio.run(make_reps(gw.url, 1))[0][0]
        for n in ([50, 200] if args.quick else [50, 100, 200, 400]):
            cpu0, ccpu0, t0 = gw.cpu_s(), time.process_time(), time.perf_counter()
            rtts = asyncio.run(echo_round(gw.url, token, n, seconds=5 if args.quick else 10))
            wall = time.perf_counter() - t0
            print(f"{n:>8} {pct(rtts, 50):>6.1f}ms {pct(rtts, 95):>6.1f}ms {pct(rtts, 99):>6.1f}ms {len(rtts):>8} "
                  f"{(gw.cpu_s() - cpu0) / wall * 100:>7.0f}% {(time.process_time() - ccpu0) / wall * 100:>9.0f}%")


if __name__ == "__main__":
    main()
