"""`sparring serve --workers N`: N processes on one port, each its own instance on the shared Redis
bus, so calls, watchers and rate limits work across them as across instances; more than one worker
without Redis is refused at start-up with a clear error."""

import asyncio
import os
import subprocess
import sys

import httpx
import pytest

from tests.conftest import REPO
from tests.gateway.accounts_helpers import bearer, invite, signup, unique_email
from tests.gateway.calls.test_watch import numbered, watcher
from tests.gateway.live_client import LiveClient
from tests.processes import gateway_process

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def workers(module_database_url):
    with gateway_process(module_database_url, "--workers", "2", redis_url=REDIS_URL,
                         rate_limit_login="5/minute") as gateway:
        yield gateway


async def instances_serving(url: str, *, requests: int = 60) -> set[str]:
    """The instances that answer fresh connections (each request opens its own); each says its
    start-up heap is out of the collector's way (gateway/heap.py)."""
    seen = set()
    for _ in range(requests):
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            process = (await http.get("/api/health")).json()["process"]
            assert process["gc_frozen_objects"] > 10_000, process
            seen.add(process["instance"])
        if len(seen) == 2:
            break
    return seen


def test_more_than_one_worker_without_redis_is_refused_at_start_up(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SPARRING_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--workers", "2"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "REDIS_URL" in done.stderr and "2 workers" in done.stderr, done.stderr
    assert not (tmp_path / "data").exists(), "refused before starting anything"


def test_one_serving_process_keeps_its_start_up_heap_out_of_collections(module_database_url):
    with gateway_process(module_database_url) as gateway:
        process = httpx.get(f"{gateway.url}/api/health", timeout=10).json()["process"]
    assert process["gc_frozen_objects"] > 10_000, process


async def test_two_workers_answer_on_one_port_as_two_instances(workers):
    seen = await instances_serving(workers.url)
    assert len(seen) == 2, f"only {seen} answered 60 fresh connections"


async def test_calls_watched_across_workers_see_every_event_and_whispers(workers):
    """Four calls, each watched by its coach: the sockets land on either worker (the kernel picks),
    so some calls are watched from the other worker; every watcher gets the rep's events, in order."""
    async with httpx.AsyncClient(base_url=workers.url, timeout=30) as client:
        admin = await signup(client)
        coach = await signup(client, invite_code=await invite(client, admin, "coach"), email=unique_email("coach"),
                             name="Coach Kim")
        reps = [await signup(client, invite_code=await invite(client, admin, "trainee")) for _ in range(4)]
        sessions = [(await client.post("/api/sessions", json={"persona_id": "skeptical-cfo"},
                                       headers=bearer(rep))).json()["id"] for rep in reps]

    async def one(rep, session_id):
        call = await LiveClient(workers.url, session_id, rep["access_token"]).open()
        await call.greeting()
        watch = await watcher(workers.url, session_id, coach["access_token"]).open(start=False)
        answer = await call.talk("How does your month end close process work today?")
        await watch.wait_for(lambda e: e.get("seq") == answer["seq"])
        await watch.send({"type": "whisper", "text": "Ask who else feels that pain."})
        whisper = await call.wait_for(lambda e: e["type"] == "whisper")
        assert whisper["from"]["id"] == coach["user"]["id"]
        await watch.wait_for(lambda e: e.get("seq") == whisper["seq"])
        assert numbered(watch.events) == numbered(call.events)[: whisper["seq"]]
        await watch.close()
        await call.close()

    await asyncio.gather(*(one(rep, sid) for rep, sid in zip(reps, sessions, strict=True)))


async def test_the_login_limit_is_shared_by_the_workers(workers):
    email = unique_email("limited")
    statuses = []
    for _ in range(8):
        async with httpx.AsyncClient(base_url=workers.url, timeout=10) as http:  # a fresh connection each
            statuses.append((await http.post("/api/auth/login",
                                             json={"email": email, "password": "wrong-password"})).status_code)
    assert statuses.count(401) == 5 and statuses.count(429) == 3, statuses
