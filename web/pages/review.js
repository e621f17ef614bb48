// Call review: the transcript with speaker and time, hints where they fired, conversation metrics,
// and the recording, whose player follows the transcript.

import { api } from "../api.js";
import { h } from "../dom.js";
import { metricsOf, metricsView, TranscriptView } from "../transcript.js";

export async function review(root, { args }) {
  const sessionId = args[0];
  const session = await api(`/api/sessions/${sessionId}`);
  const events = (await api(`/api/sessions/${sessionId}/events?limit=1000`)).items;
  const transcript = new TranscriptView({ repLabel: session.rep_name || "Rep", personaLabel: session.persona_name });
  const lines = [];
  for (const e of events) {
    if (e.type === "transcript.final") lines.push(transcript.final(e));
    else if (e.type === "hint") transcript.hint(e);
    else if (e.type === "whisper") transcript.whisper(e);
  }
  if (!lines.length) {
    for (const s of session.transcript) lines.push(transcript.final({ ...s, seq: s.seq || 0 }));
  }
  const finals = events.filter((e) => e.type === "transcript.final");
  const ended = events.find((e) => e.type === "session.ended");
  const audio = session.has_recording
    ? h("audio", { controls: true, preload: "metadata", src: `/api/sessions/${sessionId}/recording` })
    : h("p", { class: "hint" }, "No recording for this call.");
  root.append(h("section", { class: "card" },
    h("h1", {}, `Review: ${session.rep_name || "Rep"} with ${session.persona_name}`),
    h("p", { class: "hint" }, `${new Date(session.created_at).toLocaleString()} · ${session.status}`,
      ended ? ` · ${Math.round(ended.duration_ms / 1000)} s · ended: ${ended.reason}` : ""),
    h("h2", {}, "Conversation"), metricsView(metricsOf(finals.length ? finals : session.transcript)),
    h("h2", {}, "Recording"), audio,
    h("h2", {}, "Transcript"), transcript.list,
    h("p", { class: "hint" }, "Scores appear here once scoring is available.")));
  if (audio.tagName === "AUDIO") {
    audio.addEventListener("timeupdate", () => {
      const ms = audio.currentTime * 1000;
      let current = null;
      for (const line of lines) if (Number(line.dataset.start) <= ms) current = line;
      for (const line of lines) line.classList.toggle("current", line === current);
    });
    for (const line of lines) {
      line.tabIndex = 0;
      line.title = "Play from here";
      const seek = () => { audio.currentTime = Number(line.dataset.start) / 1000; audio.play().catch(() => {}); };
      line.addEventListener("click", seek);
      line.addEventListener("keydown", (e) => { if (e.key === "Enter") seek(); });
    }
  }
  return null;
}
