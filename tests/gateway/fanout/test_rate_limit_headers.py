"""A large limit (the webhook's sliding-window counter) in Redis, shared by two instances: every
hit is counted exactly, the refusal comes at the limit, and the headers an instance reports
count down with its own hits while it skips re-reading the window (at most once a second)."""

import uuid

import redis.asyncio as aioredis

from gateway.ratelimit import RateLimiter
from tests.conftest import make_settings
from tests.processes import RedisServer


async def scripts_run(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))


async def test_a_busy_large_limit_counts_every_hit_across_instances_and_its_headers_count_down():
    server = RedisServer().start()
    try:
        settings = make_settings("postgresql://unused", redis_url=server.url, rate_limit_webhook="1100/minute")
        client = aioredis.from_url(server.url)
        key = f"10.0.0.{uuid.uuid4().int % 250}"
        async with RateLimiter.from_settings(settings, client) as a, \
                RateLimiter.from_settings(settings, client) as b:
            first = await a.check("webhook", key)
            assert first.allowed and first.remaining == 1099
            scripts_before = await scripts_run(client)
            mine = [(await a.check("webhook", key)).remaining for _ in range(20)]
            assert mine == list(range(1098, 1078, -1)), "this instance's headers count its own hits"
            assert await scripts_run(client) - scripts_before == 20, "one round trip per hit, not two"
            for _ in range(30):
                assert (await b.check("webhook", key)).allowed
            # The other instance's hits were counted: a limiter with nothing cached counts its own hit as the 52nd.
            async with RateLimiter.from_settings(settings, client) as fresh:
                assert (await fresh.check("webhook", key)).remaining == 1100 - 52
            verdicts = [await a.check("webhook", key) for _ in range(1100)]
            admitted = [v for v in verdicts if v.allowed]
            assert len(admitted) == 1100 - 52, "admission is exact: the window's count, not the cached headers"
            assert not verdicts[-1].allowed and verdicts[-1].remaining == 0
            assert min(v.remaining for v in admitted) >= 0
        await client.aclose()
    finally:
        server.stop()
