// History: my past sessions (coaches: the org's), newest first, with each call's duration, score and
// pass/fail; filterable by persona, rep ("#/history?user=ID" preselects one) and score.

import { api } from "../api.js";
import { field, h } from "../dom.js";
import { duration, number } from "../score.js";
import { endReason, statusWords } from "../words.js";

export async function history(root, { account, query }) {
  const staff = account.role !== "trainee";
  const [personas, members, scoring] = await Promise.all([
    api("/api/personas").then((d) => d.items),
    staff ? api("/api/orgs/members").then((d) => d.items) : [],
    // The pass mark lets the server filter by score; a trainee is not shown the org's settings (403),
    // so their filter goes by each call's own pass/fail.
    staff ? api("/api/orgs/scoring").catch(() => null) : null,
  ]);
  const passMark = scoring ? scoring.pass_mark : null;
  const persona = h("select", { id: "filter-persona" }, h("option", { value: "" }, "All personas"),
    personas.map((p) => h("option", { value: p.id }, p.name)));
  const preset = staff ? query?.get("user") : null;
  const rep = h("select", { id: "filter-rep" }, h("option", { value: "" }, "All reps"),
    members.map((m) => h("option", { value: m.user_id, selected: m.user_id === preset }, m.name)));
  const score = h("select", { id: "filter-score" },
    h("option", { value: "" }, "All calls"),
    h("option", { value: "passed" }, passMark === null ? "Passed" : `Passed (${passMark} or more)`),
    h("option", { value: "below" }, passMark === null ? "Below pass mark" : `Below pass mark (under ${passMark})`));
  const list = h("ul", { class: "history" });
  root.append(h("section", { class: "card" }, h("h1", {}, staff ? "Your team's calls" : "Your calls"),
    h("div", { class: "filters" }, field("Persona", persona), staff ? field("Rep", rep) : null, field("Score", score)),
    list));
  async function load() {
    const params = new URLSearchParams({ limit: "100" });
    if (persona.value) params.set("persona_id", persona.value);
    if (staff && rep.value) params.set("user_id", rep.value);
    if (score.value === "passed" && passMark !== null) params.set("min_score", String(passMark));
    if (score.value === "below" && passMark !== null) params.set("max_score", String(passMark));
    let { items } = await api(`/api/sessions?${params}`);
    items = items.filter((s) => s.status !== "created");  // never started: not a call (docs/protocol.md)
    // max_score is inclusive: "below" also drops a call exactly at the mark (it passed).
    if (score.value === "passed") items = items.filter((s) => s.passed === true);
    if (score.value === "below") items = items.filter((s) => s.passed === false);
    list.replaceChildren(...(items.length ? items.map((s) => h("li", { class: "call-row", "data-session": s.id },
      h("a", { href: s.status === "live" && staff ? `#/watch/${s.id}` : `#/review/${s.id}` },
        `${s.persona_name}${staff ? ` · ${s.rep_name || "rep"}` : ""}`),
      h("span", { class: "hint" }, ` · ${new Date(s.created_at).toLocaleString()} · ${statusWords(s.status)}`),
      s.end_reason ? h("span", { class: "hint end-reason" },
        ` · ${endReason(s.end_reason, { mine: s.user_id === account.user.id })}`) : null,
      s.duration_ms !== null && s.duration_ms !== undefined
        ? h("span", { class: "hint call-duration" }, ` · ${duration(s.duration_ms)}`) : null,
      s.score !== null && s.score !== undefined
        ? h("span", { class: `call-score ${s.passed ? "pass" : "fail"}` },
          `${number(s.score, 1)} · ${s.passed ? "Passed" : "Below pass mark"}`)
        : s.status === "ended" ? h("span", { class: "call-score none" }, "No score") : null))
      : [h("li", { class: "hint" }, "No calls yet.")]));
  }
  persona.addEventListener("change", load);
  rep.addEventListener("change", load);
  score.addEventListener("change", load);
  await load();
  // Uploaded recordings of real calls, with their status and score.
  const uploads = (await api("/api/uploads?limit=100")).items;
  root.append(h("section", { class: "card" }, h("h2", {}, "Uploaded calls"),
    h("ul", { class: "upload-list" }, uploads.length ? uploads.map((u) => h("li", { class: "upload-row", "data-upload": u.id },
      h("a", { href: `#/upload-review/${u.id}` }, `${u.title || u.filename}${staff ? ` · ${u.rep_name || "rep"}` : ""}`),
      h("span", { class: "hint" }, ` · ${new Date(u.created_at).toLocaleString()} · ${u.status}`),
      u.duration_ms ? h("span", { class: "hint call-duration" }, ` · ${duration(u.duration_ms)}`) : null,
      u.score !== null ? h("span", { class: `call-score ${u.passed ? "pass" : "fail"}` },
        `${number(u.score, 1)} · ${u.passed ? "Passed" : "Below pass mark"}`) : null))
      : [h("li", { class: "hint" }, h("a", { href: "#/upload" }, "Upload a recorded call"), " to get feedback on it.")])));
  return null;
}
