"""GET /api/health: every dependency with its status and latency; 503 when a critical one is down."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec
from litestar import Response, get
from litestar.datastructures import State

__all__ = ["Check", "Health", "Process", "health"]

PROBE_TIMEOUT_S = 5.0


class Check(msgspec.Struct, omit_defaults=True):
    status: Literal["up", "down"]
    critical: bool
    latency_ms: float
    error: str | None = None


Overall = Literal["healthy", "degraded", "unhealthy"]


class Process(msgspec.Struct):
    """This process's load, for operators and the soak benchmark (bench/soak.py)."""

    instance: str  # INSTANCE_ID, or the generated one (each worker of `sparring serve --workers` is one)
    live_calls: int
    asyncio_tasks: int
    events_not_yet_durable: int
    # Objects start-up left that collections no longer walk (gateway/heap.py): 0 unless served by
    # `sparring serve`.
    gc_frozen_objects: int = 0


class Health(msgspec.Struct):
    status: Overall
    checks: dict[str, Check]
    process: Process
    # Circuit breakers of the providers behind one (`chat.openrouter`, `embeddings.openai`):
    # closed, open (skipped, the fallback answers) or half_open (the next call is a trial).
    breakers: dict[str, str] = {}


Probe = Callable[[], Awaitable[object]]


async def _run(probe: Probe, *, critical: bool, timeout_s: float) -> Check:
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            await probe()
    except Exception as exc:  # any failure is the dependency's status, never the endpoint's
        error = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        return Check("down", critical, round((time.monotonic() - started) * 1000, 1), error)
    return Check("up", critical, round((time.monotonic() - started) * 1000, 1))


def _probes(state: State) -> dict[str, tuple[Probe, bool]]:
    settings = state.settings
    probes: dict[str, tuple[Probe, bool]] = {}

    async def postgres() -> None:
        async with state.pool.acquire(timeout=PROBE_TIMEOUT_S) as conn:
            await conn.fetchval("SELECT 1")

    probes["postgres"] = (postgres, True)
    if state.redis is not None:
        # Fan-out and rate limits across instances live there: without it calls cannot be watched.
        probes["redis"] = (state.redis.ping, True)
    for name, client in state.llm_clients.items():
        probes[name] = (client.models.list, name == settings.llm_choice)
    if state.elevenlabs is not None:
        async def elevenlabs() -> None:
            (await state.elevenlabs.get("/v1/models")).raise_for_status()

        probes["elevenlabs"] = (elevenlabs, False)
    return probes


def _breakers(state: State) -> dict[str, str]:
    out = {f"chat.{name}": b.state for name, b in state.coach_chat.breakers.items()}
    embedder = state.knowledge.embedder
    out |= {f"embeddings.{name}": b.state for name, b in getattr(embedder, "breakers", {}).items()}
    return out


@get("/api/health", tags=["operations"], summary="Dependency health")
async def health(state: State) -> Response[Health]:
    probes = _probes(state)
    timeout_s = min(PROBE_TIMEOUT_S, state.settings.provider_timeout_s)
    results = await asyncio.gather(*(_run(p, critical=c, timeout_s=timeout_s) for p, c in probes.values()))
    checks = dict(zip(probes, results, strict=True))
    overall: Overall
    if any(c.status == "down" and c.critical for c in checks.values()):
        overall, status_code = "unhealthy", 503
    elif any(c.status == "down" for c in checks.values()):
        overall, status_code = "degraded", 200
    else:
        overall, status_code = "healthy", 200
    process = Process(instance=state.instance_id, live_calls=len(state.calls), asyncio_tasks=len(asyncio.all_tasks()),
                      events_not_yet_durable=state.writer.pending, gc_frozen_objects=gc.get_freeze_count())
    return Response(Health(overall, checks, process, _breakers(state)), status_code=status_code,
                    headers={"Cache-Control": "no-store"})
