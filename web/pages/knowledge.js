// Knowledge (coaches, admins): the team's playbook documents the coach chat, the live hints and the
// VAPI tool retrieve from. Upload a file (text, markdown, PDF, DOCX) or paste text, list and delete
// documents, and try a search to see what retrieval finds (score, and where in the document).

import { api, postForm } from "../api.js";
import { errorBox, field, h, showError } from "../dom.js";

const ACCEPT = ".txt,.md,.markdown,.pdf,.docx,text/plain,text/markdown,application/pdf,"
  + "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const KIND = { text: "Text", markdown: "Markdown", pdf: "PDF", docx: "Word (DOCX)" };

function size(bytes) {
  return bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MB` : bytes >= 1024 ? `${Math.round(bytes / 1024)} KB` : `${bytes} B`;
}

export async function knowledge(root, { account }) {
  if (account.role === "trainee") {
    root.append(h("section", { class: "card narrow" }, h("h1", {}, "Knowledge"),
      h("p", { class: "error", role: "alert" }, "The knowledge base is managed by coaches and admins."),
      h("p", {}, "To ask about your team's playbook, use the ", h("a", { href: "#/chat" }, "coach chat"), ".")));
    return null;
  }

  // Adding: a file, or pasted text.
  const file = h("input", { type: "file", id: "knowledge-file", accept: ACCEPT });
  const fileTitle = h("input", { type: "text", id: "knowledge-file-title", maxlength: 200, placeholder: "From the file name" });
  const fileSource = h("input", { type: "text", id: "knowledge-file-source", maxlength: 100, value: "playbook" });
  const fileProblem = errorBox();
  const fileButton = h("button", { type: "submit", class: "primary" }, "Upload");
  const fileForm = h("form", { class: "knowledge-form", novalidate: true, "aria-label": "Upload a file" },
    h("h2", {}, "Upload a file"),
    field("File", file, "Text, markdown, PDF or Word (DOCX)"),
    field("Title", fileTitle), field("Source", fileSource, "A label to group and filter documents by, e.g. playbook"),
    h("div", { class: "actions" }, fileButton), fileProblem);

  const pasteTitle = h("input", { type: "text", id: "knowledge-title", maxlength: 200 });
  const pasteSource = h("input", { type: "text", id: "knowledge-source", maxlength: 100, value: "playbook" });
  const pasteText = h("textarea", { id: "knowledge-text", rows: 8 });
  const pasteProblem = errorBox();
  const pasteButton = h("button", { type: "submit", class: "primary" }, "Add text");
  const pasteForm = h("form", { class: "knowledge-form", novalidate: true, "aria-label": "Paste text" },
    h("h2", {}, "Paste text"),
    field("Title", pasteTitle), field("Source", pasteSource), field("Text", pasteText, "Markdown headings split it into sections."),
    h("div", { class: "actions" }, pasteButton), pasteProblem);

  const status = h("p", { class: "hint", role: "status" });
  const listProblem = errorBox();
  const rows = h("tbody");
  const table = h("div", { class: "table-scroll" }, h("table", { class: "knowledge-table" },
    h("thead", {}, h("tr", {}, ["Title", "Source", "Chunks", "Size", "Model", "Added by", ""].map((t) => h("th", { scope: "col" }, t)))),
    rows));

  const q = h("input", { type: "search", id: "knowledge-q", maxlength: 1000, placeholder: "e.g. the buyer says it's too expensive" });
  const searchProblem = errorBox();
  const results = h("ol", { class: "knowledge-results", "aria-label": "Search results" });
  const mode = h("p", { class: "hint search-mode" });
  const searchForm = h("form", { class: "knowledge-search", role: "search", novalidate: true },
    field("Search the knowledge base", q), h("div", { class: "actions" }, h("button", { type: "submit" }, "Search")),
    searchProblem, mode, results);

  root.append(
    h("section", { class: "card" }, h("h1", {}, "Knowledge"),
      h("p", { class: "hint" }, "The playbook the coach chat, live hints and the phone assistant answer from. Documents are"
        + " split into passages and indexed for search by meaning and by words."),
      h("div", { class: "knowledge-add" }, fileForm, pasteForm)),
    h("section", { class: "card" }, h("h2", {}, "Documents"), status, listProblem, table),
    h("section", { class: "card" }, h("h2", {}, "Try a search"), searchForm));

  let documents = [];
  async function load() {
    try {
      documents = (await api("/api/knowledge")).items;
    } catch (e) {
      showError(listProblem, e);
      return;
    }
    listProblem.hidden = true;
    status.textContent = documents.length ? `${documents.length} document${documents.length === 1 ? "" : "s"}` : "No documents yet.";
    rows.replaceChildren(...documents.map((d) => h("tr", { class: "document-row", "data-id": d.id },
      h("td", {}, h("strong", {}, d.title), h("span", { class: "hint" }, ` ${KIND[d.kind] || d.kind}`),
        d.shared ? h("span", { class: "badge" }, "Shared") : null),
      h("td", {}, d.source),
      h("td", { class: "num" }, d.chunks),
      h("td", { class: "num" }, size(d.size_bytes)),
      h("td", {}, d.models.length ? d.models.join(", ") : h("span", { class: "hint" }, "full text only (embedding pending)")),
      h("td", {}, d.shared ? "Sparring" : d.created_by_name || "—",
        h("span", { class: "hint" }, ` ${new Date(d.created_at).toLocaleDateString()}`)),
      h("td", {}, d.shared ? null : h("button", { type: "button", class: "danger", "aria-label": `Delete ${d.title}`,
                                                   onclick: (e) => remove(d, e.currentTarget) }, "Delete")))));
  }

  async function remove(d, button) {
    button.disabled = true;
    listProblem.hidden = true;
    try {
      await api(`/api/knowledge/${d.id}`, { method: "DELETE" });
      status.textContent = `Deleted “${d.title}”.`;
      await load();
      status.textContent = `Deleted “${d.title}”. ${status.textContent}`;
    } catch (e) {
      button.disabled = false;
      showError(listProblem, e);
    }
  }

  async function added(body, form, problem, button) {
    status.textContent = `Added “${body.title}”: ${body.chunks} passage${body.chunks === 1 ? "" : "s"}`
      + (body.model ? `, embedded with ${body.model}.` : ", searchable by words (embedding follows in the background).");
    form.reset();
    problem.hidden = true;
    button.disabled = false;
    const said = status.textContent;
    await load();
    status.textContent = said;
  }

  fileForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    fileProblem.hidden = true;
    const chosen = file.files[0];
    if (!chosen) {
      showError(fileProblem, "Choose a file first.");
      return;
    }
    const form = new FormData();
    form.append("file", chosen);
    if (fileTitle.value.trim()) form.append("title", fileTitle.value.trim());
    if (fileSource.value.trim()) form.append("source", fileSource.value.trim());
    fileButton.disabled = true;
    try {
      const out = await postForm("/api/knowledge", form);
      await added({ ...out, title: fileTitle.value.trim() || chosen.name.replace(/\.[^.]+$/, "") }, fileForm, fileProblem, fileButton);
    } catch (error) {
      fileButton.disabled = false;
      showError(fileProblem, error);
    }
  });

  pasteForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    pasteProblem.hidden = true;
    const title = pasteTitle.value.trim();
    if (!title || !pasteText.value.trim()) {
      showError(pasteProblem, "Give the text a title and paste the text.");
      return;
    }
    pasteButton.disabled = true;
    try {
      const out = await api("/api/knowledge", { method: "POST",
        body: { title, text: pasteText.value, source: pasteSource.value.trim() || "playbook" } });
      await added({ ...out, title }, pasteForm, pasteProblem, pasteButton);
    } catch (error) {
      pasteButton.disabled = false;
      showError(pasteProblem, error);
    }
  });

  searchForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    searchProblem.hidden = true;
    const text = q.value.trim();
    if (!text) return;
    let out;
    try {
      out = await api(`/api/knowledge/search?${new URLSearchParams({ q: text, limit: 10 })}`);
    } catch (error) {
      showError(searchProblem, error);
      return;
    }
    mode.textContent = out.mode === "hybrid" ? `By meaning (${out.model}) and by words, fused.` : "By words only (no embedding model).";
    const chunks = new Map(documents.map((d) => [d.id, d.chunks]));
    results.replaceChildren(...(out.items.length ? out.items.map((item) => h("li", { class: "result", "data-document": item.document_id },
      h("p", { class: "result-head" }, h("strong", { class: "result-title" }, item.title || "Untitled"),
        h("span", { class: "hint" }, ` · passage ${item.chunk_index + 1}`
          + (chunks.has(item.document_id) ? ` of ${chunks.get(item.document_id)}` : "")
          + ` · score ${item.score.toFixed(4)}`
          + (item.vector_rank ? ` · meaning #${item.vector_rank}` : "")
          + (item.text_rank ? ` · words #${item.text_rank}` : ""))),
      h("blockquote", { class: "source-text" }, item.text))) : [h("li", { class: "hint" }, "Nothing matches.")]));
  });

  await load();
  return null;
}
