// Personas (coaches, admins): the built-in buyers and the organization's own; create one, edit it,
// duplicate a built-in to start from, and try it in a typed call. The server validates with the same
// rules as the persona files and names the field; the error is shown next to it.

import { api } from "../api.js";
import { CALL_TYPES, callTypeName } from "../brief.js";
import { errorBox, h, showError } from "../dom.js";

const DIFFICULTY = [[1, "1 · Easy"], [2, "2 · Fair"], [3, "3 · Medium"], [4, "4 · Hard"], [5, "5 · Very hard"]];
const lines = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);
const words = (text) => text.split(",").map((w) => w.trim()).filter(Boolean);

export async function personas(root, { account, args, navigate }) {
  if (account.role === "trainee") {
    root.append(h("section", { class: "card narrow" }, h("h1", {}, "Personas"),
      h("p", { class: "error", role: "alert" }, "The persona builder is for coaches and admins.")));
    return null;
  }
  const all = (await api("/api/personas")).items;
  if (args[0] === "new" || args[0] === "edit" || args[0] === "copy") {
    const source = args[1] ? all.find((p) => p.id === args[1]) : null;
    if (args[0] !== "new" && !source) throw Object.assign(new Error("no such persona"), { status: 404 });
    if (args[0] === "edit" && source.built_in) {
      navigate(`#/personas/copy/${encodeURIComponent(source.id)}`);
      return null;
    }
    editor(root, { navigate, source, editing: args[0] === "edit" });
    return null;
  }
  const item = (p) => h("li", { class: "persona-item", "data-id": p.id },
    h("div", {}, h("strong", {}, p.name), h("span", { class: "hint" }, ` ${p.title}, ${p.company} · difficulty ${p.difficulty}`
      + ` · ${callTypeName(p.brief?.call_type || "discovery")}`)),
    h("div", { class: "actions" },
      p.built_in ? null : h("a", { class: "button", href: `#/personas/edit/${encodeURIComponent(p.id)}`,
                                   "aria-label": `Edit ${p.name}` }, "Edit"),
      h("a", { class: "button", href: `#/personas/copy/${encodeURIComponent(p.id)}`, "aria-label": `Duplicate ${p.name}` }, "Duplicate"),
      h("a", { class: "button", href: `#/practice?persona=${encodeURIComponent(p.id)}&start=1`,
               "aria-label": `Try a typed call with ${p.name}` }, "Try a call")));
  const own = all.filter((p) => !p.built_in);
  root.append(h("section", { class: "card" }, h("h1", {}, "Personas"),
    h("p", {}, "The buyers your reps practise with. Duplicate a built-in one to start from it, or create your own."),
    h("div", { class: "actions" }, h("a", { class: "button primary", href: "#/personas/new" }, "New persona")),
    h("h2", {}, "Your organization's"),
    own.length ? h("ul", { class: "persona-list own" }, own.map(item)) : h("p", { class: "hint" }, "None yet."),
    h("h2", {}, "Built in"), h("ul", { class: "persona-list built-in" }, all.filter((p) => p.built_in).map(item))));
  return null;
}

let uid = 0;

// One labelled control bound to a field path of the persona ("brief.goal", "pains[0].keywords").
function control(label, path, input, hint) {
  const id = `pf-${(uid += 1)}`;
  input.id = id;
  input.dataset.field = path;
  const err = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hintEl, err);
}

function text(value = "", attrs = {}) {
  return h("input", { type: "text", value: value ?? "", ...attrs });
}

function area(value = "", rows = 2) {
  const el = h("textarea", { rows });
  el.value = value ?? "";
  return el;
}

function editor(root, { navigate, source, editing }) {
  const p = source ? structuredClone(source) : {};
  const b = p.brief || {};
  const f = {
    name: text(editing || !source ? p.name : `${p.name} (copy)`, { maxlength: 100 }),
    title: text(p.title, { maxlength: 100 }), company: text(p.company, { maxlength: 100 }),
    industry: text(p.industry, { maxlength: 100 }),
    difficulty: h("select", {}, DIFFICULTY.map(([v, l]) => h("option", { value: v, selected: v === (p.difficulty || 3) }, l))),
    situation: area(p.situation), personality: area(p.personality),
    goals: area((p.goals || []).join("\n"), 3),
    opening_line: text(p.opening_line, { maxlength: 2000 }), closing_line: text(p.closing_line, { maxlength: 2000 }),
    fillers: area((p.fillers || []).join("\n"), 3),
    "brief.sells": text(b.sells, { maxlength: 1000 }),
    "brief.call_type": h("select", {}, CALL_TYPES.map(([v, l]) => h("option", { value: v, selected: v === (b.call_type || "discovery") }, l))),
    "brief.goal": area(b.goal), "brief.background": area(b.background), "brief.good_outcome": area(b.good_outcome),
    "next_step.min_pains": h("input", { type: "number", min: 0, max: 10, step: 1, value: p.next_step?.min_pains ?? 1 }),
    "next_step.accept": text(p.next_step?.accept), "next_step.decline": text(p.next_step?.decline),
  };
  const field = (label, key, hint) => control(label, key, f[key], hint);
  const pains = h("ol", { class: "repeat pains" });
  const objections = h("ol", { class: "repeat objections" });
  const group = (list, kind, values) => {
    const i = list.children.length;
    const at = (name) => `${kind}[${i}].${name}`;
    const rows = kind === "pains"
      ? [["Id", "id", text(values.id, { pattern: "[a-z0-9-]+" }), "Short, unique: letters, digits, dashes."],
         ["Keywords", "keywords", text((values.keywords || []).join(", ")), "Comma-separated words a discovery question uses to earn it."],
         ["What the buyer reveals", "reveal", area(values.reveal)]]
      : [["Id", "id", text(values.id), "Short, unique: letters, digits, dashes."],
         ["Triggers", "triggers", text((values.triggers || []).join(", ")), "Comma-separated words in the rep's statements that raise it."],
         ["What the buyer objects", "text", area(values.text)],
         ["Settled by", "resolved_by", text((values.resolved_by || []).join(", ")), "Comma-separated words of an answer that settles it."],
         ["The buyer's reply once settled", "resolved_reply", area(values.resolved_reply)]];
    const li = h("li", { class: "repeat-item" },
      h("fieldset", {}, h("legend", {}, `${kind === "pains" ? "Pain" : "Objection"} ${i + 1}`),
        rows.map(([label, name, input, hint]) => control(label, at(name), input, hint)),
        h("button", { type: "button", class: "link", onclick: () => { li.remove(); } },
          `Remove ${kind === "pains" ? "pain" : "objection"} ${i + 1}`)));
    list.append(li);
    return li;
  };
  for (const pain of (p.pains?.length ? p.pains : [{}])) group(pains, "pains", pain);
  for (const objection of (p.objections?.length ? p.objections : [{}])) group(objections, "objections", objection);

  const error = errorBox();
  const saved = h("p", { class: "hint", role: "status" });
  const preview = h("div", { class: "opening-preview", "aria-live": "polite" });
  const save = h("button", { type: "submit", class: "primary" }, "Save persona");
  let savedId = editing ? p.id : null;
  const tryButton = h("button", { type: "button", hidden: !savedId,
                                  onclick: () => navigate(`#/practice?persona=${encodeURIComponent(savedId)}&start=1`) },
    "Try a typed call");
  const previewButton = h("button", { type: "button", onclick: () => {
    const name = f.name.value.trim() || "The buyer";
    const opening = f.opening_line.value.trim();
    preview.replaceChildren(opening
      ? h("figure", {}, h("figcaption", {}, `${name} answers the phone:`), h("blockquote", {}, opening))
      : h("p", { class: "hint" }, "Write the opening line first."));
  } }, "Preview the opening");
  const heading = editing ? `Edit ${p.name}` : source ? `Duplicate ${p.name}` : "New persona";
  const form = h("form", { class: "card persona-form", novalidate: true },
    h("h1", {}, heading),
    h("p", { class: "hint" }, "Reps see who the buyer is and the brief; the pains and objections stay hidden until the call earns them."),
    h("fieldset", {}, h("legend", {}, "The buyer"),
      h("div", { class: "grid-2" }, field("Name", "name"), field("Title", "title"), field("Company", "company"),
        field("Industry", "industry"), field("Difficulty", "difficulty")),
      field("Situation", "situation"), field("Personality", "personality"),
      field("Goals", "goals", "One per line.")),
    h("fieldset", {}, h("legend", {}, "The brief reps read first"),
      field("What the rep sells", "brief.sells"), field("Call type", "brief.call_type"), field("The rep's goal", "brief.goal"),
      field("The buyer's background", "brief.background", "Empty: the situation above."),
      field("A good outcome", "brief.good_outcome")),
    h("fieldset", {}, h("legend", {}, "Pains (hidden until a discovery question earns one)"), pains,
      h("button", { type: "button", onclick: () => group(pains, "pains", {}).querySelector("input").focus() }, "Add a pain")),
    h("fieldset", {}, h("legend", {}, "Objections"), objections,
      h("button", { type: "button", onclick: () => group(objections, "objections", {}).querySelector("input").focus() },
        "Add an objection")),
    h("fieldset", {}, h("legend", {}, "What the buyer says"),
      field("Opening line", "opening_line", "The first thing the buyer says when the call starts."),
      h("div", { class: "actions" }, previewButton), preview,
      field("Closing line", "closing_line"),
      field("Fillers", "fillers", "One per line: what the buyer says when nothing else fits.")),
    h("fieldset", {}, h("legend", {}, "Next step"),
      field("Pains the rep must uncover first", "next_step.min_pains"),
      field("Accepts with", "next_step.accept"), field("Declines with", "next_step.decline")),
    error,
    h("div", { class: "actions" }, save, tryButton, h("a", { href: "#/personas" }, "Back to personas"), saved));

  function value() {
    const items = (list, names) => [...list.children].map((li) => Object.fromEntries(names.map(([name, kind]) => {
      const input = li.querySelector(`[data-field$=".${name}"]`);
      return [name, kind === "words" ? words(input.value) : input.value.trim()];
    })));
    const data = {
      name: f.name.value.trim(), title: f.title.value.trim(), company: f.company.value.trim(),
      industry: f.industry.value.trim(), difficulty: Number(f.difficulty.value),
      situation: f.situation.value.trim(), personality: f.personality.value.trim(), goals: lines(f.goals.value),
      opening_line: f.opening_line.value.trim(), closing_line: f.closing_line.value.trim(), fillers: lines(f.fillers.value),
      brief: { sells: f["brief.sells"].value.trim(), call_type: f["brief.call_type"].value, goal: f["brief.goal"].value.trim(),
               background: f["brief.background"].value.trim(), good_outcome: f["brief.good_outcome"].value.trim() },
      next_step: { min_pains: Number(f["next_step.min_pains"].value), accept: f["next_step.accept"].value.trim(),
                   decline: f["next_step.decline"].value.trim() },
      pains: items(pains, [["id"], ["keywords", "words"], ["reveal"]]),
      objections: items(objections, [["id"], ["triggers", "words"], ["text"], ["resolved_by", "words"], ["resolved_reply"]]),
    };
    if (p.voices) data.voices = p.voices;
    return data;
  }

  function clearErrors() {
    for (const el of form.querySelectorAll(".field-error")) { el.hidden = true; el.textContent = ""; }
    for (const el of form.querySelectorAll("[aria-invalid]")) {
      el.removeAttribute("aria-invalid");
      el.setAttribute("aria-describedby", el.getAttribute("aria-describedby").replace(/\s*\S+-error$/, "") || "");
      if (!el.getAttribute("aria-describedby")) el.removeAttribute("aria-describedby");
    }
  }

  // "pains[0].keywords[2]" → the keywords box of pain 1; "pains[1]" → its first box; "pains" → the add button's list.
  function inputFor(path) {
    let at = String(path || "");
    while (at) {
      const exact = form.querySelector(`[data-field="${CSS.escape(at)}"]`);
      if (exact) return exact;
      const inside = form.querySelector(`[data-field^="${CSS.escape(at)}."]`);
      if (inside) return inside;
      at = at.replace(/(\[\d+\]|\.[^.[\]]+)$/, "");
      if (at === path) break;
    }
    return null;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    error.hidden = true;
    saved.textContent = "";
    save.disabled = true;
    try {
      const out = editing
        ? await api(`/api/personas/${encodeURIComponent(p.id)}`, { method: "PUT", body: value() })
        : await api("/api/personas", { method: "POST", body: value() });
      savedId = out.id;
      tryButton.hidden = false;
      saved.textContent = `Saved ${out.name}. Reps can practise with it now.`;
      if (!editing) {
        editing = true;
        p.id = out.id;
        history.replaceState(null, "", `#/personas/edit/${encodeURIComponent(out.id)}`);
      }
    } catch (e) {
      const input = e.status === 400 ? inputFor(e.field) : null;
      if (input) {
        const err = input.closest(".field").querySelector(".field-error");
        err.textContent = e.message;
        err.hidden = false;
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", `${input.getAttribute("aria-describedby") || ""} ${err.id}`.trim());
        input.focus();
        showError(error, new Error(`Check the highlighted field: ${e.message}`));
      } else {
        showError(error, e);
      }
    } finally {
      save.disabled = false;
    }
  });
  root.append(form);
  f.name.focus();
}
