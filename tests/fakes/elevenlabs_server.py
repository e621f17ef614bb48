"""An in-process stand-in for ElevenLabs' streaming text-to-speech endpoint."""

from __future__ import annotations

import math
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from litestar import Litestar, Request, Response, post
from litestar.params import FromPath
from litestar.response import Stream


@dataclass
class FakeElevenLabs:
    requests: list[dict] = field(default_factory=list)

    def app(self) -> Litestar:
        fake = self

        @post("/v1/text-to-speech/{voice_id:str}/stream", status_code=200)
        async def stream(request: Request, voice_id: FromPath[str]) -> Response | Stream:
            body = await request.json()
            fake.requests.append({"voice_id": voice_id, "key": request.headers.get("xi-api-key"),
                                  "output_format": request.query_params.get("output_format"), **body})
            if request.headers.get("xi-api-key") != "el-test":
                return Response({"detail": {"status": "invalid_api_key"}}, status_code=401)
            rate = int(request.query_params.get("output_format", "pcm_24000").split("_")[1])
            samples = [int(7000 * math.sin(2 * math.pi * 180 * i / rate)) for i in range(int(rate * 1.5))]
            pcm = struct.pack(f"<{len(samples)}h", *samples)

            async def chunks() -> AsyncIterator[bytes]:
                for i in range(0, len(pcm), 4096):
                    yield pcm[i:i + 4096]

            return Stream(chunks(), media_type="application/octet-stream")

        return Litestar([stream], logging_config=None)
