// Coach chat: ask the coach, who answers from the team's playbook (streamed in as it is written) with
// numbered citations that open the passage they cite; "ask about this call" (from a review) adds that
// call's transcript, metrics and scorecard. Saved conversations are listed beside it (open, delete).

import { api, postEvents } from "../api.js";
import { errorBox, h, showError } from "../dom.js";

const MAX_TURNS = 40;  // the API takes at most 40 messages: the latest ones
// The server's own label for an answer assembled without an AI model (coaching/knowledge.py).
const EXTRACTIVE_PREFIX = "No AI model is configured";

function sourceList(sources) {
  return h("ol", { class: "chat-sources", "aria-label": "Sources" }, sources.map((s) =>
    h("li", { "data-n": s.n },
      h("details", {},
        h("summary", {}, h("span", { class: "source-n" }, `[${s.n}]`), " ", s.title || "Untitled",
          Number.isInteger(s.chunk_index) ? h("span", { class: "hint" }, ` · passage ${s.chunk_index + 1}`) : null),
        h("blockquote", { class: "source-text" }, s.text)))));
}

// The answer's text with each [n] that names a source made a link opening that source's passage.
function answerText(text, sources, open) {
  const byN = new Map(sources.map((s) => [s.n, s]));
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(/\[(\d+)\]/g)) {
    const n = Number(match[1]);
    const source = byN.get(n);
    if (!source) continue;
    parts.push(text.slice(last, match.index));
    parts.push(h("a", { href: "#/chat", class: "citation", "data-n": n,
                        "aria-label": `Source ${n}: ${source.title || "untitled"}`,
                        onclick: (e) => { e.preventDefault(); open(n); } }, `[${n}]`));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

class AnswerView {
  constructor() {
    this.text = "";
    this.sources = [];
    this.body = h("div", { class: "chat-text", "aria-live": "polite" });
    this.mode = h("p", { class: "notice answer-mode", hidden: true });
    this.sourcesBox = h("div", { class: "chat-sources-box" });
    this.el = h("li", { class: "chat-message assistant", "data-role": "assistant" },
      h("p", { class: "chat-who" }, "Coach"), this.mode, this.body, this.sourcesBox);
  }

  delta(text) {
    this.text += text;
    this.body.textContent = this.text;
    this.el.dataset.deltas = String(Number(this.el.dataset.deltas || 0) + 1);
  }

  finish(sources, mode) {
    this.sources = sources;
    let text = this.text;
    const extractive = mode === "extractive" || (!mode && text.startsWith(EXTRACTIVE_PREFIX));
    this.el.dataset.answer = extractive ? "extractive" : "llm";
    if (extractive) {
      // The server puts its label on the first line: shown as the label it is.
      const cut = text.indexOf("\n");
      this.mode.textContent = cut > 0 ? text.slice(0, cut) : text;
      this.mode.hidden = false;
      text = cut > 0 ? text.slice(cut).trim() : "";
    }
    this.body.replaceChildren(...answerText(text, sources, (n) => this.open(n)));
    this.sourcesBox.replaceChildren(sources.length ? sourceList(sources) : "");
  }

  open(n) {
    const item = this.sourcesBox.querySelector(`li[data-n="${n}"]`);
    if (!item) return;
    for (const li of this.sourcesBox.querySelectorAll("li")) li.classList.toggle("cited", li === item);
    const details = item.querySelector("details");
    details.open = true;
    details.querySelector("summary").focus();
    item.scrollIntoView({ block: "nearest" });
  }
}

function question(text) {
  return h("li", { class: "chat-message user", "data-role": "user" }, h("p", { class: "chat-who" }, "You"),
    h("div", { class: "chat-text" }, text));
}

export async function chat(root, { account, args, query }) {
  let conversationId = args[0] || null;
  let sessionId = query.get("session") || null;
  const turns = [];
  let controller = null;

  const thread = h("ol", { class: "chat-thread", "aria-label": "Conversation" });
  const about = h("div", { class: "chat-about", hidden: true });
  const problem = errorBox();
  const input = h("textarea", { id: "chat-question", rows: 3, maxlength: 8000,
                                placeholder: "e.g. How do I handle “we already have a vendor”?" });
  const ask = h("button", { type: "submit", class: "primary" }, "Ask");
  const form = h("form", { class: "chat-form", novalidate: true },
    h("label", { for: "chat-question" }, "Your question"), input, h("div", { class: "actions" }, ask));
  const list = h("ul", { class: "conversations", "aria-label": "Conversations" });
  const listProblem = errorBox();

  root.append(h("div", { class: "chat-page" },
    h("aside", { class: "card chat-side" }, h("h2", {}, "Conversations"),
      h("a", { class: "button", href: "#/chat" }, "New conversation"), listProblem, list),
    h("section", { class: "card chat-main" }, h("h1", {}, "Coach chat"),
      h("p", { class: "hint" }, "Ask about discovery, objections, qualification or closing: the coach answers from your"
        + " team's playbook and cites it. Click a number like [1] to read the passage."),
      about, thread, problem, form)));

  async function showAbout(id) {
    about.hidden = false;
    about.replaceChildren(h("p", { class: "hint" }, "Loading the call…"));
    try {
      const s = await api(`/api/sessions/${id}`);
      about.replaceChildren(h("p", { class: "notice about-call", "data-session": id },
        `About ${s.user_id === account.user.id ? "your" : `${s.rep_name || "a rep"}'s`} call with ${s.persona_name} on ${new Date(s.created_at).toLocaleString()}: its transcript,`
        + " metrics and scorecard are part of every answer. ", h("a", { href: `#/review/${id}` }, "Back to the review")));
      input.placeholder = "e.g. What should I have said when the buyer raised price?";
    } catch (e) {
      about.replaceChildren(h("p", { class: "error", role: "alert" }, `This call can't be used: ${e.message}`));
    }
  }

  async function loadList() {
    try {
      const items = (await api("/api/chat/conversations")).items;
      list.replaceChildren(...(items.length ? items.map((c) => h("li", {
        class: c.id === conversationId ? "conversation current" : "conversation", "data-id": c.id },
        h("a", { href: `#/chat/${c.id}`, "aria-current": c.id === conversationId ? "page" : null }, c.title),
        h("span", { class: "hint" }, ` ${new Date(c.updated_at).toLocaleDateString()}`, c.session_id ? " · about a call" : ""),
        h("button", { type: "button", class: "link delete", "aria-label": `Delete conversation: ${c.title}`,
                      onclick: () => remove(c) }, "Delete"))) : [h("li", { class: "hint" }, "No conversations yet.")]));
    } catch (e) {
      showError(listProblem, e);
    }
  }

  async function remove(c) {
    listProblem.hidden = true;
    try {
      await api(`/api/chat/conversations/${c.id}`, { method: "DELETE" });
    } catch (e) {
      showError(listProblem, e);
      return;
    }
    if (c.id === conversationId) {
      location.hash = "#/chat";
      return;
    }
    loadList();
  }

  async function send(e) {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    problem.hidden = true;
    turns.push({ role: "user", content: text });
    thread.append(question(text));
    const answer = new AnswerView();
    thread.append(answer.el);
    answer.el.dataset.state = "streaming";
    input.value = "";
    ask.disabled = true;
    controller = new AbortController();
    const body = { messages: turns.slice(-MAX_TURNS) };
    if (sessionId) body.session_id = sessionId;
    if (conversationId) body.conversation_id = conversationId;
    let sources = [];
    try {
      for await (const { event, data } of postEvents("/api/chat", body, { signal: controller.signal })) {
        if (event === "delta") answer.delta(data.text);
        else if (event === "sources") sources = data.items;
        else if (event === "done") {
          answer.finish(sources, data.answer);
          answer.el.dataset.state = "done";
          turns.push({ role: "assistant", content: answer.text });
          if (!conversationId && data.conversation_id) {
            conversationId = data.conversation_id;
            // The address names the conversation (a reload reopens it) without re-rendering the page.
            history.replaceState(null, "", `#/chat/${conversationId}`);
          }
          loadList();
        }
      }
      if (answer.el.dataset.state !== "done") throw new Error("The answer stopped before it was finished. Please ask again.");
    } catch (error) {
      if (error.name === "AbortError") return;
      answer.el.remove();
      thread.lastElementChild?.remove();
      turns.splice(-1, 1);
      input.value = text;
      showError(problem, error);
    } finally {
      controller = null;
      ask.disabled = false;
    }
  }

  form.addEventListener("submit", send);
  input.addEventListener("keydown", (e) => {  // Enter asks; Shift+Enter is a new line
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  if (conversationId) {
    const c = await api(`/api/chat/conversations/${conversationId}`);
    sessionId = c.session_id || sessionId;
    for (const m of c.messages) {
      turns.push({ role: m.role, content: m.content });
      if (m.role === "user") thread.append(question(m.content));
      else {
        const answer = new AnswerView();
        answer.delta(m.content);
        answer.finish(m.sources || [], null);
        answer.el.dataset.state = "done";
        thread.append(answer.el);
      }
    }
  }
  if (sessionId) showAbout(sessionId);
  loadList();
  input.focus();
  return () => { if (controller) controller.abort(); };
}
