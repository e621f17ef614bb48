// History: my past sessions (coaches: the org's), newest first, filterable by persona and rep.

import { api } from "../api.js";
import { field, h } from "../dom.js";

export async function history(root, { account }) {
  const staff = account.role !== "trainee";
  const personas = (await api("/api/personas")).items;
  const members = staff ? (await api("/api/orgs/members")).items : [];
  const persona = h("select", { id: "filter-persona" }, h("option", { value: "" }, "All personas"),
    personas.map((p) => h("option", { value: p.id }, p.name)));
  const rep = h("select", { id: "filter-rep" }, h("option", { value: "" }, "All reps"),
    members.map((m) => h("option", { value: m.user_id }, m.name)));
  const list = h("ul", { class: "history" });
  root.append(h("section", { class: "card" }, h("h1", {}, staff ? "Your team's calls" : "Your calls"),
    h("div", { class: "filters" }, field("Persona", persona), staff ? field("Rep", rep) : null), list));
  async function load() {
    const query = new URLSearchParams({ limit: "100" });
    if (persona.value) query.set("persona_id", persona.value);
    if (staff && rep.value) query.set("user_id", rep.value);
    const { items } = await api(`/api/sessions?${query}`);
    list.replaceChildren(...(items.length ? items.map((s) => h("li", {},
      h("a", { href: s.status === "live" && staff ? `#/watch/${s.id}` : `#/review/${s.id}` },
        `${s.persona_name}${staff ? ` · ${s.rep_name || "rep"}` : ""}`),
      h("span", { class: "hint" }, ` · ${new Date(s.created_at).toLocaleString()} · ${s.status}`)))
      : [h("li", { class: "hint" }, "No calls yet.")]));
  }
  persona.addEventListener("change", load);
  rep.addEventListener("change", load);
  await load();
  return null;
}
