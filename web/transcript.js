// The transcript as a list: partials in grey (one per speaker, replaced by the final), finals with
// speaker and time, coach whispers set apart. Shared by the practice, watch and review pages.

import { clock, h } from "./dom.js";

const WHO = { rep: "You", persona: "Buyer" };

export class TranscriptView {
  constructor({ repLabel = "You", personaLabel = "Buyer" } = {}) {
    this.labels = { rep: repLabel, persona: personaLabel };
    this.list = h("ol", { class: "transcript", "aria-live": "polite", "aria-label": "Transcript" });
    this.partials = {};
  }

  partial(speaker, text) {
    let item = this.partials[speaker];
    if (!item) {
      item = h("li", { class: `line partial ${speaker}` }, h("span", { class: "speaker" }, this.labels[speaker] || WHO[speaker]),
               h("span", { class: "text" }));
      this.partials[speaker] = item;
      this.list.append(item);
    }
    item.querySelector(".text").textContent = text;
    this.scroll();
  }

  final(event) {
    const item = h("li", { class: `line final ${event.speaker}`, "data-seq": event.seq, "data-start": event.start_ms },
      h("span", { class: "speaker" }, this.labels[event.speaker] || event.speaker),
      h("time", { class: "at" }, clock(event.start_ms)),
      h("span", { class: "text" }, event.text));
    const partial = this.partials[event.speaker];
    if (partial) {
      partial.replaceWith(item);
      delete this.partials[event.speaker];
    } else {
      this.list.append(item);
    }
    this.scroll();
    return item;
  }

  whisper(event) {
    this.list.append(h("li", { class: "line whisper", "data-seq": event.seq },
      h("span", { class: "speaker" }, `Coach ${event.from.name} (only you hear this)`),
      h("span", { class: "text" }, event.text)));
    this.scroll();
  }

  hint(event) {
    this.list.append(h("li", { class: `line hint-line ${event.severity}`, "data-seq": event.seq },
      h("span", { class: "speaker" }, "Hint"), h("span", { class: "text" }, event.text)));
    this.scroll();
  }

  scroll() {
    this.list.scrollTop = this.list.scrollHeight;
  }
}

export function metricsOf(finals) {
  // Talk ratio, longest rep monologue, rep questions and pace, from the finals.
  const talk = { rep: 0, persona: 0 };
  let words = 0, repMs = 0, questions = 0, longest = 0, run = 0, lastSpeaker = null;
  for (const f of finals) {
    const count = f.text.split(/\s+/).filter(Boolean).length;
    const measured = Math.max(0, f.end_ms - f.start_ms);
    const ms = measured || count * 400;  // a typed turn has no duration: as if said at 150 words a minute
    talk[f.speaker] = (talk[f.speaker] || 0) + ms;
    if (f.speaker === "rep") {
      if (measured) {  // pace only from what was spoken
        words += count;
        repMs += measured;
      }
      questions += (f.text.match(/\?/g) || []).length;
      run = lastSpeaker === "rep" ? run + ms : ms;
      longest = Math.max(longest, run);
    }
    lastSpeaker = f.speaker;
  }
  const total = talk.rep + talk.persona;
  return {
    talkRatio: total ? talk.rep / total : 0,
    longestMonologueS: longest / 1000,
    questions,
    wpm: repMs >= 3000 ? words / (repMs / 60000) : 0,
  };
}

export function metricsView(m) {
  return h("dl", { class: "metrics" },
    h("div", {}, h("dt", {}, "Talk ratio"), h("dd", {}, `${Math.round(m.talkRatio * 100)}% you`),
      h("meter", { min: 0, max: 1, low: 0.3, high: 0.65, optimum: 0.43, value: m.talkRatio.toFixed(2),
                   "aria-label": "Talk ratio" })),
    h("div", {}, h("dt", {}, "Longest monologue"), h("dd", {}, `${Math.round(m.longestMonologueS)} s`)),
    h("div", {}, h("dt", {}, "Questions"), h("dd", {}, String(m.questions))),
    h("div", {}, h("dt", {}, "Pace"), h("dd", {}, m.wpm ? `${Math.round(m.wpm)} words/min` : "—"),
      h("meter", { min: 0, max: 250, low: 120, high: 180, optimum: 160, value: Math.round(m.wpm), "aria-label": "Pace" })));
}
