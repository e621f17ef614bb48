"""A rep's WebRTC client, as a test drives it: an aiortc peer that offers a microphone track (PCM
it is given, silence otherwise) and the `events` data channel, and collects the events and the
persona's audio."""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections.abc import Callable
from typing import Any

import av
import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tests.gateway.accounts_helpers import bearer

RATE = 16000
FRAME = RATE * 20 // 1000  # samples per 20 ms


class Microphone(MediaStreamTrack):
    """20 ms frames of 16 kHz mono, in real time: what `say` queued, then silence."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pcm = bytearray()
        self._start: float | None = None
        self._pts = 0
        self.drained = asyncio.Event()
        self.drained.set()

    def say(self, pcm: bytes) -> None:
        self._pcm += pcm
        self.drained.clear()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME
            wait = self._start + self._pts / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        chunk = bytes(self._pcm[:FRAME * 2]).ljust(FRAME * 2, b"\0")
        del self._pcm[:FRAME * 2]
        if not self._pcm:
            self.drained.set()
        frame = av.AudioFrame.from_ndarray(np.frombuffer(chunk, dtype=np.int16).reshape(1, -1), format="s16",
                                           layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, self._pts, fractions.Fraction(1, RATE)
        return frame


class RtcClient:
    def __init__(self, base_url: str, session_id: str, auth: dict, *,
                 configuration: RTCConfiguration | None = None) -> None:
        self.base_url, self.session_id, self.auth = base_url, session_id, auth
        self.pc = RTCPeerConnection(configuration or RTCConfiguration(iceServers=[]))
        self.mic = Microphone()
        self.events: list[dict[str, Any]] = []
        self.audio = bytearray()  # the persona's track, 48 kHz mono s16 (downmixed)
        self.answer: dict[str, Any] = {}
        self.channel_closed = asyncio.Event()
        self._changed = asyncio.Event()
        self._reader: asyncio.Task | None = None
        self.pc.addTrack(self.mic)
        self.channel = self.pc.createDataChannel("events")
        self.channel.on("message", self._on_message)
        self.channel.on("close", self._on_close)
        self.pc.on("track", self._on_track)

    def _on_message(self, message: str) -> None:
        self.events.append(json.loads(message))
        self._changed.set()

    def _on_close(self) -> None:
        self.channel_closed.set()
        self._changed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.create_task(self._read_audio(track))

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(axis=1)
                self.audio += samples.astype(np.int16).tobytes()
                self._changed.set()
        except MediaStreamError:
            pass

    async def post_offer(self, client: httpx.AsyncClient, *, last_seq: int | None = None) -> httpx.Response:
        await self.pc.setLocalDescription(await self.pc.createOffer())  # gathers every candidate
        body: dict[str, Any] = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        if last_seq is not None:
            body["last_seq"] = last_seq
        return await client.post(f"/api/sessions/{self.session_id}/webrtc/offer", json=body,
                                 headers=bearer(self.auth))

    async def connect(self, client: httpx.AsyncClient, *, last_seq: int | None = None) -> RtcClient:
        response = await self.post_offer(client, last_seq=last_seq)
        assert response.status_code == 200, response.text
        self.answer = response.json()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=self.answer["sdp"], type="answer"))
        return self

    def send(self, message: dict) -> None:
        self.channel.send(json.dumps(message))

    async def wait_for(self, predicate: Callable[[dict], bool], *, timeout: float = 60, after: int = 0) -> dict:
        async def find() -> dict:
            while True:
                for event in self.events[after:]:
                    if predicate(event):
                        return event
                if self.channel_closed.is_set():
                    raise AssertionError(f"the data channel closed before the event came; got "
                                         f"{[e['type'] for e in self.events]}")
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(find(), timeout)

    async def wait_audio(self, seconds: float, *, timeout: float = 30) -> None:
        """Until `seconds` of non-silent persona audio arrived on the track."""
        async def enough() -> None:
            while self.voiced_ms() < seconds * 1000:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(enough(), timeout)

    def voiced_ms(self) -> float:
        samples = np.frombuffer(bytes(self.audio), dtype=np.int16)
        frames = samples[: len(samples) // 960 * 960].reshape(-1, 960).astype(np.float32)
        return float((np.sqrt((frames ** 2).mean(axis=1)) > 200).sum() * 20) if len(frames) else 0.0

    async def greeting(self) -> dict:
        return await self.wait_for(lambda e: e["type"] == "transcript.final" and e["speaker"] == "persona")

    def of_type(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]

    def numbered(self) -> list[dict]:
        return [e for e in self.events if "seq" in e]

    def go_silent(self) -> None:
        """The network goes away under the client (no close, no goodbye): every UDP socket of its
        ICE agent stops sending and drops what it receives, so the gateway's consent checks go
        unanswered."""
        transport = self.pc.sctp.transport.transport  # SCTP -> DTLS -> ICE (one bundled transport)
        for protocol in transport.iceGatherer._connection._protocols:
            protocol.transport.sendto = lambda *args, **kwargs: None
            protocol.datagram_received = lambda *args, **kwargs: None

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=5)
