"""Bare echo servers, no ASGI and no app: the floors under `bench/echo_servers.py`'s rows (#18 target 3).

    python bench/echo_floor.py websockets|picows PORT

Binary message in, the same bytes back, on uvloop as `sparring serve` runs. `websockets` is the
library uvicorn's websockets-sansio protocol is built on (pure Python framing, C masking);
`picows` frames in Cython. Run from the peer venv (../shared/peer; plus `pip install uvloop
picows`): neither is a dependency of Sparring.
"""

from __future__ import annotations

import asyncio
import sys

import uvloop


async def websockets_echo(port: int) -> None:
    from websockets.asyncio.server import serve

    async def echo(ws) -> None:  # type: ignore[no-untyped-def]
        async for message in ws:
            if isinstance(message, bytes):
                await ws.send(message)

    async with serve(echo, "127.0.0.1", port, compression=None, ping_interval=None, max_queue=None):
        await asyncio.Future()


async def picows_echo(port: int) -> None:
    from picows import WSListener, WSMsgType, ws_create_server

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport, frame) -> None:  # type: ignore[no-untyped-def]
            if frame.msg_type == WSMsgType.BINARY:
                transport.send(WSMsgType.BINARY, frame.get_payload_as_memoryview())
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()

    server = await ws_create_server(lambda _request: Echo(), "127.0.0.1", port)
    await server.serve_forever()


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    uvloop.run({"websockets": websockets_echo, "picows": picows_echo}[kind](port))
