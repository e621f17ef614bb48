"""WebRTC calls: `POST /api/sessions/{id}/webrtc/offer` (the rep's offer in, the gateway's answer
out, the call joined over it) and `GET /api/webrtc` (whether the web app should use WebRTC, and
the ICE servers). The peer connections themselves are gateway/transports/webrtc.py."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from gateway.auth.caller import CallerDep, authenticate
from gateway.errors import ApiError, ErrorBody
from gateway.ratelimit import limit_request
from gateway.transports.ice import IceServer
from gateway.transports.webrtc import WebRtcPeers
from storage import sessions

__all__ = ["webrtc_config", "webrtc_offer"]


class OfferIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The browser's `RTCPeerConnection.localDescription` after `createOffer`, plus `last_seq` on a resume."""

    sdp: Annotated[str, msgspec.Meta(min_length=1, max_length=200_000)]
    type: Literal["offer"]
    last_seq: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None


class AnswerOut(msgspec.Struct, frozen=True):
    sdp: str
    type: Literal["answer"]
    ice_servers: list[IceServer]


class WebRtcConfig(msgspec.Struct, frozen=True):
    enabled: bool
    ice_servers: list[IceServer]


@get("/api/webrtc", tags=["sessions"], summary="Whether calls go over WebRTC here, and the ICE servers")
async def webrtc_config(state: State, caller: CallerDep) -> WebRtcConfig:
    peers: WebRtcPeers = state.webrtc
    return WebRtcConfig(enabled=state.settings.webrtc_calls, ice_servers=peers.ice_servers)


@post("/api/sessions/{session_id:uuid}/webrtc/offer", tags=["sessions"], status_code=200,
      summary="Join one's own call over WebRTC: the offer in, the answer (all ICE candidates) out",
      description="The offer needs an audio m-line and a data channel labelled `events`. The answer comes after"
                  " ICE gathering is complete (no trickle). `last_seq` resumes a call, as on the live socket.",
      responses={410: ResponseSpec(data_container=ErrorBody, description="The call has ended",
                                   generate_examples=False)})
async def webrtc_offer(request: Request[Any, Any, Any], state: State, session_id: FromPath[uuid.UUID],
                       data: JSONBody[OfferIn]) -> AnswerOut:
    if not state.settings.webrtc_calls:
        raise ApiError(404, "webrtc_off", "WebRTC calls are turned off here (WEBRTC_CALLS=false); use the live"
                                          " socket /ws/sessions/{id}")
    # A short transaction of its own: ICE gathering and joining the call must not hold a connection.
    async with state.pool.acquire() as conn, conn.transaction():
        caller = await authenticate(request, conn)  # 401/403, CSRF for cookie logins, as on every change
        session = await sessions.get_session(conn, session_id)
    if session is None or session.user_id != caller.user_id:
        raise ApiError(404, "not_found", "no such session (only the rep can join their call; coaches watch)")
    if session.transport == "vapi":
        raise ApiError(409, "vapi_call", "a VAPI call runs through VAPI; it cannot be joined over WebRTC")
    if session.status == "ended":
        raise ApiError(410, "ended", f"this call has ended ({session.end_reason})")
    await limit_request(request, "ws_connect", str(caller.user_id))  # the live socket's connect limit
    peers: WebRtcPeers = state.webrtc
    answer = await peers.answer(request=request, caller=caller, session=session, sdp=data.sdp,
                                last_seq=data.last_seq)
    return AnswerOut(sdp=answer.sdp, type="answer", ice_servers=peers.ice_servers)
