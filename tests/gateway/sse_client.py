"""Reading a Server-Sent Events stream from the running app, as a page's EventSource would."""

import asyncio
import json

from tests.gateway.accounts_helpers import bearer


async def sse(client, auth, path: str, *, timeout: float = 30.0) -> list[tuple[str, dict]]:
    """Reads the stream to its end: (event, data) pairs."""
    events: list[tuple[str, dict]] = []

    async def read():
        async with client.stream("GET", path, headers=bearer(auth)) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            kind, data = None, []
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data.append(line.split(":", 1)[1].strip())
                elif line == "" and kind:
                    events.append((kind, json.loads("\n".join(data))))
                    kind, data = None, []
    await asyncio.wait_for(read(), timeout)
    return events
