"""Echo sockets: ASGI servers side by side, and Litestar's socket path against a plain ASGI route
(#18 target 3).

    .venv/bin/python bench/echo_servers.py [--steps 200 400] [--servers uvicorn granian]

The same app (`bench/echo_app.py`: the gateway as `sparring serve` builds it, plus a bench-only
plain-ASGI echo at `/ws/echo-raw`) runs under each server, pinned to CPU 0; the load client is
../shared/peer/load_client.py (20 ms frames, 50 per second per socket, raw PCM16) on uvloop,
pinned to CPU 1, run from the peer venv (PEER_VENV, default /tmp/peer/venv; see the peer README).
For each server and route it prints the RTT p50/p95, frames lost and the server's CPU, at each
step. `/ws/echo` is the product's route (signed in, size and time limits checked per frame).
Needs granian in the project venv for the granian rows (`pip install granian`; not a dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_calls import CLIENT_CPU, Gateway, make_reps  # noqa: E402

PEER = ROOT.parent / "shared" / "peer"


def server_argv(server: str, port: int) -> list[str]:
    match server.split(":"):
        case ["uvicorn", *ws]:  # as `sparring serve` runs it (gateway/cli.py: uvloop, httptools, websockets-sansio)
            return [str(ROOT / ".venv/bin/uvicorn"), "--factory", "bench.echo_app:create", "--host", "127.0.0.1",
                    "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                    "--ws", ws[0] if ws else "websockets-sansio",
                    "--no-access-log", "--ws-per-message-deflate", "false", "--lifespan", "on"]
        case ["granian"]:
            return [str(ROOT / ".venv/bin/granian"), "--interface", "asgi", "--factory", "--host", "127.0.0.1",
                    "--port", str(port), "--loop", "uvloop", "--workers", "1", "--runtime-threads", "1",
                    "--ws", "bench.echo_app:create"]
        case _:
            raise SystemExit(f"unknown server {server}")


def run_client(url: str, pid: int, steps: list[int], out: Path, venv: Path) -> list[dict]:
    subprocess.run(["taskset", "-c", str(CLIENT_CPU), str(venv / "bin/python"), str(PEER / "load_client.py"),
                    "--url", url, "--protocol", "raw", "--server-pid", str(pid), "--uvloop", "--no-stop",
                    "--steps", ",".join(map(str, steps)), "--json-out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return [line["result"] for line in lines if "result" in line]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--servers", nargs="+", default=["uvicorn", "uvicorn:websockets", "granian"],
                        help="uvicorn[:its --ws implementation] or granian")
    parser.add_argument("--routes", nargs="+", default=["litestar", "raw"])
    args = parser.parse_args()
    venv = Path(os.environ.get("PEER_VENV", "/tmp/peer/venv"))
    if not (venv / "bin/python").exists():
        raise SystemExit(f"no peer venv at {venv}: see ../shared/peer/README.md (Setup), plus `pip install uvloop`")
    print(f"machine: {os.cpu_count()} cores; server on CPU 0, load client on CPU {CLIENT_CPU} (uvloop), 20 ms frames")
    print(f"{'server':>8} {'route':>9} {'sockets':>7} {'p50':>8} {'p95':>8} {'lost':>6} {'server CPU':>10}"
          f" {'CPU/socket':>10}")
    out_dir = Path(tempfile.mkdtemp(prefix="sparring-echo-"))
    for server in args.servers:
        gateway = Gateway({"LOG_LEVEL": "WARNING", "RATE_LIMIT_WS_CONNECT": "100000/minute"})
        gateway.argv = server_argv(server, gateway.port)
        with gateway as gw:
            (token, _), = asyncio.run(make_reps(gw.url, 1))
            # The process serving the sockets: granian serves from a worker process of its own.
            workers = psutil.Process(gw.proc.pid).children(recursive=True)
            pid = max(workers, key=lambda p: p.memory_info().rss).pid if workers else gw.proc.pid
            for route in args.routes:
                path = f"/ws/echo?token={token}" if route == "litestar" else "/ws/echo-raw"
                url = gw.url.replace("http://", "ws://") + path
                rows = run_client(url, pid, args.steps, out_dir / f"{server}-{route}.jsonl", venv)
                for row in rows:
                    cpu = row.get("server_cpu_mean_pct") or 0
                    print(f"{server:>8} {route:>9} {row['N']:>7} {row['rtt_p50_ms']:>6.2f}ms"
                          f" {row['rtt_p95_ms']:>6.2f}ms {row['frames_lost_window']:>6} {cpu:>9.1f}%"
                          f" {cpu / row['N']:>9.3f}%", flush=True)


if __name__ == "__main__":
    main()
