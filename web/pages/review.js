// Call review: the scorecard (streamed in as it is made), conversation metrics with their reference
// bands, the recording, whose player follows the transcript, and the transcript with hints.

import { api } from "../api.js";
import { clock, errorBox, h, showError } from "../dom.js";
import { DIMENSIONS, metricsView, number, scoreBar } from "../score.js";
import { TranscriptView, WHISPER_NOTE } from "../transcript.js";
import { endReason, statusWords } from "../words.js";

const STAGE = { queued: "Waiting for a scorer…", running: "Scoring…" };
const SCORER = (name) => (name === "heuristic" ? "the built-in rubric scorer"
  : name?.startsWith("llm:") ? `the AI scorer (${name.slice(4)})` : name);

export async function review(root, { account, args, navigate }) {
  const sessionId = args[0];
  const session = await api(`/api/sessions/${sessionId}`);
  const events = (await api(`/api/sessions/${sessionId}/events?limit=1000`)).items;
  const transcript = new TranscriptView({ repLabel: session.rep_name || "Rep", personaLabel: session.persona_name,
                                          whisperNote: WHISPER_NOTE.review });
  const lines = [];
  for (const e of events) {
    if (e.type === "transcript.final") lines.push(transcript.final(e));
    else if (e.type === "hint") transcript.hint(e);
    else if (e.type === "whisper") transcript.whisper(e);
  }
  if (!lines.length) {
    for (const s of session.transcript) lines.push(transcript.final({ ...s, seq: s.seq || 0 }));
  }
  const ended = events.find((e) => e.type === "session.ended");
  const audio = session.has_recording
    ? h("audio", { controls: true, preload: "metadata", src: `/api/sessions/${sessionId}/recording` })
    : h("p", { class: "hint" }, "No recording for this call.");
  const staff = account.role === "coach" || account.role === "admin";
  const mayRescore = staff || session.user_id === account.user.id;

  const metrics = h("div", { class: "metrics-box" }, h("p", { class: "hint" }, "Loading the conversation metrics…"));
  const card = new ScorecardView({ seek, mayRescore, rescore, tryAgain: () =>
    navigate(`#/practice?persona=${encodeURIComponent(session.persona_id)}&start=1`) });
  root.append(
    h("section", { class: "card" },
      h("h1", {}, `Review: ${session.rep_name || "Rep"} with ${session.persona_name}`),
      h("p", { class: "hint" }, `${new Date(session.created_at).toLocaleString()} · ${statusWords(session.status)}`,
        ended ? ` · ${Math.round(ended.duration_ms / 1000)} s · ` : "",
        ended || session.end_reason ? h("span", { class: "end-reason" },
          endReason(ended?.reason || session.end_reason, { mine: session.user_id === account.user.id })) : null),
      h("div", { class: "actions" },
        h("a", { class: "button", href: `#/chat?session=${encodeURIComponent(sessionId)}` }, "Ask about this call"))),
    card.el,
    h("section", { class: "card" },
      h("h2", {}, "Conversation"), metrics,
      h("h2", {}, "Recording"), audio,
      h("h2", {}, "Transcript"), transcript.list));

  function seek(ms) {
    let current = null;
    for (const line of lines) if (Number(line.dataset.start) <= ms + 250) current = line;
    current = current || lines[0];
    if (audio.tagName === "AUDIO") {
      audio.currentTime = ms / 1000;
      audio.play().catch(() => {});
    } else if (current) {
      for (const line of lines) line.classList.toggle("current", line === current);
    }
    if (current) {  // within the transcript's own scroll box: the page stays where the rep clicked
      const list = transcript.list;
      list.scrollTop += current.getBoundingClientRect().top - list.getBoundingClientRect().top - 8;
    }
  }

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
      const play = () => seek(Number(line.dataset.start));
      line.addEventListener("click", play);
      line.addEventListener("keydown", (e) => { if (e.key === "Enter") play(); });
    }
  }

  api(`/api/sessions/${sessionId}/analytics`)
    .then((data) => { if (!card.scorecard) metrics.replaceChildren(metricsView(data.metrics)); })
    .catch((e) => { if (!card.scorecard) metrics.replaceChildren(h("p", { class: "hint" }, `Metrics unavailable: ${e.message}`)); });
  card.onScorecard = (scorecard) => {
    if (scorecard.metrics && Object.keys(scorecard.metrics).length) metrics.replaceChildren(metricsView(scorecard.metrics));
  };

  // The scorecard: the stream first (a late subscriber gets the current state, including a finished
  // scorecard), GET score only when the stream cannot say, so a call still being scored costs no 404.
  let stream = null;
  let retry = null;
  let polls = 0;
  let waits = 0;
  function subscribe() {
    close();
    let drops = 0;
    let finished = null;
    const es = new EventSource(`/api/sessions/${sessionId}/score/stream`);
    stream = es;
    es.addEventListener("status", (m) => {
      const status = JSON.parse(m.data);
      if (status.status === "failed") {
        close();
        card.failed(status.error);
      } else if (status.status === "done") {
        finished = status;  // a done job with nothing to score ends the stream without a scorecard
        card.status("Finishing the scorecard…");
      } else {
        card.status(STAGE[status.status] || "Scoring…", status.stage);
      }
    });
    es.addEventListener("dimension", (m) => card.dimension(JSON.parse(m.data)));
    es.addEventListener("done", (m) => {
      close();
      card.complete(JSON.parse(m.data));
    });
    es.onerror = () => {
      if (stream !== es) return;
      if (finished) {
        close();
        card.notScored(finished.error || "This call had nothing to score.");
        return;
      }
      drops += 1;
      // CLOSED: the server refused the stream (no such session, nothing to score): ask why.
      if (es.readyState === EventSource.CLOSED || drops > 3) {
        close();
        fetchScore();
      }
    };
  }
  async function fetchScore() {
    try {
      card.complete(await api(`/api/sessions/${sessionId}/score`));
    } catch (e) {
      if (e.code === "score_not_ready" && e.job?.status === "failed") card.failed(e.job.error);
      else if (e.code === "score_not_ready" && polls++ < 20) {
        card.status(STAGE[e.job?.status] || "Scoring…");
        retry = setTimeout(subscribe, 3000);
      } else if (e.code === "not_scored" && !e.job && waits++ < 2) {
        // Just ended: its scoring job may not be queued yet. Look again before saying it is not scored.
        card.status("Waiting for scoring to start…");
        retry = setTimeout(subscribe, 2000);
      } else if (e.code === "not_scored") card.notScored(e.message);
      else card.error(e);
    }
  }
  async function rescore() {
    const body = await api("/api/analyze/score", { method: "POST", body: { session_id: sessionId } });
    card.reset(STAGE[body.status] || "Scoring…");
    polls = 0;
    subscribe();
  }
  function close() {
    clearTimeout(retry);
    if (stream) stream.close();
    stream = null;
  }
  if (session.status === "ended") subscribe();
  else card.notScored(session.status === "live" ? "This call is still going on: it is scored when it ends."
    : "This call has not started yet.");
  return close;
}

// The scorecard's section: a status line while scoring, then overall, pass/fail, the scorer, the
// six dimensions with their checks (evidence quotes seek the recording) and feedback for failed ones.
// Also the review of an uploaded call (pages/upload.js).
export class ScorecardView {
  constructor({ seek, mayRescore, rescore, tryAgain }) {
    this.seek = seek;
    this.scorecard = null;
    this.onScorecard = () => {};
    this.statusLine = h("p", { class: "score-status", role: "status" }, "Loading the scorecard…");
    this.summary = h("div", { class: "score-summary", hidden: true });
    this.problem = errorBox();
    this.rows = {};
    this.list = h("ol", { class: "dimensions", "aria-label": "Dimensions" }, DIMENSIONS.map(([key, name]) => {
      const row = h("li", { class: "dimension pending", "data-key": key },
        h("div", { class: "dimension-head" }, h("h3", {}, name), h("span", { class: "hint" }, "Waiting…")));
      this.rows[key] = row;
      return row;
    }));
    this.list.hidden = true;
    this.rescoreButton = h("button", { type: "button", hidden: !mayRescore, onclick: () => this.doRescore(rescore) }, "Rescore");
    this.el = h("section", { class: "card scorecard", "aria-labelledby": "scorecard-title" },
      h("h2", { id: "scorecard-title" }, "Scorecard"), this.statusLine, this.problem, this.summary, this.list,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "primary", onclick: tryAgain }, "Try this persona again"),
        this.rescoreButton));
  }

  status(text, stage) {
    this.statusLine.hidden = false;
    this.statusLine.textContent = stage ? `${text} (${String(stage).replace(/_/g, " ")})` : text;
    this.statusLine.dataset.state = "scoring";
    this.list.hidden = false;
  }

  reset(text) {
    this.scorecard = null;
    this.problem.hidden = true;
    this.summary.hidden = true;
    for (const [key, name] of DIMENSIONS) {
      const row = h("li", { class: "dimension pending", "data-key": key },
        h("div", { class: "dimension-head" }, h("h3", {}, name), h("span", { class: "hint" }, "Waiting…")));
      this.rows[key].replaceWith(row);
      this.rows[key] = row;
    }
    this.status(text);
  }

  dimension(d, passMark = null) {
    const old = this.rows[d.key];
    if (!old) return;
    // Each dimension folds open on its checks; those below the pass mark start open.
    const checks = d.checks || [];
    const passed = checks.filter((c) => c.passed).length;
    const row = h("li", { class: "dimension", "data-key": d.key },
      h("details", { open: passMark === null || d.score < passMark },
        h("summary", { class: "dimension-head" }, h("h3", {}, d.name || d.key),
          scoreBar(d.score, { passMark, label: `${number(d.score)} / 100` }),
          h("span", { class: "hint checks-count" }, `${passed} of ${checks.length} checks`)),
        h("ul", { class: "checks" }, checks.map((c) => this.check(c)))));
    old.replaceWith(row);
    this.rows[d.key] = row;
    this.list.hidden = false;
  }

  check(c) {
    const e = c.evidence;
    const quote = e && e.quote
      ? h("button", { type: "button", class: "quote", title: "Play the call from here", onclick: () => this.seek(e.start_ms) },
        h("q", {}, e.quote), " ", h("time", {}, clock(e.start_ms)))
      : null;
    const f = c.feedback;
    return h("li", { class: `check ${c.passed ? "passed" : "failed"}`, "data-check": c.id },
      h("span", { class: "mark", "aria-hidden": "true" }, c.passed ? "✓" : "✗"),
      h("div", { class: "check-body" },
        h("p", { class: "check-label" }, h("span", { class: "visually-hidden" }, c.passed ? "Done: " : "Missed: "), c.label),
        quote ? h("p", { class: "evidence" }, quote) : null,
        f ? h("div", { class: "feedback" },
          f.missing ? h("p", {}, h("strong", {}, "Missing: "), f.missing) : null,
          f.where ? h("p", {}, h("strong", {}, "Where: "),
            h("button", { type: "button", class: "link where", title: "Play the call from here",
                          onclick: () => this.seek(f.where_ms ?? e?.start_ms ?? 0) }, f.where)) : null,
          f.example ? h("p", { class: "example" }, h("strong", {}, "Try: "), `“${f.example}”`) : null) : null));
  }

  complete(sc) {
    this.scorecard = sc;
    if (sc.id) this.el.dataset.scoreId = sc.id;
    this.problem.hidden = true;
    this.statusLine.hidden = true;
    this.statusLine.dataset.state = "done";
    for (const d of sc.dimensions || []) this.dimension(d, sc.pass_mark);
    this.summary.replaceChildren(...[
      h("p", { class: "overall" }, h("span", { class: "overall-value" }, number(sc.overall, 1)),
        h("span", { class: "overall-of" }, " / 100 overall")),
      h("p", { class: `verdict-badge ${sc.passed ? "pass" : "fail"}` },
        sc.passed ? `Passed (pass mark ${sc.pass_mark})` : `Below the pass mark of ${sc.pass_mark}`),
      h("p", { class: "hint scorer" }, `Scored by ${SCORER(sc.scorer)} · rubric v${sc.version}`,
        sc.created_at ? ` · ${new Date(sc.created_at).toLocaleString()}` : ""),
      sc.fallback_reason ? h("p", { class: "notice" }, `The AI scorer was not used: ${sc.fallback_reason}`) : null,
    ].filter(Boolean));
    this.summary.hidden = false;
    this.list.hidden = false;
    this.onScorecard(sc);
  }

  failed(message) {
    this.statusLine.hidden = true;
    if (!this.scorecard) this.list.hidden = true;
    showError(this.problem, `Scoring failed: ${message || "the scorer stopped with an error."}`);
    this.rescoreButton.textContent = "Try scoring again";
  }

  notScored(message) {
    this.statusLine.hidden = false;
    if (!this.scorecard) this.list.hidden = true;
    this.statusLine.dataset.state = "none";
    this.statusLine.textContent = message || "This call has not been scored.";
  }

  error(e) {
    this.statusLine.hidden = true;
    showError(this.problem, e);
  }

  async doRescore(rescore) {
    this.rescoreButton.disabled = true;
    try {
      await rescore();
      this.rescoreButton.textContent = "Rescore";
    } catch (e) {
      showError(this.problem, e);
    } finally {
      this.rescoreButton.disabled = false;
    }
  }
}
