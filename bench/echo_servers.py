"""Echo sockets: ASGI servers side by side, and Litestar's socket path against a plain ASGI route
(#18 target 3).

    .venv/bin/python bench/echo_servers.py [--steps 200 400] [--servers uvicorn granian]
        [--floors websockets picows]

The same app (`bench/echo_app.py`: the gateway as `sparring serve` builds it, plus a bench-only
plain-ASGI echo at `/ws/echo-raw`) runs under each server, pinned to CPU 0; the load client is
../shared/peer/load_client.py (20 ms frames, 50 per second per socket, raw PCM16) on uvloop,
pinned to CPU 1, run from the peer venv (PEER_VENV, default /tmp/peer/venv; see the peer README).
For each server and route it prints the RTT p50/p95, frames lost and the server's CPU, at each
step. `/ws/echo` is the product's route (signed in, size and time limits checked per frame).
`uvicorn:picows` is uvicorn with `bench/picows_asgi.py` as its WebSocket protocol (picows frames in
Cython). Needs granian and picows in the project venv for those rows (`pip install granian
picows`; neither is a dependency).
The floors (`bench/echo_floor.py`: a bare echo with no ASGI and no app, on uvloop) run first, from
the peer venv, so the rows below them read as a multiple of what the WebSocket library alone costs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_calls import CLIENT_CPU, SERVER_CPU, Gateway, free_port, make_reps  # noqa: E402

PEER = ROOT.parent / "shared" / "peer"
# uvicorn takes an import string for --ws: the experiment's protocol (bench/picows_asgi.py).
WS_ALIASES = {"picows": "bench.picows_asgi:PicowsWebSocketProtocol"}


def server_argv(server: str, port: int) -> list[str]:
    match server.split(":", 1):
        case ["uvicorn", *ws]:  # as `sparring serve` runs it (gateway/cli.py: uvloop, httptools, websockets-sansio)
            ws = [WS_ALIASES.get(ws[0], ws[0])] if ws else []
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


def print_row(server: str, route: str, row: dict) -> None:
    cpu = row.get("server_cpu_mean_pct") or 0
    print(f"{server:>10} {route:>9} {row['N']:>7} {row['rtt_p50_ms']:>6.2f}ms"
          f" {row['rtt_p95_ms']:>6.2f}ms {row['frames_lost_window']:>6} {cpu:>9.1f}%"
          f" {cpu / row['N']:>9.3f}%", flush=True)


def run_floor(kind: str, steps: list[int], out: Path, venv: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", str(SERVER_CPU), str(venv / "bin/python"),
                             str(ROOT / "bench/echo_floor.py"), kind, str(port)])
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the {kind} floor did not start (pip install uvloop {kind} in {venv})") from None
                time.sleep(0.1)
        for row in run_client(f"ws://127.0.0.1:{port}/", proc.pid, steps, out, venv):
            print_row(f"floor:{kind}", "bare", row)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--servers", nargs="+", default=["uvicorn", "uvicorn:picows", "uvicorn:websockets", "granian"],
                        help="uvicorn[:its --ws implementation, or picows] or granian")
    parser.add_argument("--routes", nargs="+", default=["litestar", "raw"])
    parser.add_argument("--floors", nargs="*", default=["websockets", "picows"],
                        help="bare echo servers to measure first (bench/echo_floor.py); none to skip")
    args = parser.parse_args()
    venv = Path(os.environ.get("PEER_VENV", "/tmp/peer/venv"))
    for server, module in (("uvicorn:picows", "picows"), ("granian", "granian")):
        if server in args.servers and importlib.util.find_spec(module) is None:
            raise SystemExit(f"{server} needs {module} in this venv: .venv/bin/pip install {module}")
    if not (venv / "bin/python").exists():
        raise SystemExit(f"no peer venv at {venv}: see ../shared/peer/README.md (Setup), plus `pip install uvloop`")
    print(f"machine: {os.cpu_count()} cores; server on CPU 0, load client on CPU {CLIENT_CPU} (uvloop), 20 ms frames")
    print(f"{'server':>10} {'route':>9} {'sockets':>7} {'p50':>8} {'p95':>8} {'lost':>6} {'server CPU':>10}"
          f" {'CPU/socket':>10}")
    out_dir = Path(tempfile.mkdtemp(prefix="sparring-echo-"))
    for kind in args.floors:
        run_floor(kind, args.steps, out_dir / f"floor-{kind}.jsonl", venv)
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
                    print_row(server, route, row)


if __name__ == "__main__":
    main()
