// Upload a recorded call (drag and drop or pick a file), follow it through upload, transcription,
// speaker labelling and scoring as a progress bar, then its review: recording, transcript with the
// speakers (swap or fix them, which rescores) and the scorecard the practice review uses.

import { api } from "../api.js";
import { clock, errorBox, field, h, showError } from "../dom.js";
import { duration } from "../score.js";
import { ScorecardView } from "./review.js";

const STAGES = [
  ["uploading", "Uploading"], ["received", "Received"], ["transcribing", "Transcribing"],
  ["labelling", "Finding the speakers"], ["scoring", "Scoring"], ["done", "Done"],
];
const ACCEPT = ".wav,.mp3,.m4a,.aac,.ogg,.opus,.webm,.flac,audio/*";

function csrf() {
  const match = document.cookie.match(/(?:^|;\s*)sparring_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// POST the form with upload progress (fetch has none); resolves with the JSON, rejects with the API's message.
function send(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/analyze/upload");
    xhr.withCredentials = true;
    xhr.setRequestHeader("X-CSRF-Token", csrf());
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(Math.round((100 * e.loaded) / e.total)); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201) resolve(body);
      else reject(new Error(body?.error?.message || `The upload failed (${xhr.status}). Please try again.`));
    };
    xhr.onerror = () => reject(new Error("Sparring can't be reached. Check your connection and try again."));
    xhr.send(form);
  });
}

function progressView() {
  const bar = h("progress", { max: 100, value: 0, class: "upload-bar", "aria-label": "Progress" });
  const steps = h("ol", { class: "upload-stages" }, STAGES.map(([key, text]) => h("li", { "data-stage": key }, text)));
  const line = h("p", { class: "upload-status", role: "status" }, "");
  const el = h("div", { class: "upload-progress", hidden: true }, steps, bar, line);
  return {
    el,
    show(stage, percent, text) {
      el.hidden = false;
      const at = STAGES.findIndex(([key]) => key === stage);
      for (const [i, li] of [...steps.children].entries()) {
        li.className = i < at ? "done" : i === at ? "current" : "";
      }
      el.dataset.stage = stage;
      if (percent !== null && percent !== undefined) bar.value = percent;
      line.textContent = text;
    },
  };
}

export async function upload(root, { navigate }) {
  const input = h("input", { type: "file", id: "upload-file", accept: ACCEPT });
  const title = h("input", { type: "text", id: "upload-title", maxlength: 200, placeholder: "e.g. Discovery call with Acme" });
  const side = h("select", { id: "upload-rep-channel" },
    h("option", { value: "" }, "Mono, or I don't know"), h("option", { value: "left" }, "Left"),
    h("option", { value: "right" }, "Right"));
  const chosen = h("p", { class: "hint chosen-file" }, "No file chosen.");
  const drop = h("div", { class: "drop-zone", tabindex: 0, role: "button", "aria-label": "Choose or drop a recording" },
    h("p", {}, "Drop a recording here, or ", h("span", { class: "link" }, "pick a file")),
    h("p", { class: "hint" }, "WAV, MP3, M4A, OGG/Opus, WebM or FLAC, up to 25 MB"), chosen);
  const problem = errorBox();
  const progress = progressView();
  const button = h("button", { type: "submit", class: "primary", id: "upload-submit" }, "Upload and analyze");
  let file = null;
  let stream = null;

  function choose(f) {
    file = f || null;
    chosen.textContent = file ? `${file.name} · ${(file.size / 1048576).toFixed(1)} MB` : "No file chosen.";
  }
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    choose(e.dataTransfer.files[0]);
  });
  input.addEventListener("change", () => choose(input.files[0]));

  function follow(created) {
    const es = new EventSource(`/api/analyze/${created.job_id}/stream`);
    stream = es;
    let dimensions = 0;
    es.addEventListener("status", (m) => {
      const s = JSON.parse(m.data);
      if (s.status === "failed") {
        es.close();
        button.disabled = false;
        showError(problem, `The recording could not be analyzed: ${s.error || "it failed."}`);
        return;
      }
      const stage = s.stage || "received";
      const text = stage === "transcribing" ? `Transcribing: ${s.percent ?? 0}% of the audio`
        : stage === "skipped" ? s.error || "Nothing to score." : (STAGES.find(([k]) => k === stage) || [0, stage])[1];
      progress.show(stage === "skipped" ? "done" : stage, stage === "transcribing" ? s.percent : null, text);
      if (s.status === "done") { es.close(); navigate(`#/upload-review/${created.id}`); }
    });
    es.addEventListener("dimension", () => {
      dimensions += 1;
      progress.show("scoring", Math.round((dimensions / 6) * 100), `Scoring: ${dimensions} of 6 dimensions`);
    });
    es.addEventListener("done", () => { es.close(); navigate(`#/upload-review/${created.id}`); });
  }

  const form = h("form", { class: "upload-form", novalidate: true }, drop, input,
    field("Title (optional)", title),
    field("Stereo: the rep is on the", side, "Leave it for a mono recording: the speakers are then found from the voices."),
    h("div", { class: "actions" }, button), problem, progress.el);
  input.hidden = true;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    problem.hidden = true;
    if (!file) { showError(problem, "Choose a recording first."); return; }
    const data = new FormData();
    data.append("file", file);
    if (title.value.trim()) data.append("title", title.value.trim());
    if (side.value) data.append("rep_channel", side.value);
    button.disabled = true;
    progress.show("uploading", 0, "Uploading…");
    try {
      const created = await send(data, (p) => progress.show("uploading", p, `Uploading: ${p}%`));
      progress.show("received", 0, "Received");
      follow(created);
    } catch (error) {
      button.disabled = false;
      progress.el.hidden = true;
      showError(problem, error);
    }
  });
  root.append(h("section", { class: "card narrow" }, h("h1", {}, "Upload a call"),
    h("p", { class: "hint" }, "Get feedback on a real call: it is transcribed, the speakers are labelled and it is " +
      "scored on the same rubric as your practice calls."), form));
  return () => { if (stream) stream.close(); };
}

export async function uploadReview(root, { account, args, navigate }) {
  const uploadId = args[0];
  let detail = await api(`/api/uploads/${uploadId}`);
  const audio = detail.has_recording
    ? h("audio", { controls: true, preload: "metadata", src: `/api/uploads/${uploadId}/recording` })
    : h("p", { class: "hint" }, "No recording for this call.");
  const mine = detail.user_id === account.user.id || account.role !== "trainee";
  const card = new ScorecardView({ seek, mayRescore: false, rescore: async () => {}, tryAgain: () => navigate("#/upload") });
  const transcript = h("ol", { class: "transcript upload-transcript" });
  const speakersNote = h("p", { class: "hint speakers-note" });
  const problem = errorBox();
  const swap = h("button", { type: "button", id: "swap-speakers", hidden: !mine, onclick: () => change({ swap: true }) },
    "Swap rep and buyer");
  let stream = null;

  function seek(ms) {
    if (audio.tagName === "AUDIO") { audio.currentTime = ms / 1000; audio.play().catch(() => {}); }
  }
  function render() {
    const s = detail.speakers;
    speakersNote.textContent = s.mode === "channels" ? `Speakers from the stereo channels (the rep on the ${s.rep_channel}).`
      : s.mode === "inferred" ? `Speakers guessed from the audio (${s.method === "voice-clustering" ? "by voice" : "by pauses"}): check them, and swap or fix them if they are wrong.`
        : "Speakers confirmed.";
    transcript.replaceChildren(...detail.transcript.map((seg) => h("li", {
      class: `line ${seg.speaker}${seg.inferred ? " inferred" : ""}`, "data-segment": seg.segment_id, "data-speaker": seg.speaker,
    },
    h("button", { type: "button", class: "link time", onclick: () => seek(seg.start_ms) }, clock(seg.start_ms)),
    h("strong", { class: "speaker" }, seg.speaker === "rep" ? (detail.rep_name || "Rep") : "Buyer"),
    " ", h("span", { class: "text" }, seg.text),
    mine ? h("button", { type: "button", class: "link fix-speaker", title: "This line is the other speaker's",
      onclick: () => change({ segments: { [seg.segment_id]: seg.speaker === "rep" ? "buyer" : "rep" } }) }, "other speaker") : null)));
  }
  async function change(body) {
    problem.hidden = true;
    swap.disabled = true;
    try {
      const job = await api(`/api/uploads/${uploadId}/speakers`, { method: "PATCH", body });
      detail = await api(`/api/uploads/${uploadId}`);
      render();
      card.reset("Scoring again with the new speakers…");
      follow(job.job_id);
    } catch (e) {
      showError(problem, e);
    } finally {
      swap.disabled = false;
    }
  }
  function follow(jobId) {
    if (stream) stream.close();
    const es = new EventSource(`/api/analyze/${jobId}/stream`);
    stream = es;
    es.addEventListener("status", (m) => {
      const s = JSON.parse(m.data);
      if (s.status === "failed") { es.close(); card.failed(s.error); }
      else if (s.status === "done" && s.stage === "skipped") { es.close(); card.notScored(s.error); }
      else card.status(s.stage === "transcribing" ? `Transcribing (${s.percent ?? 0}%)…` : "Scoring…", s.stage);
    });
    es.addEventListener("dimension", (m) => card.dimension(JSON.parse(m.data)));
    es.addEventListener("done", (m) => { es.close(); card.complete(JSON.parse(m.data)); });
  }
  async function fetchScore() {
    try {
      card.complete(await api(`/api/uploads/${uploadId}/score`));
    } catch (e) {
      if (e.code === "score_not_ready" && e.job?.status === "failed") card.failed(e.job.error);
      else if (e.code === "score_not_ready" && e.job) follow(e.job.id);
      else if (e.code === "not_scored") card.notScored(e.message);
      else card.error(e);
    }
  }
  render();
  root.append(
    h("section", { class: "card" },
      h("h1", {}, `Review: ${detail.title || detail.filename}`),
      h("p", { class: "hint" }, `Uploaded ${new Date(detail.created_at).toLocaleString()}`,
        detail.duration_ms ? ` · ${duration(detail.duration_ms)}` : "", ` · ${detail.rep_name || "rep"}`)),
    card.el,
    h("section", { class: "card" },
      h("h2", {}, "Recording"), audio,
      h("h2", {}, "Transcript"), speakersNote, h("div", { class: "actions" }, swap), problem, transcript));
  await fetchScore();
  return () => { if (stream) stream.close(); };
}
