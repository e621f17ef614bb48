// The rep's call over WebRTC: the microphone as an Opus track (the browser's echo cancellation,
// noise suppression and jitter buffer), the buyer's voice on the answer's track, and the events on
// a data channel "events" — the same events, in the same order, as on the live socket. A peer
// that drops is replaced by a new offer with last_seq. `CallLink` is what the call page holds: it
// starts on WebRTC when the browser and the server offer it and falls back to the live socket.

import { api } from "./api.js";
import { LiveSocket } from "./live.js";

const CONNECT_TIMEOUT_MS = 10000;  // no data channel by then on the first try: use the socket
// What the server says (a notice, before it closes) that reconnecting cannot fix.
const FINAL_NOTICES = new Set(["taken_over", "ended", "unauthenticated", "refused", "not_found", "rate_limited",
                               "policy"]);
const FINAL_STATUS = new Set([400, 401, 403, 404, 410, 429]);
// Refusals the live socket would give too: no point falling back to it.
const REFUSED_EVERYWHERE = new Set([401, 403, 404, 410, 429]);

export class LiveRtc extends EventTarget {
  constructor(sessionId) {
    super();
    this.sessionId = sessionId;
    this.transport = "webrtc";
    this.lastSeq = 0;
    this.state = "connecting";
    this.closedByUs = false;
    this.attempt = 0;
    this.everConnected = false;
    this.audio = new Audio();
    this.audio.autoplay = true;
  }

  async connect(microphone = Promise.resolve(null)) {
    this.microphone = microphone;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers || [] });
    this.pc = pc;
    const stream = await microphone.catch(() => null);
    const track = stream && stream.getAudioTracks()[0];
    if (track) pc.addTrack(track, stream);
    else pc.addTransceiver("audio", { direction: "recvonly" });  // no microphone: listen, and type
    pc.ontrack = ({ streams, track: remote }) => {
      this.audio.srcObject = streams[0] || new MediaStream([remote]);
      this.audio.play().catch(() => {});
    };
    const channel = pc.createDataChannel("events", { ordered: true });
    this.channel = channel;
    channel.onmessage = ({ data }) => this.receive(JSON.parse(data));
    channel.onopen = () => {
      this.attempt = 0;
      this.everConnected = true;
      clearTimeout(this.connectTimer);
      this.setState("live");
    };
    channel.onclose = () => this.dropped(pc);
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed" || pc.connectionState === "closed") this.dropped(pc);
    };
    this.connectTimer = setTimeout(() => { if (this.state !== "live") this.dropped(pc, "timeout"); },
                                   CONNECT_TIMEOUT_MS);
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);  // the server answers with every candidate; the offer carries ours
      const answer = await api(`/api/sessions/${this.sessionId}/webrtc/offer`, {
        method: "POST", body: { sdp: pc.localDescription.sdp, type: "offer", last_seq: this.lastSeq || null },
      });
      this.iceServers = answer.ice_servers;
      if (this.pc !== pc) return;
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    } catch (error) {
      if (this.pc !== pc) return;
      const final = (this.everConnected ? FINAL_STATUS : REFUSED_EVERYWHERE).has(error.status)
        && error.code !== "peer_connected";
      this.dropped(pc, final ? "final" : "error", error);
    }
  }

  receive(event) {
    if (typeof event.seq === "number") {
      if (event.seq <= this.lastSeq) return;  // already shown before a reconnect
      this.lastSeq = event.seq;
    }
    if (event.type === "session.ended") this.ended = true;
    if (event.type === "notice" && FINAL_NOTICES.has(event.code)) this.refusal = event;
    this.dispatchEvent(new CustomEvent("event", { detail: event }));
  }

  dropped(pc, why = "drop", error = null) {
    if (this.pc !== pc) return;
    this.pc = null;
    clearTimeout(this.connectTimer);
    try { pc.close(); } catch { /* already closed */ }
    if (this.closedByUs || this.ended) {
      this.setState("ended");
      return;
    }
    if (!this.everConnected && why !== "final") {
      // WebRTC does not get through here (a firewall, no UDP): the live socket takes the call.
      this.dispatchEvent(new CustomEvent("fallback", { detail: { why, error } }));
      return;
    }
    if (why === "final" || this.refusal) {
      const reason = this.refusal ? this.refusal.message : error?.message;
      const code = this.refusal?.code === "taken_over" ? 4409 : error?.status === 410 ? 4410 : 0;
      this.setState("closed", { code, reason });
      return;
    }
    this.setState("reconnecting", { reason: error?.message || "connection lost" });
    this.attempt += 1;
    const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempt, 5));
    this.timer = setTimeout(() => this.connect(this.microphone), delay);
  }

  setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...detail } }));
  }

  sendJson(message) {
    if (this.channel && this.channel.readyState === "open") {
      this.channel.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  sendAudio() { /* the microphone goes on the peer's track */ }

  close() {
    this.closedByUs = true;
    clearTimeout(this.timer);
    clearTimeout(this.connectTimer);
    if (this.pc) this.pc.close();
    this.pc = null;
    this.audio.srcObject = null;
  }
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000);  // a STUN server that never answers: send what was gathered
  });
}

// WebRTC when this browser has it and the server has it on, else the live socket; on WebRTC that
// never connects, the socket. The page listens to this one object whichever carries the call.
export class CallLink extends EventTarget {
  constructor(sessionId) {
    super();
    this.sessionId = sessionId;
    this.inner = null;
  }

  get state() { return this.inner ? this.inner.state : "connecting"; }

  get transport() { return this.inner ? this.inner.transport : "websocket"; }

  async connect(microphone) {
    let useRtc = typeof RTCPeerConnection === "function";
    if (useRtc) {
      const config = await api("/api/webrtc").catch(() => ({ enabled: false }));
      useRtc = config.enabled;
      this.iceServers = config.ice_servers || [];
    }
    if (this.closed) return;
    if (useRtc) {
      const rtc = new LiveRtc(this.sessionId);
      rtc.iceServers = this.iceServers;
      rtc.addEventListener("fallback", () => this.useSocket(rtc.lastSeq));
      this.adopt(rtc);
      rtc.connect(microphone);
    } else {
      this.useSocket(0);
    }
  }

  useSocket(lastSeq) {
    const socket = new LiveSocket(this.sessionId);
    socket.transport = "websocket";
    socket.lastSeq = lastSeq;
    this.adopt(socket);
    socket.connect();
  }

  adopt(inner) {
    if (this.inner && this.inner.close) this.inner.closedByUs = true;
    this.inner = inner;
    for (const kind of ["state", "event", "audio"]) {
      inner.addEventListener(kind, (e) => { if (this.inner === inner) this.dispatchEvent(new CustomEvent(kind, { detail: e.detail })); });
    }
    this.dispatchEvent(new CustomEvent("transport", { detail: { transport: inner.transport } }));
  }

  sendJson(message) { return this.inner ? this.inner.sendJson(message) : false; }

  sendAudio(buffer) { if (this.inner) this.inner.sendAudio(buffer); }

  close() {
    this.closed = true;
    if (this.inner) this.inner.close();
  }
}
