// Practice: pick a buyer, start a call, talk (or type), see the transcript, hints and whispers.

import { api, socketUrl } from "../api.js";
import { Microphone, MicrophoneDenied, Player } from "../audio.js";
import { clock, errorBox, h, showError } from "../dom.js";
import { describe, LiveSocket } from "../live.js";
import { TranscriptView } from "../transcript.js";

const DIFFICULTY = ["", "Easy", "Fair", "Medium", "Hard", "Very hard"];

export async function practice(root, { navigate, query }) {
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
        h("span", { class: "situation" }, p.situation.split(/(?<=\.)\s/)[0]));
      return card;
    }));
  function pick(id) {
    chosen = id;
    for (const card of cards.children) card.setAttribute("aria-checked", card.dataset.id === id ? "true" : "false");
  }
  const startButton = h("button", { type: "button", class: "primary", onclick: start }, "Start call");
  const testButton = h("button", { type: "button", onclick: testMic }, "Test microphone");
  const testStatus = h("p", { class: "hint", "aria-live": "polite" });
  const setup = h("section", { class: "card" }, h("h1", {}, "Practice a call"),
    h("p", {}, "Pick the buyer you want to practise with."), cards,
    h("div", { class: "actions" }, startButton, testButton), testStatus, error);
  root.append(setup);

  let call = null;
  let cleanupCall = () => {};
  if (preset >= 0 && query.get("start") === "1") {
    // Drop the query so a reload shows the setup instead of starting another call (no hashchange).
    history.replaceState(null, "", "#/practice");
    start();
  }

  async function testMic() {
    testButton.disabled = true;
    testStatus.textContent = "Say something: you will hear yourself back in a moment.";
    const player = new Player(16000);
    window.sparring = { echo: player };  // for the browser tests
    const ws = new WebSocket(socketUrl("/ws/echo"));
    ws.binaryType = "arraybuffer";
    ws.onmessage = ({ data }) => { if (typeof data !== "string") player.play(data); };
    const mic = new Microphone((pcm) => { if (ws.readyState === WebSocket.OPEN) ws.send(pcm); }, () => {});
    try {
      await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("The microphone test could not connect.")); });
      await mic.start();
      await new Promise((resolve) => setTimeout(resolve, 4000));
      testStatus.textContent = "Microphone test done.";
    } catch (e) {
      testStatus.textContent = e.message;
    } finally {
      mic.stop();
      ws.close();
      setTimeout(() => player.close(), 1500);
      testButton.disabled = false;
    }
  }

  async function start() {
    error.hidden = true;
    startButton.disabled = true;
    try {
      const session = await api("/api/sessions", { method: "POST", body: { persona_id: chosen } });
      const persona = personas.find((p) => p.id === chosen);
      setup.hidden = true;
      call = runCall(root, session, persona, () => navigate(`#/review/${session.id}`));
      cleanupCall = call.cleanup;
    } catch (e) {
      showError(error, e);
      startButton.disabled = false;
    }
  }

  return () => cleanupCall();
}

function runCall(root, session, persona, review) {
  const transcript = new TranscriptView({ personaLabel: persona.name });
  const status = h("p", { class: "status", role: "status" }, "Connecting…");
  const timer = h("span", { class: "timer", "aria-label": "Call time" }, "0:00");
  const level = h("meter", { class: "level", min: 0, max: 0.3, value: 0, "aria-label": "Microphone level" });
  const micNote = h("p", { class: "notice", role: "alert", hidden: true });
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
    h("div", { class: "call-head" }, h("h1", {}, `Call with ${persona.name}`), status, timer),
    h("div", { class: "call-body" },
      h("div", { class: "call-main" }, transcript.list, typeForm),
      h("aside", { class: "call-side" }, h("h2", {}, "Coach"), hints, whispers)),
    h("div", { class: "controls" }, muteButton, level, endButton, reviewLink), micNote);
  root.append(view);

  const player = new Player(24000);
  player.ensure();  // while the click that started the call still counts as a user gesture
  const live = new LiveSocket(session.id);
  window.sparring = { live, player, transcript };  // for the browser tests and debugging
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
          started = Date.now();
          ticking = setInterval(() => { timer.textContent = clock(Date.now() - started); }, 500);
        }
        break;
      case "transcript.partial": transcript.partial(e.speaker, e.text); break;
      case "transcript.final": transcript.final(e); break;
      case "persona.audio.end": if (e.interrupted) player.stop(); break;
      case "hint": showHint(e); break;
      case "whisper": showWhisper(e); break;
      case "error":
        if (e.code !== "bad_message") micNote.hidden = false, micNote.textContent = e.message;
        break;
      default: break;
    }
  });
  live.connect();
  mic.start().catch((e) => {
    micNote.hidden = false;
    micNote.textContent = e instanceof MicrophoneDenied ? e.message : "The microphone could not start. You can type instead.";
    muteButton.disabled = true;
    typed.focus();
  });

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
    cleanup() {
      live.close();
      mic.stop();
      player.close();
      clearInterval(ticking);
    },
    review,
  };
}
