"""Live calls over WebRTC (aiortc): one peer connection per rep connection, joined to the same
`LiveCall` the live socket joins (gateway/calls/registry.py), so the pipeline, the sequencer and
the durable delivery are the socket's own.

A peer carries the rep's microphone (an Opus track, decoded to 16 kHz mono PCM16 into
`LiveCall.feed_audio`), the persona's voice (an outbound track, `webrtc_media.PersonaTrack`) and a
data channel labelled `events`: one event per text message, exactly the frames the live socket
sends, and the socket's client messages (`text`, `end`, `ping`) the other way. The offer route is
`gateway/routes/webrtc.py`; the protocol is in docs/protocol.md.

A peer whose connection fails or closes, or whose data channel closes, is a drop: the call waits
the resume grace for a new offer (with `last_seq`), then ends `client_disconnected`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from types import TracebackType
from typing import Any

import aioice.ice
import msgspec
from aiortc import RTCConfiguration, RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription
from litestar.connection import ASGIConnection

from coaching.events import (
    AudioFormat,
    ClientEnd,
    ClientPing,
    ClientStart,
    ClientText,
    Notice,
    Pong,
    client_decoder,
    encode,
)
from gateway.auth.caller import Caller
from gateway.auth.revocation import still_allowed
from gateway.calls.live_call import LiveCall
from gateway.calls.registry import CallRegistry
from gateway.errors import CLOSE_CODES, NORMAL, POLICY, TRY_AGAIN, ApiError
from gateway.transports.ice import IceServer, all_loopback, only_loopback_candidates
from gateway.transports.webrtc_media import InboundAudio, PersonaTrack
from storage.sessions import SessionRow

__all__ = ["EVENTS_LABEL", "RtcLink", "WebRtcPeers", "check_offer"]

log = logging.getLogger(__name__)

EVENTS_LABEL = "events"
CONNECT_TIMEOUT_S = 30  # an answered offer whose connection is not up by then is a drop
STALE_AFTER_S = 5  # a connected peer heard nothing from (no audio, no message) this long may be replaced
BAD_MESSAGE_BUDGET = 20  # as on the live socket
MAX_PENDING = 4000  # frames waiting for the data channel to open; past that the rep is closed (1013)
MAX_BUFFERED_BYTES = 4 * 1024 * 1024  # unsent data channel bytes before the rep counts as too far behind
FINISH_TIMEOUT_S = 3  # a server-side close: up to 2 s to drain the channel, then 1 s for the client to close


def check_offer(sdp: str) -> SessionDescription:
    """Parses an offer and checks it carries what a call needs.

    Raises:
        ApiError: 400 `bad_sdp`, naming the problem.
    """
    if not sdp.lstrip().startswith("v=0"):
        raise ApiError(400, "bad_sdp", "the offer is not SDP: it must start with v=0", field="sdp")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever the malformed line trips (ValueError, KeyError, ...)
        raise ApiError(400, "bad_sdp", f"the offer's SDP could not be parsed: {type(exc).__name__} {exc}"[:300],
                       field="sdp") from None
    kinds = [m.kind for m in parsed.media]
    if "audio" not in kinds:
        raise ApiError(400, "bad_sdp", "the offer has no audio m-line: add the microphone track (or a recvonly"
                                       " audio transceiver)", field="sdp")
    if "application" not in kinds:
        raise ApiError(400, "bad_sdp", f"the offer has no data channel: create one labelled {EVENTS_LABEL!r}"
                                       " before createOffer", field="sdp")
    for media in parsed.media:
        # aiortc takes these missing, then fails on its own task once ICE runs: refuse them here.
        if media.dtls is None or not media.dtls.fingerprints:
            raise ApiError(400, "bad_sdp", f"the offer's {media.kind} m-line has no a=fingerprint (DTLS)",
                           field="sdp")
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise ApiError(400, "bad_sdp", f"the offer's {media.kind} m-line has no a=ice-ufrag / a=ice-pwd",
                           field="sdp")
    return parsed


def _now_ms() -> int:
    return int(time.time() * 1000)


class RtcLink:
    """The call's side of one peer (a `RepChannel`): events to the data channel (queued until it
    opens), persona audio to the outbound track, and a close that ends the peer connection.

    Args:
        peer: the peer connection it belongs to.
        socket: the request the rep authenticated on (the revocation sweep reads its caller).
    """

    transport = "webrtc"

    def __init__(self, peer: _Peer, socket: ASGIConnection[Any, Any, Any, Any]) -> None:
        self._peer = peer
        self._socket = socket
        self._pending: list[bytes] = []
        self._channel: RTCDataChannel | None = None
        self.closed = False

    @property
    def socket(self) -> ASGIConnection[Any, Any, Any, Any]:
        return self._socket

    @property
    def channel(self) -> RTCDataChannel | None:
        return self._channel

    def attach(self, channel: RTCDataChannel) -> None:
        self._channel = channel
        pending, self._pending = self._pending, []
        for frame in pending:
            self._send(frame)

    def send_text(self, data: bytes) -> None:
        if not self.closed:
            self._send(data)

    def _send(self, data: bytes, *, limited: bool = True) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            # Before the channel exists the queue holds a resume's replay, however long the call
            # (the connect timeout bounds the wait); after, a channel that stays shut is a client
            # too far behind.
            if limited and channel is not None and len(self._pending) >= MAX_PENDING:
                self.close(TRY_AGAIN, "too far behind; send a new offer with last_seq to resume")
                return
            self._pending.append(data)
            return
        if limited and channel.bufferedAmount > MAX_BUFFERED_BYTES:
            self.close(TRY_AGAIN, "too far behind; send a new offer with last_seq to resume")
            return
        channel.send(data.decode())

    def send_bytes(self, data: bytes) -> None:
        if not self.closed:
            self._peer.track.feed(data)

    def stop_audio(self) -> None:
        """A barge-in, as soon as the call decides it: the browser plays only the track, so what
        the persona had not said yet is dropped here (the socket's browser drops its own buffer)."""
        self._peer.track.flush()

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Ends the peer connection once what was sent went out. A close the client must act on
        (anything but a normal end) is said first in a `notice` whose code is the close's name."""
        if self.closed:
            return
        self.closed = True  # first: the notice below must not find the link over a limit and close again
        if code != NORMAL:
            self._send(encode(Notice(session_id=self._peer.session_id, ts=_now_ms(),
                                     code=CLOSE_CODES.get(code, "closed"), message=reason)), limited=False)
        self._peer.finish(f"closed by the server ({code} {reason})")


class _Peer:
    """One rep connection: the peer connection, its tracks, its data channel and its tasks."""

    def __init__(self, owner: WebRtcPeers, pc: RTCPeerConnection, session: SessionRow, caller: Caller,
                 request: ASGIConnection[Any, Any, Any, Any]) -> None:
        self._owner, self.pc, self.session, self.caller = owner, pc, session, caller
        self.session_id = str(session.id)
        self.track = PersonaTrack()
        self.link = RtcLink(self, request)
        self.call: LiveCall | None = None
        self.inbound: InboundAudio | None = None
        self.remote: MediaStreamTrack | None = None
        self.created = self.last_heard = time.monotonic()
        self.connected = asyncio.Event()  # the peer connection is up
        self.channel_open = asyncio.Event()  # and so is its `events` data channel
        self._events_channel = False
        self.released = False
        self._release: asyncio.Future[None] | None = None
        self.finishing: asyncio.Task[None] | None = None  # the server's close, letting the channel drain
        self.tasks: set[asyncio.Task[None]] = set()
        self._messages: asyncio.Queue[str | bytes] = asyncio.Queue()
        self._bad = 0
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_state)

    # --- aiortc's events -------------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self.remote is None:
            self.remote = track

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_LABEL or self._events_channel:
            # Refused: closed at once, and said on the events channel (queued until it opens).
            label = channel.label[:100]
            why = (f"a second {EVENTS_LABEL!r} channel" if channel.label == EVENTS_LABEL
                   else f"the data channel {label!r}: only {EVENTS_LABEL!r} is used")
            log.info("webrtc data channel refused", extra={"session_id": self.session_id, "label": label})
            channel.close()
            self._notice("bad_channel", f"closed {why}")
            return
        self._events_channel = True
        channel.on("message", self._messages.put_nowait)
        channel.on("close", lambda: self._dropped("the data channel closed"))
        if channel.readyState == "open":
            self._attach(channel)
        else:
            channel.on("open", lambda: self._attach(channel))

    def _attach(self, channel: RTCDataChannel) -> None:
        self.link.attach(channel)
        self.channel_open.set()

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self.connected.set()
        elif state in ("failed", "closed"):
            self._dropped("ICE failed" if state == "failed" else "the peer connection closed")

    # --- running ----------------------------------------------------------------------------------

    def spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=f"webrtc-{name}-{self.session_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def bind(self, call: LiveCall) -> None:
        """The call joined: audio and messages flow into it from now on."""
        self.call = call
        if self.released or self.link.closed:  # dropped while joining: the call waits the grace as after any drop
            call.detach_rep(self.link)
            return
        if self.remote is not None:
            self.spawn(self._pump_audio(self.remote), "audio-in")
        self.spawn(self._read_messages(), "messages")
        self.spawn(self._watch_connect(), "connect")

    def attached(self) -> bool:
        return self.call is not None and self.call.rep is self.link and not self.call.ending

    def live(self, now: float) -> bool:
        """Whether this peer still holds the call: connecting (within the timeout) or connected
        and heard from lately. A new offer for the call is refused (409) while it does."""
        if self.released or self.link.closed:
            return False
        if not (self.connected.is_set() and self.channel_open.is_set()):
            return now - self.created < CONNECT_TIMEOUT_S
        return self.pc.connectionState == "connected" and now - self.last_heard < STALE_AFTER_S

    async def _watch_connect(self) -> None:
        """A peer without its `events` channel cannot carry the call (the SDP names no labels, so
        the offer could not tell): like one that never connects, it is a drop at the timeout."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await self._up()
        except TimeoutError:
            self._dropped(f"not connected with an {EVENTS_LABEL!r} data channel within {CONNECT_TIMEOUT_S} s")

    async def _up(self) -> None:
        await self.connected.wait()
        await self.channel_open.wait()

    async def _pump_audio(self, track: MediaStreamTrack) -> None:
        inbound = self.inbound = InboundAudio()
        try:
            while True:
                frame = await track.recv()  # keep reading: aiortc queues decoded frames without bound
                self.last_heard = time.monotonic()
                pcm = inbound.convert(frame)  # type: ignore[arg-type]  # an audio track yields AudioFrames
                if pcm and self.call is not None and self.attached():
                    self.call.feed_audio(pcm)
        except MediaStreamError:
            return
        finally:
            inbound.close()

    async def _read_messages(self) -> None:
        while True:
            message = await self._messages.get()
            self.last_heard = time.monotonic()
            call = self.call
            if call is None or not self.attached():
                continue
            if isinstance(message, bytes):
                self._bad_message(call, "the events channel takes JSON text messages; audio goes on the track")
                continue
            try:
                command = client_decoder.decode(message)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self._bad_message(call, str(exc)[:200])
                continue
            match command:
                case ClientText():
                    if not await self._allowed():
                        self._owner.end_call(call, "access_revoked")
                        return
                    call.rep_text(command.text)
                case ClientEnd():
                    self._owner.end_call(call, "rep_ended")
                    return
                case ClientPing():
                    self.link.send_text(encode(Pong(session_id=self.session_id, ts=_now_ms())))
                case ClientStart():
                    self._notice("already_started", "the call has already started (the offer started it)")
                case _:  # a client message type added to the protocol without a case here
                    self.link.close(POLICY, f"the events channel does not accept {type(command).__name__} messages")
                    return

    async def _allowed(self) -> bool:
        """As on the socket: with the database unreachable the turn goes ahead."""
        try:
            return await still_allowed(self._owner.pool, self.caller, staff=False)
        except Exception:  # OSError, asyncpg errors, timeouts: the revocation sweep closes the call later
            return True

    def _bad_message(self, call: LiveCall, message: str) -> None:
        self._bad += 1
        if self._bad > BAD_MESSAGE_BUDGET:
            self.link.close(POLICY, f"more than {BAD_MESSAGE_BUDGET} messages this channel could not read")
            return
        self._notice("bad_message", message)

    def _notice(self, code: str, message: str) -> None:
        self.link.send_text(encode(Notice(session_id=self.session_id, ts=_now_ms(), code=code, message=message)))

    # --- ending ------------------------------------------------------------------------------------

    def _dropped(self, cause: str) -> None:
        """The connection is gone: the call waits the resume grace for the rep (as after a socket drop)."""
        if self.released:
            return
        log.info("webrtc peer dropped", extra={"session_id": self.session_id, "cause": cause})
        self.link.closed = True
        if self.call is not None:
            self.call.detach_rep(self.link)
        self.spawn(self.release(), "release")

    def finish(self, cause: str) -> None:
        """The server closes: let the data channel send what it holds, then close."""
        self.finishing = self.spawn(self._finish(cause), "finish")

    async def _finish(self, cause: str) -> None:
        channel = self.link.channel
        deadline = time.monotonic() + FINISH_TIMEOUT_S - 1
        while channel is not None and channel.readyState == "open" and channel.bufferedAmount > 0:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        try:
            # The client closes itself on session.ended or a notice; otherwise close after a moment.
            async with asyncio.timeout(1.0):
                await self._closed_by_client()
        except TimeoutError:
            pass
        self._dropped(cause)

    async def _closed_by_client(self) -> None:
        while self.pc.connectionState not in ("closed", "failed"):
            await asyncio.sleep(0.05)

    async def release(self) -> None:
        """Closes the connection and lets go of its tracks, decoder and tasks; every caller waits
        until that is done (the app's shutdown too, while a drop's release is under way)."""
        if self._release is None:
            self._release = asyncio.ensure_future(self._let_go())
        await asyncio.shield(self._release)

    async def _let_go(self) -> None:
        self.released = True
        self.link.closed = True
        pacing = self.track.pacing
        log.info("webrtc peer released", extra={
            "session_id": self.session_id, "frames_out": pacing.frames, "frames_late": pacing.slipped,
            "max_late_ms": round(pacing.max_late_ms, 1), "frames_in": self.inbound.frames if self.inbound else 0})
        for task in list(self.tasks):
            task.cancel()  # the release runs in a task of its own, never one of these
        self.track.stop()
        if self.remote is not None:
            self.remote.stop()
        if self.inbound is not None:
            self.inbound.close()
        try:
            await self.pc.close()
        except Exception as exc:  # a transport that failed half-way: it is closed either way
            log.warning("closing a peer connection failed", extra={"session_id": self.session_id,
                                                                   "error": type(exc).__name__})
        self._owner.forget(self)


class WebRtcPeers:
    """The process's WebRTC peers, at most one live per session, opened on the app's lifespan.

    Args:
        pool: the app pool (the access check of typed turns).
        calls: the call registry the peers join.
        ice_servers: STUN/TURN servers for the gateway's gathering and the browser's.
        host_addresses: the addresses to gather host candidates on (empty: aioice's default, every
            interface but loopback). Set process-wide, since aioice reads one module function.
    """

    def __init__(self, *, pool: Any, calls: CallRegistry, ice_servers: list[IceServer],
                 host_addresses: list[str]) -> None:
        self.pool, self._calls = pool, calls
        self.ice_servers = ice_servers
        self._host_addresses = host_addresses
        self._peers: dict[str, _Peer] = {}
        self._all: set[_Peer] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        self._endings: set[asyncio.Task[None]] = set()
        self._saved_get_host_addresses = aioice.ice.get_host_addresses

    async def __aenter__(self) -> WebRtcPeers:
        self.loop = asyncio.get_running_loop()
        if self._host_addresses:
            addresses = list(self._host_addresses)
            aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [
                a for a in addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.gather(*self._endings, return_exceptions=True)
        # The registry exited first: its suspended calls closed their links with `restarting`, and
        # each such peer lets its channel drain before it closes (bounded by `_finish`).
        finishing = [peer.finishing for peer in self._all if peer.finishing is not None]
        if finishing:
            await asyncio.wait(finishing, timeout=FINISH_TIMEOUT_S + 1)
        await asyncio.gather(*(peer.release() for peer in list(self._all)), return_exceptions=True)
        if self._host_addresses:
            aioice.ice.get_host_addresses = self._saved_get_host_addresses

    def _configuration(self) -> RTCConfiguration:
        # An empty list, not None: None means aiortc's default public STUN server.
        return RTCConfiguration(iceServers=[RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                                            for s in self.ice_servers])

    async def answer(self, *, request: ASGIConnection[Any, Any, Any, Any], caller: Caller, session: SessionRow,
                     sdp: str, last_seq: int | None) -> RTCSessionDescription:
        """Answers a rep's offer and joins their call over it (new, resumed, or taken over).

        ICE gathering completes before the answer is returned (aiortc does not trickle), so the
        answer holds every candidate.

        Raises:
            ApiError: 400 `bad_sdp`; 409 `peer_connected` while another peer holds the call.
            CallRefused: as `CallRegistry.connect` (ended 410, over the limit 429, ...).
        """
        check_offer(sdp)
        if all_loopback(self._host_addresses):
            sdp = only_loopback_candidates(sdp)
        key = str(session.id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        # Counted, so the lock is dropped only when no offer holds or awaits it: a woken waiter
        # that has not acquired it yet must not find a second lock made by a newer offer.
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        try:
            async with lock:
                current = self._peers.get(key)
                if current is not None and current.live(time.monotonic()):
                    raise ApiError(409, "peer_connected", "this call already has a connected peer; close it (or wait"
                                                          f" {STALE_AFTER_S} s after it went quiet) before a new offer")
                peer = _Peer(self, RTCPeerConnection(self._configuration()), session, caller, request)
                self._all.add(peer)
                try:
                    try:
                        await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                    except Exception as exc:  # what aiortc could not negotiate: the offer's problem, said as such
                        raise ApiError(400, "bad_sdp", f"the offer could not be negotiated: {type(exc).__name__}"
                                                       f" {exc}"[:300], field="sdp") from None
                    peer.pc.addTrack(peer.track)
                    await peer.pc.setLocalDescription(await peer.pc.createAnswer())
                    start = ClientStart(audio=AudioFormat(sample_rate=16000), last_seq=last_seq)
                    call = await self._calls.connect(caller, session, start, peer.link)
                except BaseException:
                    joined = self._calls.get(key)
                    if joined is not None:  # it failed after the call took the link: let the call go on without it
                        joined.detach_rep(peer.link)
                    await peer.release()
                    raise
                peer.bind(call)
                self._peers[key] = peer
                if current is not None and current is not peer:
                    current.link.closed = True
                    current.spawn(current.release(), "release")
                description = peer.pc.localDescription
                return RTCSessionDescription(sdp=description.sdp, type=description.type)
        finally:
            self._lock_users[key] -= 1
            if not self._lock_users[key]:
                del self._lock_users[key]
                if key not in self._peers:
                    self._locks.pop(key, None)

    def end_call(self, call: LiveCall, reason: str) -> None:
        """Ends `call` in a task of the process's, not the peer's: a client that closes its peer
        right after `session.ended` must not cancel the end half-way (the row still live)."""
        task = asyncio.create_task(call.end(reason), name=f"webrtc-end-{call.session_id}")
        self._endings.add(task)
        task.add_done_callback(self._endings.discard)

    def forget(self, peer: _Peer) -> None:
        self._all.discard(peer)
        if self._peers.get(peer.session_id) is peer:
            del self._peers[peer.session_id]
            if peer.session_id not in self._lock_users:
                self._locks.pop(peer.session_id, None)

    def resources(self) -> dict[str, int]:
        """What the process holds for WebRTC right now (call it on the app's loop): peers, live
        tracks, open resamplers, the peers' tasks, aiortc's and aioice's tasks, Opus decoder threads."""
        peers = list(self._all)
        library_tasks = 0
        for task in asyncio.all_tasks():
            code = getattr(task.get_coro(), "cr_code", None)
            filename = code.co_filename if code is not None else ""
            if not task.done() and ("/aiortc/" in filename or "/aioice/" in filename):
                library_tasks += 1
        return {
            "peers": len(peers),
            "tracks": sum((p.track.readyState == "live") + (p.remote is not None and p.remote.readyState == "live")
                          for p in peers),
            "decoders": sum(p.inbound is not None and p.inbound.open for p in peers),
            "tasks": sum(1 for t in asyncio.all_tasks() if t.get_name().startswith("webrtc-") and not t.done()),
            "library_tasks": library_tasks,
            "decoder_threads": sum(1 for t in threading.enumerate() if t.name.endswith("-decoder") and t.is_alive()),
        }

    def pacing(self) -> list[tuple[int, int, float]]:
        """Per peer: outbound frames sent, frames later than 20 ms, the latest one's lateness (ms)."""
        return [(p.track.pacing.frames, p.track.pacing.slipped, p.track.pacing.max_late_ms) for p in self._all]
