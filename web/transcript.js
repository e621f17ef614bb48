// The transcript as a list: partials in grey (one per speaker, replaced by the final), finals with
// speaker and time, coach whispers set apart. Shared by the practice, watch and review pages.

import { clock, h } from "./dom.js";

const WHO = { rep: "You", persona: "Buyer" };

// A whisper is a coach's typed note to the rep (text, never spoken): who sees it depends on the view.
export const WHISPER_NOTE = {
  rep: "only you see this",  // the rep in the call
  coach: "the rep sees this, the buyer does not",  // a coach watching
  review: "the rep saw this during the call",
};

export class TranscriptView {
  constructor({ repLabel = "You", personaLabel = "Buyer", whisperNote = WHISPER_NOTE.rep } = {}) {
    this.labels = { rep: repLabel, persona: personaLabel };
    this.whisperNote = whisperNote;
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
      h("span", { class: "speaker" }, `Coach note from ${event.from.name} (${this.whisperNote})`),
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
