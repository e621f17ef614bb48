"""Real gateway processes (`python -m gateway.cli serve`) and private Redis servers, for tests that
need several instances, or a service to stop and start again."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import TEST_JWT_SECRET

__all__ = ["Gateway", "RedisServer", "free_port", "gateway_process"]

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gateway:
    def __init__(self, url: str, proc: subprocess.Popen, log_path: Path) -> None:
        self.url, self.proc, self.log_path = url, proc, log_path

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as a crashed instance."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def gateway_process(database_url: str, *args: str, **env: str) -> Iterator[Gateway]:
    """Starts `sparring serve [args]` on a free port with the test JWT secret; stops it (SIGTERM) after."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="sparring-gw-"))
    full_env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(workdir)), "DATABASE_URL": database_url,
        "JWT_SECRET": TEST_JWT_SECRET, "LOG_LEVEL": "WARNING", "HOST": "127.0.0.1", "PORT": str(port),
        "SPARRING_DATA_DIR": str(workdir / "data"), "RATE_LIMIT_SIGNUP": "100000/minute",
        "WORKERS": "1",  # one process per instance (with REDIS_URL the default is one per core)
        **{k.upper(): v for k, v in env.items()},
    }
    log_path = workdir / "gateway.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", *args], cwd=REPO, env=full_env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    gateway = Gateway(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start:\n{gateway.log()[-3000:]}")
            try:
                if httpx.get(f"{gateway.url}/api/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield gateway
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)


class RedisServer:
    """A private `redis-server` on its own port, that a test may stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
