"""Retries and a timeout around any recorded-call transcriber (tenacity): the original service's
policy for Whisper, 3 attempts with exponential backoff and 3 minutes each, on rate limits, server
errors, timeouts and lost connections only."""

from __future__ import annotations

import asyncio

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from coaching.providers.stt.base import RecordingSTT, TimedSegment, TransientSTTError

__all__ = ["RetryingRecordingSTT", "TranscriptionFailed"]


class TranscriptionFailed(TransientSTTError):
    """Every attempt failed; the message names the last failure and how many attempts were made."""


class RetryingRecordingSTT:
    """Args:
        inner: the transcriber to call.
        attempts: tries per chunk, the first included.
        timeout_s: the most one try may take.
        wait_base_s: the wait after the first failure, doubling after each (capped at `wait_max_s`).
    """

    def __init__(self, inner: RecordingSTT, *, attempts: int = 3, timeout_s: float = 180.0, wait_base_s: float = 1.0,
                 wait_max_s: float = 30.0) -> None:
        problems = [name for name, ok in (("attempts", attempts >= 1), ("timeout_s", timeout_s > 0),
                                          ("wait_base_s", wait_base_s >= 0), ("wait_max_s", wait_max_s >= wait_base_s))
                    if not ok]
        if problems:
            raise ValueError(f"invalid: {', '.join(problems)}")
        self._inner, self.name = inner, inner.name
        self._attempts, self._timeout_s = attempts, timeout_s
        self._wait = wait_exponential(multiplier=wait_base_s, max=wait_max_s)

    async def transcribe_timed(self, pcm16k: bytes, *, offset_ms: int, words: bool) -> list[TimedSegment]:
        """Raises:
            TranscriptionFailed: every attempt failed with a transient error or timed out.
            ProviderUnavailable: a failure retrying cannot mend (e.g. a bad key), at once.
        """
        retrying = AsyncRetrying(stop=stop_after_attempt(self._attempts), wait=self._wait, reraise=True,
                                 retry=retry_if_exception_type((TransientSTTError, TimeoutError)))
        try:
            async for attempt in retrying:
                with attempt:
                    async with asyncio.timeout(self._timeout_s):
                        return await self._inner.transcribe_timed(pcm16k, offset_ms=offset_ms, words=words)
        except TimeoutError:
            raise TranscriptionFailed(f"speech-to-text timed out ({self._timeout_s:g} s) {self._attempts} times") \
                from None
        except TransientSTTError as exc:
            raise TranscriptionFailed(f"{exc}, {self._attempts} attempts") from exc
        raise AssertionError("unreachable: tenacity returns or raises")
