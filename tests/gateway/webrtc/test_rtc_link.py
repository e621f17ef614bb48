"""The call's side of a peer (`RtcLink`) on its own: what it queues before the data channel opens,
and how it closes when the rep falls too far behind."""

import json

from gateway.transports.webrtc import MAX_PENDING, RtcLink


class _Peer:
    session_id = "5d7c1f5e-0000-4000-8000-000000000001"

    def __init__(self) -> None:
        self.finished: list[str] = []

    def finish(self, cause: str) -> None:
        self.finished.append(cause)


class _Channel:
    def __init__(self, state: str) -> None:
        self.readyState, self.bufferedAmount, self.sent = state, 0, []

    def send(self, data: str) -> None:
        self.sent.append(data)


def test_a_resume_replay_longer_than_the_limit_waits_whole_for_the_channel():
    peer = _Peer()
    link = RtcLink(peer, socket=None)
    frames = [json.dumps({"type": "transcript.final", "seq": n}).encode() for n in range(1, MAX_PENDING + 500)]
    for frame in frames:
        link.send_text(frame)
    assert not link.closed and peer.finished == []
    channel = _Channel("open")
    link.attach(channel)
    assert [json.loads(d)["seq"] for d in channel.sent] == list(range(1, MAX_PENDING + 500))


def test_a_channel_that_stays_shut_past_the_limit_closes_once_with_a_notice():
    peer = _Peer()
    link = RtcLink(peer, socket=None)
    link.attach(_Channel("connecting"))
    for n in range(MAX_PENDING + 10):
        link.send_text(json.dumps({"type": "transcript.final", "seq": n + 1}).encode())
    assert link.closed and len(peer.finished) == 1, "closed once, no recursion through the notice"
    notice = json.loads(link._pending[-1])
    assert notice["type"] == "notice" and notice["message"].startswith("too far behind")
