// Practice: pick a buyer, start a call, talk (or type), see the transcript, hints and whispers.
// The call has its own page, "#/call/{id}": a reload (or Back, then Forward) rejoins it and shows
// every line again; leaving it while it is live asks first. The rep's stray live calls (another
// window, a dropped connection) are listed here to rejoin or end.

import { api, ApiError, socketUrl } from "../api.js";
import { Microphone, MicrophoneDenied, Player } from "../audio.js";
import { clock, errorBox, h, showError } from "../dom.js";
import { describe } from "../live.js";
import { CallLink } from "../webrtc.js";
import { TranscriptView } from "../transcript.js";
import { briefDetails, briefSummary } from "../brief.js";
import { endReason } from "../words.js";

const DIFFICULTY = ["", "Easy", "Fair", "Medium", "Hard", "Very hard"];

export async function practice(root, { account, navigate, query, current }) {
  const error = errorBox();
  const personas = (await api("/api/personas")).items;
  // "#/practice?persona=ID&start=1" (the review page's "Try this persona again"): that buyer, call started.
  const asked = query?.get("persona");
  const preset = personas.findIndex((p) => p.id === asked);
  const first = preset >= 0 ? preset : 0;
  let chosen = personas[first]?.id;
  const cards = h("div", { class: "personas", role: "radiogroup", "aria-label": "Buyer persona" },
    personas.map((p, i) => {
      const card = h("button", { type: "button", class: "persona", role: "radio", "aria-checked": i === first ? "true" : "false",
                                 "data-id": p.id, onclick: () => pick(p.id) },
        h("strong", { class: "persona-name" }, p.name),
        h("span", { class: "persona-title" }, `${p.title}, ${p.company}`),
        h("span", { class: "difficulty" }, `Difficulty: ${DIFFICULTY[p.difficulty] || p.difficulty}`),
        h("span", { class: "situation" }, briefSummary(p)));
      return card;
    }));
  function pick(id) {
    chosen = id;
    for (const card of cards.children) card.setAttribute("aria-checked", card.dataset.id === id ? "true" : "false");
  }
  const startButton = h("button", { type: "button", class: "primary", onclick: start }, "Start call");
  const testButton = h("button", { type: "button", onclick: testMic }, "Test microphone");
  const testStatus = h("p", { class: "hint mic-verdict", "aria-live": "polite" });
  const testLevel = h("meter", { class: "level test-level", min: 0, max: 0.3, value: 0, hidden: true,
                                 "aria-label": "Microphone test level" });
  const setup = h("section", { class: "card" }, h("h1", {}, "Practice a call"),
    h("p", {}, "Pick the buyer you want to practise with."), cards,
    h("div", { class: "actions" }, startButton, testButton, testLevel), testStatus, error);
  const strays = h("ul", { class: "my-live-calls" });
  const straysCard = h("section", { class: "card", hidden: true, "aria-labelledby": "my-live-calls" },
    h("h2", { id: "my-live-calls", tabindex: "-1" }, "Your live calls"),
    h("p", { class: "hint" }, "Calls you started that are still running (another window, or a dropped connection)."
      + " They count against your live-call limit until they end."), strays);
  root.append(setup, straysCard);
  await loadStrays();

  async function loadStrays() {
    const params = new URLSearchParams({ status: "live", user_id: account.user.id, limit: "20" });
    const { items } = await api(`/api/sessions?${params}`);
    const mine = items.filter((s) => s.user_id === account.user.id && s.transport !== "vapi");
    straysCard.hidden = mine.length === 0;
    strays.replaceChildren(...mine.map((s) => {
      const end = h("button", { type: "button", class: "danger", onclick: () => endStray(s, end) }, "End");
      end.setAttribute("aria-label", `End the call with ${s.persona_name}`);
      return h("li", { class: "stray-call", "data-session": s.id },
        h("span", {}, `${s.persona_name} · started ${new Date(s.started_at || s.created_at).toLocaleTimeString()}`),
        h("a", { href: `#/call/${s.id}`, class: "button" }, "Rejoin"), end);
    }));
  }

  async function endStray(session, button) {
    button.disabled = true;
    try {
      await api(`/api/sessions/${session.id}/end`, { method: "POST" });
      await loadStrays();
    } catch (e) {
      showError(error, e);
      button.disabled = false;
    }
  }

  if (preset >= 0 && query.get("start") === "1" && current()) {
    // Drop the query so a reload shows the setup instead of starting another call (no hashchange).
    history.replaceState(null, "", "#/practice");
    start();
  }

  async function testMic() {
    testButton.disabled = true;
    testStatus.textContent = "Say something: you will hear yourself back in a moment.";
    testStatus.dataset.verdict = "";
    testLevel.hidden = false;
    const player = new Player(16000);
    const heard = new MicCheck();
    window.sparring = { echo: player, micCheck: heard };  // for the browser tests
    const ws = new WebSocket(socketUrl("/ws/echo"));
    ws.binaryType = "arraybuffer";
    ws.onmessage = ({ data }) => { if (typeof data !== "string") player.play(data); };
    const mic = new Microphone((pcm) => { if (ws.readyState === WebSocket.OPEN) ws.send(pcm); },
      (value, clipped) => { testLevel.value = value; heard.add(value, clipped); }, { raw: true });
    try {
      await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("The microphone test could not connect.")); });
      await mic.start();
      // Listen until about two seconds of voice were heard, at most eight seconds.
      const until = Date.now() + 8000;
      while (Date.now() < until && heard.voiced < 100) await new Promise((resolve) => setTimeout(resolve, 100));
      const verdict = heard.verdict();
      testStatus.dataset.verdict = verdict.kind;
      testStatus.textContent = verdict.text;
    } catch (e) {
      testStatus.textContent = e.message;
    } finally {
      mic.stop();
      ws.close();
      testLevel.value = 0;
      setTimeout(() => player.close(), 1500);
      testButton.disabled = false;
    }
  }

  async function start() {
    error.hidden = true;
    startButton.disabled = true;
    try {
      const session = await api("/api/sessions", { method: "POST", body: { persona_id: chosen } });
      navigate(`#/call/${session.id}`);
    } catch (e) {
      showError(error, e);
      startButton.disabled = false;
      if (e instanceof ApiError && e.code === "live_call_limit") {
        await loadStrays().catch(() => {});
        straysCard.querySelector("h2").focus();
      }
    }
  }

  return null;
}

// "#/call/{id}": the rep's own call. A live (or not yet started) one is joined, or rejoined after a
// reload: the socket replays every event (last_seq 0: this page has none yet), then goes on live.
export async function callPage(root, { account, args, navigate, guardLeaving, current }) {
  const session = await api(`/api/sessions/${encodeURIComponent(args[0] || "")}`);
  if (session.user_id !== account.user.id) {
    if (account.role !== "trainee" && session.status === "live") {
      if (current()) location.replace(`#/watch/${session.id}`);  // a coach opening a rep's call watches it
      return null;
    }
    throw new ApiError(404, "not_found", "no such call");
  }
  if (session.status === "ended" || session.transport === "vapi") {
    root.append(h("section", { class: "card narrow" }, h("h1", {}, `Call with ${session.persona_name}`),
      h("p", { class: "end-reason" }, session.status === "ended"
        ? `This call has ended. ${endReason(session.end_reason, { mine: true })}`
        : "This call runs through VAPI; it cannot be joined from this page."),
      h("a", { href: `#/review/${session.id}`, class: "button primary" }, "Review this call")));
    return null;
  }
  const persona = { ...(session.persona || {}), id: session.persona_id, name: session.persona_name };
  const call = runCall(root, session, persona, () => navigate(`#/review/${session.id}`));
  guardLeaving(() => (call.active()
    ? "Leave this call? It keeps running for a short while so you can come back (it is listed on the practice"
      + " page), then it ends. To finish it now, stay and press End call."
    : null));
  return call.cleanup;
}

// What the microphone test heard, from each 20 ms frame's level (RMS) and its samples at full scale.
const VOICE_LEVEL = 0.02;  // a frame louder than this is someone speaking (not room noise)
const CLIPPED_SAMPLES = 4;  // flat tops, not one loud peak: a frame with this many at full scale clips

export class MicCheck {
  constructor() {
    this.frames = 0;
    this.voiced = 0;
    this.clipped = 0;
    this.loudest = 0;
  }

  add(level, clipped = 0) {
    this.frames += 1;
    if (level >= VOICE_LEVEL) this.voiced += 1;
    if (clipped >= CLIPPED_SAMPLES) this.clipped += 1;
    this.loudest = Math.max(this.loudest, level);
  }

  verdict() {
    if (!this.frames) return { kind: "silent", text: "No sound came from the microphone. Check that the right one is selected." };
    if (this.clipped >= 5 && this.clipped >= this.voiced * 0.05) {
      return { kind: "clipping", text: "Too loud: your voice is clipping (distorted). Move back from the microphone or turn its input level down." };
    }
    if (this.voiced < 10) {
      return { kind: "quiet", text: "Too quiet: we heard almost nothing. Speak up, move closer, or check the microphone's input level." };
    }
    return { kind: "fine", text: "Your microphone sounds fine: we heard you clearly." };
  }
}

function runCall(root, session, persona, review) {
  const transcript = new TranscriptView({ personaLabel: persona.name });
  const status = h("p", { class: "status", role: "status" }, "Connecting…");
  const timer = h("span", { class: "timer", "aria-label": "Call time" }, "0:00");
  const via = h("span", { class: "transport", "aria-label": "Connection" }, "");
  const level = h("meter", { class: "level", min: 0, max: 0.3, value: 0, "aria-label": "Microphone level" });
  const micNote = h("p", { class: "notice", role: "alert", hidden: true });
  const endNote = h("p", { class: "end-reason", hidden: true });
  const hints = h("div", { class: "hints", "aria-live": "polite", "aria-label": "Coach hints" });
  const whispers = h("div", { class: "whispers", "aria-live": "assertive", "aria-label": "Coach whispers" });
  const muteButton = h("button", { type: "button", "aria-pressed": "false", onclick: toggleMute }, "Mute");
  const endButton = h("button", { type: "button", class: "danger", onclick: endCall }, "End call");
  const typed = h("input", { type: "text", name: "say", autocomplete: "off", maxlength: 2000 });
  const typeForm = h("form", { class: "type-instead" },
    h("label", { for: "type-instead" }, "Type instead"), typed, h("button", { type: "submit" }, "Send"));
  typed.id = "type-instead";
  const reviewLink = h("a", { href: `#/review/${session.id}`, hidden: true, class: "button primary" }, "Review this call");
  const view = h("section", { class: "call" },
    h("div", { class: "call-head" }, h("h1", {}, `Call with ${persona.name}`), status, via, timer),
    h("div", { class: "call-body" },
      h("div", { class: "call-main" }, transcript.list, typeForm),
      h("aside", { class: "call-side" }, briefDetails(persona), h("h2", {}, "Coach"), hints, whispers)),
    h("div", { class: "controls" }, muteButton, level, endButton, reviewLink), endNote, micNote);
  root.append(view);

  const player = new Player(24000);
  player.ensure();  // while the click that started the call still counts as a user gesture
  // WebRTC when the browser and the server offer it (echo cancellation, jitter buffer, Opus), else the socket.
  const live = new CallLink(session.id);
  live.addEventListener("transport", ({ detail }) => {
    via.dataset.transport = detail.transport;
    via.textContent = detail.transport === "webrtc" ? "via WebRTC" : "via WebSocket";
  });
  let ended = false;
  const onBeforeUnload = (event) => {
    if (!active()) return;
    event.preventDefault();
    event.returnValue = "";  // the browser asks "Leave site?" in its own words
  };
  window.addEventListener("beforeunload", onBeforeUnload);
  function active() {
    return !ended && live.state !== "ended" && live.state !== "closed";
  }
  window.sparring = { get live() { return live.inner; }, link: live, player, transcript };  // for the browser tests and debugging
  let started = null;
  let ticking = null;
  const mic = new Microphone((pcm) => live.sendAudio(pcm), (value) => { level.value = value; });

  live.addEventListener("state", ({ detail }) => {
    status.textContent = describe(detail.state, detail);
    status.dataset.state = detail.state;
    if (detail.state === "ended" || detail.state === "closed") finish();
  });
  live.addEventListener("audio", ({ detail }) => player.play(detail));
  live.addEventListener("event", ({ detail: e }) => {
    switch (e.type) {
      case "session.started":
        if (!started) {
          // The first one (replayed after a reload) carries when the call really started.
          started = !e.resumed && e.ts ? Math.min(e.ts, Date.now())
            : session.started_at ? new Date(session.started_at).getTime() : Date.now();
          timer.textContent = clock(Date.now() - started);
          ticking = setInterval(() => { timer.textContent = clock(Date.now() - started); }, 500);
        }
        break;
      case "transcript.partial": transcript.partial(e.speaker, e.text); break;
      case "transcript.final": transcript.final(e); break;
      case "persona.audio.end": if (e.interrupted) player.stop(); break;
      case "hint": showHint(e); break;
      case "whisper": showWhisper(e); break;
      case "session.ended":
        ended = true;
        endNote.textContent = endReason(e.reason, { mine: true });
        endNote.hidden = false;
        break;
      case "error":
        if (e.code !== "bad_message") micNote.hidden = false, micNote.textContent = e.message;
        break;
      default: break;
    }
  });
  const micStarted = mic.start().then(() => mic.stream, (e) => {
    micNote.hidden = false;
    micNote.textContent = e instanceof MicrophoneDenied ? e.message : "The microphone could not start. You can type instead.";
    muteButton.disabled = true;
    typed.focus();
    return null;
  });
  live.connect(micStarted);  // over WebRTC the microphone's track goes in the offer

  typeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = typed.value.trim();
    if (text && live.sendJson({ type: "text", text })) typed.value = "";
  });

  function showHint(e) {
    const card = h("div", { class: `hint-card ${e.severity}`, role: "note" },
      h("p", {}, e.text),
      e.evidence?.quote ? h("blockquote", {}, e.evidence.quote) : null,
      h("button", { type: "button", class: "link", "aria-label": "Dismiss hint", onclick: () => card.remove() }, "Dismiss"));
    hints.replaceChildren(card);
  }

  function showWhisper(e) {
    transcript.whisper(e);
    whispers.prepend(h("div", { class: "whisper-card", role: "note" },
      h("strong", {}, `${e.from.name} whispers:`), " ", e.text));
  }

  function toggleMute() {
    mic.muted = !mic.muted;
    if (mic.stream) mic.stream.getAudioTracks().forEach((track) => { track.enabled = !mic.muted; });
    muteButton.setAttribute("aria-pressed", String(mic.muted));
    muteButton.textContent = mic.muted ? "Unmute" : "Mute";
  }

  function endCall() {
    endButton.disabled = true;
    if (!live.sendJson({ type: "end" })) finish();
  }

  function finish() {
    clearInterval(ticking);
    mic.stop();
    endButton.disabled = true;
    muteButton.disabled = true;
    typed.disabled = true;
    reviewLink.hidden = false;
    if (live.state === "ended") status.textContent = "Call ended";
  }

  return {
    active,
    cleanup() {
      window.removeEventListener("beforeunload", onBeforeUnload);
      live.close();
      mic.stop();
      player.close();
      clearInterval(ticking);
    },
    review,
  };
}
