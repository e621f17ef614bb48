// A live call's socket, as the rep's page (or a watcher) holds it: start, resume with last_seq,
// reconnect by itself after a drop, and hand every event to the page once, in seq order.

import { socketUrl } from "./api.js";

// Closes that reconnecting cannot fix (4409: the call continues in another window; do not take it back).
const FINAL = new Set([4401, 4403, 4404, 4409, 4410, 4429, 1008, 1003, 1007]);

export class LiveSocket extends EventTarget {
  constructor(sessionId, { watch = false } = {}) {
    super();
    this.sessionId = sessionId;
    this.watch = watch;
    this.lastSeq = 0;
    this.state = "connecting";
    this.closedByUs = false;
    this.attempt = 0;
  }

  connect() {
    const path = this.watch
      ? `/ws/sessions/${this.sessionId}/watch?after_seq=${this.lastSeq}`
      : `/ws/sessions/${this.sessionId}`;
    const ws = new WebSocket(socketUrl(path));
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      if (!this.watch) {
        ws.send(JSON.stringify({ type: "start", protocol: 1, last_seq: this.lastSeq || null,
                                 audio: { encoding: "pcm_s16le", sample_rate: 16000, channels: 1 } }));
      }
      this.attempt = 0;
      this.setState("live");
    };
    ws.onmessage = ({ data }) => {
      if (typeof data !== "string") {
        this.dispatchEvent(new CustomEvent("audio", { detail: data }));
        return;
      }
      const event = JSON.parse(data);
      if (typeof event.seq === "number") {
        if (event.seq <= this.lastSeq) return;  // already shown before a reconnect
        this.lastSeq = event.seq;
      }
      if (event.type === "session.ended") this.ended = true;
      this.dispatchEvent(new CustomEvent("event", { detail: event }));
    };
    ws.onclose = ({ code, reason }) => {
      if (this.ws !== ws) return;
      if (this.closedByUs || this.ended || FINAL.has(code) || (this.watch && code === 1000)) {
        this.setState(this.ended || code === 1000 ? "ended" : "closed", { code, reason });
        return;
      }
      this.setState("reconnecting", { code, reason });
      this.attempt += 1;
      const delay = Math.min(5000, 250 * 2 ** Math.min(this.attempt, 5));
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...detail } }));
  }

  sendJson(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  sendAudio(buffer) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.ws.bufferedAmount < 64000) this.ws.send(buffer);
  }

  close() {
    this.closedByUs = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "page closed");
  }
}

export function describe(state, detail = {}) {
  switch (state) {
    case "connecting": return "Connecting…";
    case "live": return "Live";
    case "reconnecting": return "Connection lost — reconnecting…";
    case "ended": return "Call ended";
    default:
      if (detail.code === 4410) return "Call ended";
      if (detail.code === 4409) return "This call continues in another window";
      return detail.reason ? `Disconnected: ${detail.reason}` : "Disconnected";
  }
}
