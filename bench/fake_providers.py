"""OpenAI-compatible fake providers with a fixed latency, for load benchmarks: transcription,
speech synthesis (a tone) and streaming chat. Runs in the load generator's process."""

from __future__ import annotations

import asyncio
import math
import struct

from litestar import Litestar, Request, post
from litestar.response import Stream

STT_LATENCY_S = 0.150
TTS_LATENCY_S = 0.150
TRANSCRIPT = "How does your month end close process work today?"
_TONE = struct.pack("<4800h", *(int(6000 * math.sin(2 * math.pi * 220 * i / 24000)) for i in range(4800)))


def app() -> Litestar:
    @post("/v1/audio/transcriptions", status_code=200)
    async def transcriptions(request: Request) -> dict:
        await request.body()
        await asyncio.sleep(STT_LATENCY_S)
        return {"text": TRANSCRIPT}

    @post("/v1/audio/speech", status_code=200)
    async def speech(request: Request) -> Stream:
        body = await request.json()
        seconds = max(0.5, len(body["input"]) * 0.06)

        async def chunks():
            await asyncio.sleep(TTS_LATENCY_S)
            for _ in range(int(seconds * 5)):
                yield _TONE  # 200 ms per chunk

        return Stream(chunks(), media_type="audio/pcm")

    return Litestar([transcriptions, speech], logging_config=None)


if __name__ == "__main__":
    import os
    import sys

    import uvicorn

    os.sched_setaffinity(0, {int(sys.argv[2]) if len(sys.argv) > 2 else 1})
    uvicorn.run(app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
