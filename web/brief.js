// The scenario brief a rep reads before and during a call: what they sell, the call type, their goal,
// the buyer's background and what a good outcome is (the persona API's public view carries it).

import { h } from "./dom.js";

export const CALL_TYPES = [["cold call", "Cold call"], ["discovery", "Discovery"], ["demo", "Demo"],
                           ["negotiation", "Negotiation"]];
const CALL_TYPE = Object.fromEntries(CALL_TYPES);

function briefOf(persona) {
  const brief = (persona && persona.brief) || {};
  return { sells: brief.sells || "", call_type: brief.call_type || "discovery", goal: brief.goal || "",
           background: brief.background || persona?.situation || "", good_outcome: brief.good_outcome || "" };
}

export function callTypeName(value) {
  return CALL_TYPE[value] || value;
}

// One or two lines for a persona card.
export function briefSummary(persona) {
  const brief = briefOf(persona);
  return h("span", { class: "brief-summary" },
    h("span", { class: "call-type" }, callTypeName(brief.call_type)),
    brief.sells ? h("span", { class: "sells" }, ` · You sell: ${brief.sells}`) : null,
    brief.background ? h("span", { class: "background" }, brief.background.split(/(?<=\.)\s/)[0]) : null);
}

// The whole brief, with its own heading (level 2 by default).
export function briefDetails(persona, { level = 2, id = "brief-heading" } = {}) {
  const brief = briefOf(persona);
  const rows = [["Call type", callTypeName(brief.call_type)], ["You sell", brief.sells], ["Your goal", brief.goal],
                ["The buyer", brief.background], ["A good outcome", brief.good_outcome]].filter(([, v]) => v);
  return h("section", { class: "brief", "aria-labelledby": id },
    h(`h${level}`, { id }, "Your brief"),
    h("dl", {}, rows.map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value)))));
}
