"""`make run` with no environment at all: embedded Postgres, no Redis, no keys, and it serves."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_make_run_with_no_environment_serves_health(tmp_path):
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path)),
           "PORT": str(port), "SPARRING_DATA_DIR": str(tmp_path / "data")}
    log = (tmp_path / "run.log").open("w+")
    proc = subprocess.Popen(["make", "-s", "run"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        response = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.25)
        log.seek(0)
        output = log.read()
        assert response is not None, f"make run never served; it printed:\n{output[-3000:]}"
        assert response.status_code == 200
        assert response.json()["status"] == "healthy"
        assert set(response.json()["checks"]) == {"postgres"}
        assert f"http://127.0.0.1:{port}" in output
        assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
