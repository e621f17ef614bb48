"""An in-process stand-in for an OpenAI-compatible API (OpenAI, OpenRouter), speaking its HTTP protocol."""

from __future__ import annotations

from dataclasses import dataclass, field

from litestar import Litestar, Request, Response, get


@dataclass
class FakeOpenAI:
    """Controls what the fake answers; `requests` records (method, path, auth header) per call."""

    failing: bool = False
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)

    def app(self) -> Litestar:
        fake = self

        @get("/v1/models")
        async def models(request: Request) -> Response:
            fake.requests.append((request.method, request.url.path, request.headers.get("authorization")))
            if fake.failing:
                return Response({"error": {"message": "upstream down", "type": "server_error"}}, status_code=500)
            return Response({"object": "list", "data": [{"id": "gpt-4o", "object": "model", "owned_by": "openai"}]})

        return Litestar([models], logging_config=None)
