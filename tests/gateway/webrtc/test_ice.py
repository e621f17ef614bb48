"""The pure pieces of the WebRTC transport: ICE settings, the loopback candidate filter, pacing."""

import pytest

from gateway.settings import SettingsError, load_settings
from gateway.transports.ice import IceServer, all_loopback, only_loopback_candidates, parse_ice_servers
from gateway.transports.webrtc_media import Pacing


def test_ice_servers_parse_from_json_with_a_single_url_or_a_list():
    servers = parse_ice_servers('[{"urls": "stun:stun.example.com:3478"},'
                                ' {"urls": ["turn:t.example.com:3478"], "username": "u", "credential": "p"}]')
    assert servers == [IceServer(urls=["stun:stun.example.com:3478"]),
                       IceServer(urls=["turn:t.example.com:3478"], username="u", credential="p")]
    assert parse_ice_servers("") == []


@pytest.mark.parametrize(("raw", "says"), [
    ("stun:x", "JSON list"), ('{"urls": "stun:x:1"}', "JSON list of ICE servers"),
    ('[{"urls": "http://x"}]', "is not a stun:"), ('[{"urls": "turn:x:1"}]', "needs username and credential"),
    ('[{"urls": []}]', "urls is empty"), ('[{"url": "stun:x:1"}]', "server 0"),
])
def test_bad_ice_servers_are_refused_at_start_up_naming_the_variable(raw, says):
    with pytest.raises(SettingsError) as refused:
        load_settings({"WEBRTC_ICE_SERVERS": raw})
    assert refused.value.variable == "WEBRTC_ICE_SERVERS" and says in str(refused.value)


def test_host_addresses_must_be_ip_addresses():
    assert load_settings({"WEBRTC_HOST_ADDRESSES": "127.0.0.1, ::1"}).webrtc_host_addresses == "127.0.0.1, ::1"
    with pytest.raises(SettingsError, match="WEBRTC_HOST_ADDRESSES"):
        load_settings({"WEBRTC_HOST_ADDRESSES": "localhost"})


def test_only_loopback_candidates_are_kept_when_the_gateway_gathers_on_loopback():
    sdp = ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
           "a=candidate:1 1 udp 2122194687 127.0.0.1 44716 typ host\r\n"
           "a=candidate:2 1 udp 2122063615 192.0.2.2 58858 typ host\r\n"
           "a=candidate:3 1 udp 2122063615 0f1e.local 58858 typ host\r\n"
           "a=candidate:4 1 udp 2122267903 ::1 55287 typ host\r\na=mid:0\r\n")
    kept = only_loopback_candidates(sdp)
    assert "127.0.0.1" in kept and "::1" in kept and "192.0.2.2" not in kept and ".local" not in kept
    assert kept.endswith("a=mid:0\r\n")
    assert all_loopback(["127.0.0.1", "::1"]) and not all_loopback([]) and not all_loopback(["192.0.2.2"])


def test_pacing_counts_frames_later_than_the_limit():
    pacing = Pacing(slip_limit_ms=20)
    for late in (0.0, 5.0, 20.0, 20.5, 180.0):
        pacing.record(late)
    assert (pacing.frames, pacing.slipped, pacing.max_late_ms) == (5, 2, 180.0)
    with pytest.raises(ValueError, match="slip_limit_ms"):
        Pacing(slip_limit_ms=0)
