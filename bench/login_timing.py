"""Login refusals must not tell a wrong password from an unknown email by their timing.

Starts the app on the embedded Postgres (or DATABASE_URL), signs one user up, then times N logins
of each kind over real HTTP and prints the medians and p90s. Run: .venv/bin/python bench/login_timing.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.app import create_app, serve_app  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from tests.servers import run_asgi  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "40"))


async def timed(client: httpx.AsyncClient, body: dict) -> float:
    started = time.perf_counter()
    response = await client.post("/api/auth/login", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 401, response.text
    return elapsed


async def main(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        await client.post("/api/auth/signup", json={"email": "bench@example.com", "password": "correct horse battery",
                                                     "name": "Bench", "org_name": "Bench"})
        wrong, unknown = [], []
        for i in range(ROUNDS):  # interleaved so drift hits both alike
            wrong.append(await timed(client, {"email": "bench@example.com", "password": f"wrong-{i}-password"}))
            unknown.append(await timed(client, {"email": f"nobody-{i}@example.com", "password": "whatever-password"}))
    for name, samples in (("wrong password", wrong), ("unknown email", unknown)):
        p90 = sorted(samples)[int(len(samples) * 0.9)]
        print(f"{name:15s} n={len(samples)} median={statistics.median(samples):6.1f} ms  p90={p90:6.1f} ms")
    print(f"median difference: {abs(statistics.median(wrong) - statistics.median(unknown)):.1f} ms")


if __name__ == "__main__":
    env = {"SPARRING_DATA_DIR": tempfile.mkdtemp(prefix="sparring-bench-"), "LOG_LEVEL": "WARNING",
           "JWT_SECRET": "bench-secret-" + "b" * 32, **{k: v for k, v in os.environ.items() if k == "DATABASE_URL"}}
    with run_asgi(serve_app(create_app(load_settings(env)))) as url:
        asyncio.run(main(url))
