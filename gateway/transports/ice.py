"""ICE configuration for WebRTC calls: the STUN/TURN servers from `WEBRTC_ICE_SERVERS` and the
addresses the gateway gathers host candidates on (`WEBRTC_HOST_ADDRESSES`). Pure: parsing only."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import msgspec

__all__ = ["IceServer", "all_loopback", "only_loopback_candidates", "parse_host_addresses", "parse_ice_servers"]

_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


class IceServer(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """One RTCIceServer, in the shape browsers take it (`new RTCPeerConnection({iceServers})`)."""

    urls: list[Annotated[str, msgspec.Meta(min_length=5, max_length=512)]]
    username: str | None = None
    credential: str | None = None


def parse_ice_servers(raw: str) -> list[IceServer]:
    """`WEBRTC_ICE_SERVERS`: a JSON list of `{"urls": str | [str], "username"?, "credential"?}`.

    Raises:
        ValueError: what is wrong, in words an operator can act on.
    """
    if not raw.strip():
        return []
    try:
        items = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ValueError("expected a JSON list like [{\"urls\": \"stun:stun.example.com:3478\"}]") from None
    if not isinstance(items, list):
        raise ValueError("expected a JSON list of ICE servers")
    servers: list[IceServer] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("urls"), str):
            item = {**item, "urls": [item["urls"]]}
        try:
            server = msgspec.convert(item, IceServer)
        except msgspec.ValidationError as exc:
            raise ValueError(f"server {i}: {exc}") from None
        if not server.urls:
            raise ValueError(f"server {i}: urls is empty")
        for url in server.urls:
            if not url.startswith(_SCHEMES):
                raise ValueError(f"server {i}: {url!r} is not a stun:, stuns:, turn: or turns: URL")
            if url.startswith(("turn:", "turns:")) and (server.username is None or server.credential is None):
                raise ValueError(f"server {i}: a TURN server needs username and credential")
        servers.append(server)
    return servers


def parse_host_addresses(raw: str) -> list[str]:
    """`WEBRTC_HOST_ADDRESSES`: comma-separated IP addresses (empty: aioice's default interfaces).

    Raises:
        ValueError: an entry that is not an IP address.
    """
    addresses = []
    for part in raw.split(","):
        if part.strip():
            try:
                addresses.append(str(ipaddress.ip_address(part.strip())))
            except ValueError:
                raise ValueError(f"{part.strip()!r} is not an IP address") from None
    return addresses


def all_loopback(addresses: list[str]) -> bool:
    """Whether host candidates are gathered on loopback only (calls on one machine, tests)."""
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def only_loopback_candidates(sdp: str) -> str:
    """The SDP without its non-loopback `a=candidate` lines (and mDNS `.local` names): a gateway
    that gathers on loopback only sends its checks to loopback, nowhere else on the host."""
    kept = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            try:
                if len(parts) < 5 or not ipaddress.ip_address(parts[4]).is_loopback:
                    continue
            except ValueError:
                continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"
