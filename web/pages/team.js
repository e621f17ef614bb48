// Team (coaches, admins): each rep's calls this week or month, their average and per-dimension
// averages with the change since the period before, and their weakest dimension, in a table sortable
// by any column; a row opens that rep's history. Admins also set the scoring weights and pass mark.

import { api } from "../api.js";
import { errorBox, field, h, showError } from "../dom.js";
import { DIMENSION_NAME, DIMENSIONS, number } from "../score.js";

const COLUMNS = [
  { key: "name", label: "Rep", value: (r) => (r.name || r.email || "").toLowerCase(), text: true },
  { key: "calls", label: "Calls", value: (r) => r.calls },
  { key: "scored", label: "Scored", value: (r) => r.scored },
  { key: "average", label: "Average", value: (r) => r.average },
  ...DIMENSIONS.map(([key, label]) => ({ key, label, value: (r) => r.dimensions?.[key] ?? null, dimension: true })),
  { key: "weakest", label: "Weakest", value: (r) => (r.weakest ? DIMENSION_NAME[r.weakest] || r.weakest : null), text: true },
];

function change(delta) {
  if (delta === null || delta === undefined) return null;
  const rounded = Math.round(delta * 10) / 10;
  if (rounded === 0) return h("span", { class: "trend flat", title: "No change since the period before" }, " ±0");
  const up = rounded > 0;
  return h("span", { class: `trend ${up ? "up" : "down"}` },
    h("span", { "aria-hidden": "true" }, ` ${up ? "▲" : "▼"}${Math.abs(rounded)}`),
    h("span", { class: "visually-hidden" }, ` (${up ? "up" : "down"} ${Math.abs(rounded)} since the period before)`));
}

export async function team(root, { account, navigate }) {
  if (account.role === "trainee") {
    root.append(h("p", { class: "error", role: "alert" }, "The team view is for coaches and admins."));
    return null;
  }
  let period = "week";
  let sort = { key: "name", dir: "ascending" };
  let reps = [];
  const error = errorBox();
  const periodButtons = [["week", "This week"], ["month", "This month"]].map(([value, label]) =>
    h("button", { type: "button", "aria-pressed": value === period ? "true" : "false", "data-period": value,
                  onclick: () => setPeriod(value) }, label));
  const headRow = h("tr");
  const body = h("tbody");
  const table = h("table", { class: "team-table" },
    h("caption", { class: "visually-hidden" }, "Reps, sortable by each column"), h("thead", {}, headRow), body);
  root.append(h("section", { class: "card" }, h("h1", {}, "Team"),
    h("div", { class: "period", role: "group", "aria-label": "Period" }, periodButtons),
    h("p", { class: "hint" }, "Dimension averages show the change since the period before. Click a column to sort; a rep to see their calls."),
    h("div", { class: "table-scroll" }, table), error));
  if (account.role === "admin") root.append(await scoringForm());

  function header() {
    headRow.replaceChildren(...COLUMNS.map((c) => h("th", {
      scope: "col", "data-key": c.key, "aria-sort": sort.key === c.key ? sort.dir : "none",
      class: c.text ? "" : "num" },
      h("button", { type: "button", class: "sort", onclick: () => sortBy(c.key) }, c.label,
        h("span", { class: "sort-mark", "aria-hidden": "true" },
          sort.key === c.key ? (sort.dir === "ascending" ? " ▲" : " ▼") : "")))));
  }

  function rows() {
    const column = COLUMNS.find((c) => c.key === sort.key);
    const sign = sort.dir === "ascending" ? 1 : -1;
    const ordered = [...reps].sort((a, b) => {
      const x = column.value(a), y = column.value(b);
      if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;  // blanks last, either way
      if (y === null || y === undefined) return -1;
      return sign * (column.text ? String(x).localeCompare(String(y)) : x - y);
    });
    body.replaceChildren(...(ordered.length ? ordered.map((r) => {
      const href = `#/history?user=${encodeURIComponent(r.user_id)}`;
      const tr = h("tr", { class: "rep-row", "data-user": r.user_id },
        h("th", { scope: "row" }, h("a", { href }, r.name || r.email),
          " ", h("a", { class: "progress-link hint", href: `#/progress?user=${encodeURIComponent(r.user_id)}`,
                        "aria-label": `${r.name || r.email}'s progress` }, "progress")),
        h("td", { class: "num" }, String(r.calls)),
        h("td", { class: "num" }, String(r.scored)),
        h("td", { class: "num" }, number(r.average, 1)),
        DIMENSIONS.map(([key]) => h("td", { class: `num${r.weakest === key ? " weakest" : ""}` },
          number(r.dimensions?.[key], 1), change(r.trend?.[key]))),
        h("td", {}, r.weakest ? DIMENSION_NAME[r.weakest] || r.weakest : "—"));
      tr.addEventListener("click", (event) => { if (!event.target.closest("a")) navigate(href); });
      return tr;
    }) : [h("tr", {}, h("td", { colspan: COLUMNS.length, class: "hint" }, "No reps in this organization yet."))]));
  }

  function sortBy(key) {
    const column = COLUMNS.find((c) => c.key === key);
    sort = sort.key === key
      ? { key, dir: sort.dir === "ascending" ? "descending" : "ascending" }
      : { key, dir: column.text ? "ascending" : "descending" };  // numbers: best first
    header();
    rows();
  }

  async function setPeriod(value) {
    period = value;
    for (const b of periodButtons) b.setAttribute("aria-pressed", b.dataset.period === value ? "true" : "false");
    await load();
  }

  async function load() {
    try {
      reps = (await api(`/api/team?period=${period}`)).reps;
      error.hidden = true;
    } catch (e) {
      showError(error, e);
      reps = [];
    }
    header();
    rows();
  }

  await load();
  return null;
}

export async function scoringForm() {
  const error = errorBox();
  const saved = h("p", { class: "hint", role: "status" });
  let config;
  try {
    config = await api("/api/orgs/scoring");
  } catch (e) {
    showError(error, e);
    return h("section", { class: "card" }, h("h2", {}, "Scoring"), error);
  }
  const weights = Object.fromEntries(DIMENSIONS.map(([key]) => [key, h("input", {
    type: "number", min: 0, max: 10, step: 0.5, name: `weight-${key}`, value: config.weights?.[key] ?? 1, required: true })]));
  const passMark = h("input", { type: "number", min: 0, max: 100, step: 1, name: "pass_mark", value: config.pass_mark,
                                required: true });
  const button = h("button", { type: "submit", class: "primary" }, "Save scoring");
  const form = h("form", { class: "card scoring-form", novalidate: true },
    h("h2", {}, "Scoring"),
    h("p", { class: "hint" }, "How much each dimension counts toward the overall score (0 leaves it out), and the overall score a call needs to pass. Applies to calls scored from now on."),
    h("div", { class: "weights" }, DIMENSIONS.map(([key]) => field(`${DIMENSION_NAME[key]} weight`, weights[key]))),
    field("Pass mark", passMark), error, h("div", { class: "actions" }, button, saved));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    saved.textContent = "";
    button.disabled = true;
    try {
      const body = { weights: Object.fromEntries(DIMENSIONS.map(([key]) => [key, Number(weights[key].value)])),
                     pass_mark: Math.round(Number(passMark.value)) };
      const out = await api("/api/orgs/scoring", { method: "PUT", body });
      for (const [key] of DIMENSIONS) weights[key].value = out.weights[key];
      passMark.value = out.pass_mark;
      saved.textContent = "Saved.";
    } catch (e) {
      showError(error, e);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
