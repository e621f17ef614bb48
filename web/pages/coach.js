// Coach console: the org's live calls, updating; watch one with live transcript, hints, the
// conversation metrics (from the analytics API, refreshed as the call goes on), and whisper to the rep.

import { api } from "../api.js";
import { clock, errorBox, h, showError } from "../dom.js";
import { describe, LiveSocket } from "../live.js";
import { metricsView } from "../score.js";
import { TranscriptView, WHISPER_NOTE } from "../transcript.js";

const ANALYTICS_EVERY_MS = 5000;

export async function coach(root, { account }) {
  if (account.role === "trainee") {
    root.append(h("p", { class: "error", role: "alert" }, "The coach console is for coaches and admins."));
    return null;
  }
  const list = h("ul", { class: "live-calls", "aria-live": "polite", "aria-label": "Live calls" });
  const empty = h("p", { class: "hint" }, "No live calls right now. This list updates by itself.");
  const error = errorBox();
  root.append(h("section", { class: "card" }, h("h1", {}, "Live calls"), empty, list, error));
  async function refresh() {
    try {
      const { calls } = await api("/api/live");
      error.hidden = true;
      empty.hidden = calls.length > 0;
      list.replaceChildren(...calls.map((c) => h("li", { class: "live-call", "data-session": c.session_id },
        h("a", { href: `#/watch/${c.session_id}` }, `${c.rep.name || "A rep"} with ${c.persona.name}`),
        h("span", { class: "hint" }, ` · ${c.transport} · `,
          h("time", { class: "started", datetime: c.started_at }, `started ${new Date(c.started_at).toLocaleTimeString()}`),
          ` (${clock(Date.now() - new Date(c.started_at).getTime())} ago)`))));
    } catch (e) {
      showError(error, e);
    }
  }
  await refresh();
  const every = setInterval(refresh, 2000);
  return () => clearInterval(every);
}

export async function watch(root, { args }) {
  const sessionId = args[0];
  const session = await api(`/api/sessions/${sessionId}`);
  const transcript = new TranscriptView({ repLabel: session.rep_name || "Rep", personaLabel: session.persona_name,
                                          whisperNote: WHISPER_NOTE.coach });
  const status = h("p", { class: "status", role: "status" }, "Connecting…");
  const gauges = h("div", { class: "gauges" });
  const hints = h("div", { class: "hints", "aria-live": "polite", "aria-label": "Hints" });
  const text = h("input", { type: "text", id: "whisper-text", maxlength: 500, autocomplete: "off" });
  const sent = h("p", { class: "hint", "aria-live": "polite" });
  const form = h("form", { class: "whisper-form" },
    h("label", { for: "whisper-text" }, "Whisper to the rep"), text,
    h("p", { class: "hint", id: "whisper-help" }, "A typed coach note: the rep sees it on their screen, the buyer does not."), h("button", { type: "submit" }, "Whisper"), sent);
  root.append(h("section", { class: "call" },
    h("div", { class: "call-head" }, h("h1", {}, `${session.rep_name || "Rep"} with ${session.persona_name}`), status),
    h("div", { class: "call-body" },
      h("div", { class: "call-main" }, transcript.list, form),
      h("aside", { class: "call-side" }, h("h2", {}, "Conversation"), gauges, h("h2", {}, "Hints"), hints)),
    h("p", {}, h("a", { href: "#/coach" }, "Back to live calls"))));
  // The conversation metrics come from the API (one definition): refetched at most every 5 s while
  // new finals arrive, once more after the last of a burst.
  let lastFetch = 0;
  let pending = null;
  let stopped = false;
  async function fetchAnalytics() {
    pending = null;
    lastFetch = Date.now();
    try {
      const { metrics } = await api(`/api/sessions/${sessionId}/analytics`);
      if (!stopped) gauges.replaceChildren(metricsView(metrics, { compact: true }));
    } catch (e) {
      if (!stopped) gauges.replaceChildren(h("p", { class: "hint" }, `Metrics unavailable: ${e.message}`));
    }
  }
  function analyticsSoon() {
    if (pending || stopped) return;
    pending = setTimeout(fetchAnalytics, Math.max(0, lastFetch + ANALYTICS_EVERY_MS - Date.now()));
  }
  const live = new LiveSocket(sessionId, { watch: true });
  window.sparring = { live, transcript };
  live.addEventListener("state", ({ detail }) => {
    status.textContent = describe(detail.state, detail);
    status.dataset.state = detail.state;
  });
  live.addEventListener("event", ({ detail: e }) => {
    if (e.type === "transcript.final") {
      transcript.final(e);
      analyticsSoon();
    } else if (e.type === "hint") {
      transcript.hint(e);
      hints.prepend(h("div", { class: `hint-card ${e.severity}` }, h("p", {}, e.text)));
    } else if (e.type === "whisper") {
      transcript.whisper(e);
    } else if (e.type === "notice") {
      sent.textContent = e.message;
    }
  });
  live.connect();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = text.value.trim();
    if (!value) return;
    if (live.sendJson({ type: "whisper", text: value })) {
      text.value = "";
      sent.textContent = `Sent at ${clock(Date.now() - new Date(session.started_at || Date.now()).getTime())}.`;
    } else {
      sent.textContent = "Not connected right now; try again in a moment.";
    }
  });
  fetchAnalytics();
  return () => {
    stopped = true;
    clearTimeout(pending);
    live.close();
  };
}
