"""The coordinator shared by gateway instances through Redis.

Keys (one call = one `sparring:call:{id}:*` family):
    ...:events    a Stream; entry id `{seq}-0`, fields t (type) and f (frame); MAXLEN ~ bounded,
                  expires an hour after the call's last event
    ...:lease     the owner's token `instance|nonce`, with a TTL its heartbeat renews
    ...:presence  the live-call entry shown by GET /api/live, with the same TTL
    sparring:org:{org}:live      sorted set of the org's live sessions, scored by expiry (ms)
    sparring:instance:{id}       pub/sub channel of commands for one instance
    sparring:instance:{id}:wake  a Stream of one entry: added to end the instance's waiting read early
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis

from gateway.fanout.coordinator import CommandHandler, StreamEntry, stream_lifetime_s

__all__ = ["RedisCoordinator"]

log = logging.getLogger(__name__)

# Appends a batch only while the token holds the lease (taking a free lease: Redis may have been
# restarted under a running call). An id at or below the stream's last is a retried entry: skipped.
_PUBLISH = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 5, #ARGV, 3 do
  local ok = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], ARGV[i], 't', ARGV[i + 1], 'f', ARGV[i + 2])
  if type(ok) == 'table' and ok.err and not string.find(ok.err, 'equal or smaller') then
    return redis.error_reply(ok.err)
  end
end
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""
_RENEW = """
local out = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == ARGV[i + 1] or not holder then
    redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


_CALL_PREFIX = "sparring:call:"


def _key(session_id: str, part: str) -> str:
    return f"{_CALL_PREFIX}{session_id}:{part}"


def _wake_key(instance_id: str) -> str:
    return f"sparring:instance:{instance_id}:wake"


def _org_key(org_id: str) -> str:
    return f"sparring:org:{org_id}:live"


def _channel(instance_id: str) -> str:
    return f"sparring:instance:{instance_id}"


def _bytes(value: object) -> bytes:
    """A value from a reply. redis-py types them `bytes | str`; the client is made without
    decode_responses (gateway.resources), so they are bytes."""
    if not isinstance(value, bytes):
        raise TypeError(f"expected bytes from Redis, got {type(value).__name__} (is decode_responses on?)")
    return value


class RedisCoordinator:
    shared = True

    def __init__(self, client: aioredis.Redis, instance_id: str, *, stream_maxlen: int = 1000,
                 stream_ttl_s: int = 3600) -> None:
        self.instance_id = instance_id
        self._redis = client
        self._maxlen, self._stream_ttl = stream_maxlen, stream_ttl_s
        self._woken = "0-0"  # the newest wake seen: one added at any time after it ends the next wait
        self._publish = client.register_script(_PUBLISH)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    async def publish(self, session_id: str, token: str, entries: Sequence[StreamEntry], ttl_ms: int) -> bool:
        return bool(await self._publish(keys=[_key(session_id, "lease"), _key(session_id, "events")],
                                        args=self._publish_args(token, entries, ttl_ms)))

    async def publish_many(self, batches: Sequence[tuple[str, str, Sequence[StreamEntry]]],
                           ttl_ms: int) -> list[bool]:
        if not batches:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id, token, entries in batches:
                await self._publish(keys=[_key(session_id, "lease"), _key(session_id, "events")],
                                    args=self._publish_args(token, entries, ttl_ms), client=pipe)
            replies = await pipe.execute()
        return [bool(reply) for reply in replies]

    def _publish_args(self, token: str, entries: Sequence[StreamEntry], ttl_ms: int) -> list:
        args: list = [token, ttl_ms, self._maxlen, int(stream_lifetime_s(entries, self._stream_ttl))]
        for entry in entries:
            args += [f"{entry.seq}-0", entry.type, entry.frame]
        return args

    async def read(self, session_id: str, after_seq: int, *, block_ms: int) -> list[StreamEntry]:
        return (await self.read_many({session_id: after_seq}, block_ms=block_ms)).get(session_id, [])

    async def read_many(self, positions: Mapping[str, int], *, block_ms: int) -> dict[str, list[StreamEntry]]:
        streams: dict[bytes | str | memoryview, int | bytes | str | memoryview] = {
            _key(s, "events"): f"{after_seq}-0" for s, after_seq in positions.items()}
        if block_ms > 0:
            # After the last wake seen, not "$": a wake sent while this read was on its way (the
            # caller's positions already taken without the new session) still ends the wait.
            streams[_wake_key(self.instance_id)] = self._woken
        reply = await self._redis.xread(streams, count=500, block=block_ms if block_ms > 0 else None)
        if isinstance(reply, dict):
            raise TypeError("expected a RESP2 XREAD reply (a list of streams)")
        found: dict[str, list[StreamEntry]] = {}
        for key, entries in reply or []:
            name = _bytes(key)
            if not name.endswith(b":events"):  # the wake stream
                self._woken = _bytes(entries[-1][0]).decode()
                continue
            found[name[len(_CALL_PREFIX):-len(b":events")].decode()] = [
                StreamEntry(int(_bytes(entry_id).split(b"-", 1)[0]), _bytes(fields[b"t"]).decode(),
                            _bytes(fields[b"f"]))
                for entry_id, fields in entries]
        return found

    async def wake(self) -> None:
        key = _wake_key(self.instance_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"w": b"1"}, maxlen=1, approximate=False)
            pipe.expire(key, 60)
            await pipe.execute()

    async def try_lease(self, session_id: str, token: str, ttl_ms: int) -> bool:
        key = _key(session_id, "lease")
        if await self._redis.set(key, token, px=ttl_ms, nx=True):
            return True
        holder = await self._redis.get(key)
        return holder is not None and _bytes(holder).decode() == token

    async def renew(self, tokens: dict[str, str], ttl_ms: int) -> set[str]:
        if not tokens:
            return set()
        sessions = list(tokens)
        held = await self._renew(keys=[_key(s, "lease") for s in sessions],
                                 args=[ttl_ms, *(tokens[s] for s in sessions)])
        return {s for s, ok in zip(sessions, held, strict=False) if not ok}

    async def release(self, session_id: str, token: str) -> None:
        await self._release(keys=[_key(session_id, "lease")], args=[token])

    async def lease_holder(self, session_id: str) -> str | None:
        holder = await self._redis.get(_key(session_id, "lease"))
        return _bytes(holder).decode() if holder is not None else None

    async def send(self, instance_id: str, command: bytes) -> bool:
        return await self._redis.publish(_channel(instance_id), command) > 0

    async def listen(self, handler: CommandHandler) -> None:
        """Subscribes to this instance's channel; resubscribes after Redis comes back."""
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(_channel(self.instance_id))
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        try:
                            await handler(message["data"])
                        except Exception:  # one bad command must not stop this instance listening
                            log.exception("a command from another instance failed")
            except (aioredis.RedisError, OSError):
                await asyncio.sleep(1.0)
            finally:
                try:
                    await pubsub.aclose()
                except (aioredis.RedisError, OSError):
                    pass

    async def set_present(self, entries: Sequence[tuple[str, str, bytes]], ttl_ms: int) -> None:
        if not entries:
            return
        expires = int(time.time() * 1000) + ttl_ms
        async with self._redis.pipeline(transaction=False) as pipe:
            for org_id, session_id, entry in entries:
                pipe.set(_key(session_id, "presence"), entry, px=ttl_ms)
                pipe.zadd(_org_key(org_id), {session_id: expires})
                pipe.pexpire(_org_key(org_id), ttl_ms * 4)
            await pipe.execute()

    async def set_absent(self, org_id: str, session_id: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(_key(session_id, "presence"))
            pipe.zrem(_org_key(org_id), session_id)
            await pipe.execute()

    async def live(self, org_id: str) -> list[bytes]:
        key = _org_key(org_id)
        await self._redis.zremrangebyscore(key, "-inf", int(time.time() * 1000))
        sessions = [_bytes(s).decode() for s in await self._redis.zrange(key, 0, -1)]
        if not sessions:
            return []
        entries = await self._redis.mget([_key(s, "presence") for s in sessions])
        return [_bytes(e) for e in entries if e is not None]

    async def ping(self) -> None:
        await self._redis.ping()
