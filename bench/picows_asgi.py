"""An experiment for #18 target 3: uvicorn's WebSocket protocol with picows doing the framing.

    uvicorn ... --ws bench.picows_asgi:PicowsWebSocketProtocol

uvicorn parses the upgrade request (httptools) and hands the connection to this protocol, which
runs the ASGI app as uvicorn's own protocols do: the app sees `websocket.connect`, and only when it
sends `websocket.accept` is the connection given to picows (Cython framing and masking), which
answers the handshake with the 101 and from then on parses and writes every frame in C. A
`websocket.close` before the accept is a 403, as uvicorn answers it. What uvicorn's protocols also
do and this one does not (so it is a measurement, not the product's transport): the
`websocket.http.response` extension and permessage-deflate.

picows is not a dependency of Sparring: `pip install picows` in the venv that runs it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import unquote

from picows import WSAutoPingStrategy, WSListener, WSMsgType, WSUpgradeResponse, WSUpgradeResponseWithListener
from picows.picows import WSProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

CLOSE_TIMEOUT_S = 10.0
# Messages queued for the app before reading from the socket pauses (uvicorn pauses after one).
PAUSE_AT = 16
FORBIDDEN = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
SERVER_ERROR = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
LOGGER = logging.getLogger("picows.server")
LOGGER.setLevel(logging.WARNING)  # picows logs every connection at INFO


class Disconnected(Exception):
    """The client went away while the app was sending."""


class _Frames(WSListener):  # type: ignore[misc]
    """picows's callbacks for one accepted connection: frames become ASGI receive events."""

    def __init__(self, owner: PicowsWebSocketProtocol) -> None:
        self.owner = owner
        self.parts: list[bytes] = []
        self.text = False

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        owner = self.owner
        match frame.msg_type:
            case WSMsgType.BINARY | WSMsgType.TEXT:
                self.text = frame.msg_type == WSMsgType.TEXT
                if frame.fin:
                    owner.message(frame.get_payload_as_bytes(), self.text)
                else:
                    self.parts = [frame.get_payload_as_bytes()]
            case WSMsgType.CONTINUATION:
                self.parts.append(frame.get_payload_as_bytes())
                if sum(map(len, self.parts)) > owner.max_size:
                    owner.fail(1009, "message too big")
                elif frame.fin:
                    data, self.parts = b"".join(self.parts), []
                    owner.message(data, self.text)
            case WSMsgType.CLOSE:
                owner.closed_by_peer(int(frame.get_close_code()), frame.get_close_message() or b"")
            case WSMsgType.PING | WSMsgType.PONG:
                pass  # picows answers pings and times the keepalive's pongs itself
            case other:
                raise ValueError(f"unexpected WebSocket frame type {other}")

    def on_ws_disconnected(self, transport: Any) -> None:
        self.owner.lost()

    def pause_writing(self) -> None:
        self.owner.writable.clear()

    def resume_writing(self) -> None:
        self.owner.writable.set()


class PicowsWebSocketProtocol(asyncio.Protocol):
    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        if not config.loaded:
            config.load()
        self.config, self.app, self.app_state = config, config.loaded_app, app_state
        self.loop = _loop or asyncio.get_event_loop()
        self.connections, self.tasks = server_state.connections, server_state.tasks
        self.default_headers = server_state.default_headers
        self.max_size = config.ws_max_size
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.writable = asyncio.Event()
        self.writable.set()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.ws: Any = None  # picows's WSTransport, once accepted
        self.request = b""
        self.scope_started = False
        self.accepted = self.close_sent = self.disconnected = self.read_paused = False
        self.close_timer: asyncio.TimerHandle | None = None

    # The connection before the accept: uvicorn's transport, this protocol.
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)

    def data_received(self, data: bytes) -> None:
        # uvicorn hands over the whole upgrade request in one call; the client sends no frame
        # before it has the 101, so nothing else arrives before the accept.
        self.request += data
        if self.scope_started or b"\r\n\r\n" not in self.request:
            return
        self.scope_started = True
        head = self.request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        _method, target, _version = head[0].split(b" ", 2)
        headers = [(name.strip().lower(), value.strip())
                   for name, _, value in (line.partition(b":") for line in head[1:])]
        raw_path, _, query = target.partition(b"?")
        root = self.config.root_path
        server = self.transport.get_extra_info("sockname")
        client = self.transport.get_extra_info("peername")
        subprotocols = [token.strip() for name, value in headers if name == b"sec-websocket-protocol"
                        for token in value.decode("latin-1").split(",")]
        self.scope = {
            "type": "websocket", "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1", "scheme": "wss" if self.transport.get_extra_info("sslcontext") else "ws",
            "server": tuple(server[:2]) if server else None,
            "client": tuple(client[:2]) if client else None,
            "root_path": root, "path": root + unquote(raw_path.decode("ascii")),
            "raw_path": root.encode("ascii") + raw_path, "query_string": query, "headers": headers,
            "subprotocols": subprotocols, "state": self.app_state.copy(), "extensions": {},
        }
        self.queue.put_nowait({"type": "websocket.connect"})
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost()  # before the accept only: picows's protocol owns the transport after it

    def eof_received(self) -> None:
        pass

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def shutdown(self) -> None:
        if self.accepted and not self.close_sent:
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1012})
            self.ws.send_close(1012)
            self.close_sent = True
            self.ws.disconnect()
        elif not self.accepted:
            self.transport.write(SERVER_ERROR)
            self.transport.close()

    # picows's callbacks, through _Frames.
    def message(self, data: bytes, text: bool) -> None:
        if self.close_sent:
            return
        if text:
            try:
                self.queue.put_nowait({"type": "websocket.receive", "text": data.decode()})
            except UnicodeDecodeError:
                self.fail(1007, "invalid UTF-8")
                return
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": data})
        if not self.read_paused and self.queue.qsize() >= PAUSE_AT:
            self.read_paused = True
            self.transport.pause_reading()

    def closed_by_peer(self, code: int, reason: bytes) -> None:
        if self.close_sent:  # the peer's reply to our close: the closing handshake is done
            self.ws.disconnect()
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code,
                               "reason": reason.decode("utf-8", "replace")})
        self.close_sent = True
        self.ws.send_close(code if code not in (1005, 1006) else 1000, reason)
        self.ws.disconnect()

    def fail(self, code: int, reason: str) -> None:
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.close_sent = True
        self.ws.send_close(code, reason.encode())
        self.ws.disconnect()

    def lost(self) -> None:
        if self.disconnected:
            return
        self.disconnected = True
        self.connections.discard(self)
        self.queue.put_nowait({"type": "websocket.disconnect", "code": 1006})
        self.writable.set()
        if self.close_timer is not None:
            self.close_timer.cancel()

    # The ASGI side.
    async def run_asgi(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except Disconnected:
            pass
        except BaseException:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application\n")
            if not self.accepted and not self.close_sent:
                self.transport.write(SERVER_ERROR)
        if self.accepted:
            if self.close_timer is None and not self.disconnected:
                self.ws.disconnect()
        else:
            self.transport.close()

    async def receive(self) -> dict[str, Any]:
        message = await self.queue.get()
        if self.read_paused and self.queue.empty():
            self.read_paused = False
            self.transport.resume_reading()
        return message

    async def send(self, message: dict[str, Any]) -> None:
        if not self.writable.is_set():
            await self.writable.wait()
        if self.disconnected:
            raise Disconnected
        kind = message["type"]
        if not self.accepted and not self.close_sent:
            match kind:
                case "websocket.accept":
                    self.accept(message)
                case "websocket.close":
                    self.queue.put_nowait({"type": "websocket.disconnect", "code": 1006})
                    self.close_sent = True
                    self.transport.write(FORBIDDEN)
                    self.transport.close()
                case _:
                    raise RuntimeError(f"Expected 'websocket.accept' or 'websocket.close', got {kind!r}")
        elif not self.close_sent:
            match kind:
                case "websocket.send":
                    if (data := message.get("bytes")) is not None:
                        self.ws.send(WSMsgType.BINARY, data)
                    elif (text := message.get("text")) is not None:
                        self.ws.send(WSMsgType.TEXT, text.encode())
                case "websocket.close":
                    code, reason = message.get("code", 1000), message.get("reason") or ""
                    self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
                    self.ws.send_close(code, reason.encode())
                    self.close_sent = True
                    if self.read_paused:
                        self.read_paused = False
                        self.transport.resume_reading()
                    self.close_timer = self.loop.call_later(CLOSE_TIMEOUT_S, self.ws.disconnect)
                case _:
                    raise RuntimeError(f"Expected 'websocket.send' or 'websocket.close', got {kind!r}")
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} after sending 'websocket.close'")

    def accept(self, message: dict[str, Any]) -> None:
        # uvicorn's own line (the gateway's log filter redacts the token in the query string).
        logging.getLogger("uvicorn.error").info('%s - "WebSocket %s" [accepted]', get_client_addr(self.scope),
                                                get_path_with_query_string(self.scope))
        headers = [(name.decode("latin-1"), value.decode("latin-1"))
                   for name, value in [*self.default_headers, *message.get("headers", [])]
                   if name.lower() not in (b"date",)]
        if subprotocol := message.get("subprotocol"):
            headers.append(("Sec-WebSocket-Protocol", subprotocol))
        response = WSUpgradeResponse.create_101_response(extra_headers=headers)
        listener = _Frames(self)
        interval, timeout = self.config.ws_ping_interval, self.config.ws_ping_timeout
        protocol = WSProtocol(None, None, False, lambda _request: WSUpgradeResponseWithListener(response, listener),
                              LOGGER, True, None, bool(interval), interval or 20.0, timeout or 20.0,
                              WSAutoPingStrategy.PING_WHEN_IDLE, True, self.max_size, None, 16 * 1024)
        self.accepted = True
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)
        buffer = protocol.get_buffer(len(self.request))
        buffer[:len(self.request)] = self.request
        protocol.buffer_updated(len(self.request))
        self.ws = protocol.transport
