"""Distributed rate limits with the `limits` library, in Redis when REDIS_URL is set (atomic Lua,
so N per minute holds across every instance), in memory otherwise. Limits up to 1,000 per window
use the exact moving window; larger ones (the webhook's 6,000/minute) the sliding-window counter,
whose cost does not grow with the limit (the moving window's check walks every entry in it); a
busy key of those reads its window stats for the headers at most once a second (`_STATS_FRESH_S`).

Handlers call `RateLimiter.check(name, key)` with a limit named in settings (`RATE_LIMIT_<NAME>`).
The verdict's headers go on every response of the route, whatever its status
(`RateLimitHeaders` middleware adds them); a refusal raises `RateLimited`, 429 with Retry-After
(WebSockets: 4429). If the store is unreachable, requests pass (logged, reported to Sentry) unless
RATE_LIMIT_FAIL_CLOSED=true, which refuses them with `RateLimitUnavailable`, 503 (WebSockets:
1013). gateway/errors.py maps both.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import msgspec
import redis.asyncio as aioredis
import sentry_sdk
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.aio.strategies import RateLimiter as Strategy
from limits.errors import StorageError
from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import RateLimited, RateLimitUnavailable
from gateway.settings import RATE_LIMITS, Settings

__all__ = [
    "RateLimitHeaders", "RateLimitUnavailable", "RateLimited", "RateLimiter", "Verdict", "client_address",
    "limit_request",
]

log = logging.getLogger(__name__)
_SCOPE_KEY = "sparring.rate_limit_headers"
_EXACT_UP_TO = 1000
# A key's window stats are read again after this long, or once its last-read remaining, less this
# instance's hits since, nears the limit; in between the headers are computed from them.
_STATS_FRESH_S = 1.0
_RECENT_KEYS = 10_000


class Verdict(msgspec.Struct, frozen=True):
    allowed: bool
    name: str
    limit: int
    remaining: int
    reset: int  # epoch seconds when a request is admitted again / the window frees up
    window_s: int
    unavailable: bool = False  # the store could not be reached (fail-open or fail-closed)

    @property
    def retry_after(self) -> int:
        return max(1, self.reset - int(time.time())) if not self.unavailable else 5

    def headers(self) -> dict[str, str]:
        if self.unavailable:
            return {}
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": f'"{self.name}";q={self.limit};w={self.window_s}',
            "RateLimit": f'"{self.name}";r={self.remaining};t={max(0, self.reset - int(time.time()))}',
        }

    def refusal(self, what: str) -> RateLimited:
        """The error for a refused verdict; `what` is what there were too many of ("requests")."""
        if self.unavailable:
            return RateLimitUnavailable("rate limiting is unavailable; try again in a moment",
                                        retry_after=self.retry_after)
        return RateLimited(f"too many {what}; try again in {self.retry_after} s", retry_after=self.retry_after)


class _Window(msgspec.Struct):
    remaining: int
    reset: int
    read_at: float  # time.monotonic()
    since: int = 0  # this instance's hits counted since


class RateLimiter:
    """Args:
        storage: a `limits` async storage.
        limits: name -> limit (login, chat, transcribe, upload, ws_connect, watch, webhook).
        fail_closed: refuse when the storage is unreachable.
    """

    def __init__(self, storage: Storage, limits: dict[str, RateLimitItem], *, fail_closed: bool) -> None:
        self._storage = storage
        moving, counter = MovingWindowRateLimiter(storage), SlidingWindowCounterRateLimiter(storage)
        self._strategies: dict[str, Strategy] = {
            name: moving if item.amount <= _EXACT_UP_TO else counter for name, item in limits.items()}
        self.limits, self.fail_closed = limits, fail_closed
        self._failing = False
        self._recent: dict[tuple[str, str], _Window] = {}  # the last window stats read per key

    @classmethod
    @asynccontextmanager
    async def from_settings(cls, settings: Settings, redis_client: aioredis.Redis | None) -> AsyncIterator[RateLimiter]:
        limits = {name: parse(getattr(settings, f"rate_limit_{name}")) for name in RATE_LIMITS}
        if redis_client is None or settings.redis_url is None:
            storage: Storage = MemoryStorage()
        else:
            url = settings.redis_url
            url = "async+redis+" + url if url.startswith("unix://") else "async+" + url
            storage = RedisStorage(url, implementation="redispy", wrap_exceptions=True, key_prefix="sparring:limits",
                                   socket_timeout=2, socket_connect_timeout=2)
        try:
            yield cls(storage, limits, fail_closed=settings.rate_limit_fail_closed)
        finally:
            bridge = getattr(storage, "bridge", None)
            client = getattr(bridge, "storage", None)
            if client is not None and hasattr(client, "aclose"):
                await client.aclose()

    async def would_allow(self, name: str, key: str) -> bool:
        """Whether one more hit of `key` would pass the limit `name`, without counting one."""
        item = self.limits[name]
        try:
            return await self._strategies[name].test(item, name, key)
        except (StorageError, OSError, aioredis.RedisError):
            return not self.fail_closed

    async def check(self, name: str, key: str) -> Verdict:
        """Counts one request of `key` against the limit `name`."""
        item = self.limits[name]
        window_s = item.get_expiry()
        strategy = self._strategies[name]
        try:
            allowed = await strategy.hit(item, name, key)
            known = self._recent.get((name, key)) if allowed and item.amount > _EXACT_UP_TO else None
            if known is not None and time.monotonic() - known.read_at < _STATS_FRESH_S \
                    and known.remaining - known.since > item.amount // 10:
                # Counted exactly above. A large limit's headers (its window counter is an
                # estimate already) are the last read less this instance's hits since: a busy
                # key skips the second round trip.
                known.since += 1
                return Verdict(True, name, item.amount, known.remaining - known.since, known.reset, window_s)
            stats = await strategy.get_window_stats(item, name, key)
        except (StorageError, OSError, aioredis.RedisError) as exc:
            if not self._failing:
                log.warning("rate-limit store unreachable", extra={
                    "error": type(exc).__name__, "mode": "closed" if self.fail_closed else "open"})
                sentry_sdk.capture_exception(exc)
            self._failing = True
            return Verdict(not self.fail_closed, name, item.amount, 0, 0, window_s, unavailable=True)
        if self._failing:
            log.info("rate-limit store reachable again")
            self._failing = False
        reset = math.ceil(stats.reset_time)
        if item.amount > _EXACT_UP_TO:
            self._recent[name, key] = _Window(stats.remaining, reset, time.monotonic())
            while len(self._recent) > _RECENT_KEYS:
                self._recent.pop(next(iter(self._recent)))
        return Verdict(allowed, name, item.amount, stats.remaining, reset, window_s)


def client_address(connection: Request[Any, Any, Any]) -> str:
    """The client's address: the peer, unless the peer is a proxy in TRUSTED_PROXIES, in which case
    the right-most X-Forwarded-For entry that is not itself a trusted proxy. The one place that decides."""
    peer = connection.client.host if connection.client else "unknown"
    settings: Settings = connection.app.state.settings
    trusted = settings.proxy_networks
    if not trusted:
        return peer

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    if not is_trusted(peer):
        return peer
    hops = [h.strip() for h in ",".join(connection.headers.getall("x-forwarded-for", [])).split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return hops[0] if hops else peer


async def limit_request(request: Request[Any, Any, Any], name: str, key: str) -> Verdict:
    """Checks a limit for an HTTP request: its headers go on the response whatever the outcome.

    Raises:
        RateLimited: over the limit (429 with Retry-After).
        RateLimitUnavailable: limits fail closed and the store is down (503 with Retry-After).
    """
    limiter: RateLimiter = request.app.state.limiter
    verdict = await limiter.check(name, key)
    # Scope is a TypedDict of the ASGI keys; this private key is read back by RateLimitHeaders.
    request.scope[_SCOPE_KEY] = verdict.headers()  # type: ignore[literal-required]
    if verdict.allowed:
        return verdict
    raise verdict.refusal("requests")


class RateLimitHeaders:
    """Puts a limited route's rate-limit headers on its response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            headers = cast("dict[str, str] | None", scope.get(_SCOPE_KEY))
            if message["type"] == "http.response.start" and headers:
                message["headers"] = [*message.get("headers", ()),
                                      *((k.lower().encode(), v.encode()) for k, v in headers.items())]
            await send(message)

        await self.app(scope, receive, send_with_headers)
