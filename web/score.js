// What the scoring API's answers look like on a page: the six dimensions, conversation metrics with
// their reference bands and verdicts, score bars, and a line chart of scores over calls (inline SVG).

import { h } from "./dom.js";

// The scorecard's six dimensions, in the order a call runs (the API's keys, short names for tables).
export const DIMENSIONS = [
  ["opening", "Opening"],
  ["discovery", "Discovery"],
  ["listening", "Listening"],
  ["value", "Value"],
  ["objections", "Objections"],
  ["closing", "Closing"],
];
export const DIMENSION_NAME = Object.fromEntries(DIMENSIONS);

const SVG = "http://www.w3.org/2000/svg";

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function number(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
  const n = Number(value);
  return digits ? n.toFixed(digits).replace(/\.0+$/, "") : String(Math.round(n));
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  const total = Math.round(ms / 1000);
  if (total < 60) return `${total} s`;
  return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, "0")} s`;
}

// --- Metrics -------------------------------------------------------------------------------------
const VERDICT = { good: "On target", watch: "Watch", off: "Off target", "n/a": "Not measured" };

function withUnit(value, unit, digits = 1) {
  if (unit === "%") return `${number(value)}%`;
  if (unit === "count" || !unit) return number(value, digits);
  return `${number(value, digits)} ${unit}`;
}

function metricValue(m) {
  if (m.value === null || m.value === undefined) return "—";
  return m.unit === "yes/no" ? (m.value ? "Yes" : "No") : withUnit(m.value, m.unit);
}

// A band's low/high are where a value turns "off"; target is what top performers show.
function bandText(m) {
  const b = m.band;
  if (!b || m.unit === "yes/no") return null;
  const known = (x) => x !== null && x !== undefined;
  return [known(b.target) ? `target ${withUnit(b.target, m.unit)}` : null,
          known(b.low) ? `off below ${withUnit(b.low, m.unit)}` : null,
          known(b.high) ? `off above ${withUnit(b.high, m.unit)}` : null].filter(Boolean).join(", ");
}

// The order the metrics show in (coaching/analytics.py METRIC_KEYS); a stored scorecard's JSON comes
// back with its keys reordered. Keys not listed here follow, as they come.
const METRIC_ORDER = [
  "talk_ratio", "longest_monologue_s", "longest_buyer_story_s", "questions_asked", "open_question_share",
  "interactivity", "patience_s", "patience_after_objection_s", "rep_wpm", "rep_wpm_after_objection",
  "filler_per_100_words", "filler_per_min", "next_step_agreed",
];
const rank = (key) => { const i = METRIC_ORDER.indexOf(key); return i < 0 ? METRIC_ORDER.length : i; };

// metrics: {KEY: {key, label, value, unit, band, verdict}} as the analytics and score APIs give them.
// compact (the coach's side panel): without the sources.
export function metricsView(metrics, { compact = false } = {}) {
  const items = Object.values(metrics || {}).sort((a, b) => rank(a.key) - rank(b.key));
  if (!items.length) return h("p", { class: "hint metrics-empty" }, "No conversation metrics yet.");
  return h("dl", { class: `metrics${compact ? " compact" : ""}` }, items.map((m) => {
    const band = bandText(m);
    return h("div", { class: `metric verdict-${m.verdict === "n/a" ? "na" : m.verdict}`, "data-key": m.key },
      h("dt", {}, m.label),
      h("dd", { class: "metric-value" }, metricValue(m), " ",
        h("span", { class: "verdict" }, VERDICT[m.verdict] || m.verdict)),
      m.band ? h("dd", { class: "band" }, m.band.note,
        band ? h("span", { class: "band-range" }, ` (${band})`) : null,
        m.band.source && !compact ? h("small", { class: "band-source" }, `Source: ${m.band.source}`) : null) : null);
  }));
}

// --- A 0-100 bar (SVG, with the value as text beside it) ----------------------------------------
export function scoreBar(score, { passMark = null, label = "" } = {}) {
  const value = Math.max(0, Math.min(100, Number(score) || 0));
  const level = passMark === null ? "" : value >= passMark ? " above" : " below";
  return h("span", { class: "score-bar" },
    s("svg", { class: `bar${level}`, viewBox: "0 0 100 10", preserveAspectRatio: "none", "aria-hidden": "true",
               focusable: "false" },
      s("rect", { class: "bar-track", x: 0, y: 0, width: 100, height: 10, rx: 2 }),
      s("rect", { class: "bar-fill", x: 0, y: 0, width: value, height: 10, rx: 2 }),
      passMark === null ? null : s("line", { class: "bar-mark", x1: passMark, x2: passMark, y1: 0, y2: 10 })),
    h("span", { class: "bar-value" }, label || `${number(score)} / 100`));
}

// --- Scores over calls: one line per dimension ----------------------------------------------------
// points: [{label, title, values: {KEY: number|null}}], oldest first.
export function trendChart(points, { series = DIMENSIONS, caption = "Scores per call" } = {}) {
  const W = 640, H = 260, left = 34, right = 12, top = 12, bottom = 30;
  const x = (i) => (points.length === 1 ? left + (W - left - right) / 2 : left + (i * (W - left - right)) / (points.length - 1));
  const y = (v) => top + ((100 - v) * (H - top - bottom)) / 100;
  const grid = [0, 25, 50, 75, 100].map((v) => s("g", { class: "grid" },
    s("line", { x1: left, x2: W - right, y1: y(v), y2: y(v) }),
    s("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, String(v))));
  const longest = Math.max(1, ...points.map((p) => String(p.label).length));
  const fits = Math.max(2, Math.floor((W - left - right) / (longest * 6.5 + 12)));  // ~6.5 px a character at 11 px
  const every = Math.max(1, Math.ceil(points.length / fits));
  const ticks = points.map((p, i) => (i % every === 0 || i === points.length - 1
    ? s("text", { class: "tick", x: x(i), y: H - 10, "text-anchor": "middle" }, p.label) : null));
  const lines = series.map(([key, name]) => {
    const runs = [[]];
    points.forEach((p, i) => {
      const v = p.values[key];
      if (v === null || v === undefined) { if (runs[runs.length - 1].length) runs.push([]); return; }
      runs[runs.length - 1].push([x(i), y(v), v, p]);
    });
    return s("g", { class: `series series-${key}`, "data-key": key },
      runs.filter((r) => r.length > 1).map((r) => s("polyline", { points: r.map(([px, py]) => `${px},${py}`).join(" ") })),
      runs.flat().map(([px, py, v, p]) => s("circle", { cx: px, cy: py, r: 3.5 }, s("title", {}, `${name}: ${number(v)} (${p.title})`))));
  });
  const latest = points[points.length - 1];
  const summary = `${caption}: ${points.length} call${points.length === 1 ? "" : "s"}. Latest: ` +
    series.map(([key, name]) => `${name} ${number(latest?.values[key])}`).join(", ") + ".";
  const svg = s("svg", { class: "trend-chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary },
    s("title", {}, summary), grid, ticks, lines);
  const legend = h("ul", { class: "legend", "aria-label": "Legend" },
    series.map(([key, name]) => h("li", {}, h("span", { class: `swatch series-${key}`, "aria-hidden": "true" }), name)));
  return h("figure", { class: "trend-figure" }, svg, legend);
}
