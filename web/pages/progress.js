// Progress: the curriculum's modules with the rep's status and best score on each module's
// dimension, and their scores per dimension over their last scored calls (a chart and a table).
// Coaches and admins see a rep's with "#/progress?user=ID".

import { api } from "../api.js";
import { h } from "../dom.js";
import { DIMENSION_NAME, DIMENSIONS, number, scoreBar, trendChart } from "../score.js";

const STATUS = { not_started: "Not started", in_progress: "In progress", completed: "Completed" };

export async function progress(root, { account, query }) {
  const staff = account.role === "coach" || account.role === "admin";
  const userId = staff ? query?.get("user") : null;
  const data = await api(`/api/progress${userId ? `?user_id=${encodeURIComponent(userId)}` : ""}`);
  let name = null;
  if (userId && userId !== account.user.id) {
    const members = (await api("/api/orgs/members")).items;
    name = members.find((m) => m.user_id === userId)?.name || "this rep";
  }
  const whose = name ? `${name}'s` : "Your";

  const modules = h("ol", { class: "modules" }, data.modules.map((m) => h("li", {
    class: `module status-${m.status}`, "data-module": m.id, "data-status": m.status },
    h("div", { class: "module-head" },
      h("h3", {}, m.title),
      h("span", { class: `badge ${m.status}` }, STATUS[m.status] || m.status)),
    h("p", { class: "module-summary" }, m.summary),
    h("p", { class: "module-score" }, `Best on ${DIMENSION_NAME[m.dimension] || m.dimension}: `,
      m.best_score === null || m.best_score === undefined
        ? h("span", { class: "hint" }, "no scored call yet")
        : scoreBar(m.best_score, { label: `${number(m.best_score)} / 100` })),
    m.completed_at ? h("p", { class: "hint" }, `Completed ${new Date(m.completed_at).toLocaleDateString()}`) : null,
    m.skills?.length ? h("ul", { class: "skills", "aria-label": "Skills" }, m.skills.map((skill) => h("li", {}, skill))) : null)));

  const trend = data.trend || [];
  const day = (when) => when.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  const days = trend.map((t) => day(new Date(t.created_at)));
  const points = trend.map((t, i) => {
    const when = new Date(t.created_at);
    const sameDay = days.filter((d) => d === days[i]).length > 1;  // several calls a day: tell them apart by time
    return { label: sameDay ? `${days[i]} ${when.toLocaleTimeString(undefined, { hour: "numeric", minute: "2-digit" })}` : days[i],
             title: t.kind === "upload" ? `${when.toLocaleString()}, uploaded: ${t.persona_name}`
               : `${when.toLocaleString()} with ${t.persona_name}`, values: t.dimensions || {} };
  });
  const chart = trend.length
    ? h("div", { class: "trend-box" },
      trendChart(points, { caption: `${whose} scores per dimension over the last ${trend.length} scored calls` }),
      h("details", { class: "trend-table" }, h("summary", {}, "Show the scores as a table"),
        h("div", { class: "table-scroll" }, h("table", {},
          h("caption", {}, "Scores per call, oldest first"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Call"), h("th", { scope: "col" }, "Buyer"),
            h("th", { scope: "col" }, "Overall"), DIMENSIONS.map(([, label]) => h("th", { scope: "col" }, label)))),
          h("tbody", {}, trend.map((t) => h("tr", {},
            h("th", { scope: "row" }, h("a", { href: t.kind === "upload" ? `#/upload-review/${t.upload_id}` : `#/review/${t.session_id}` },
              new Date(t.created_at).toLocaleString())),
            h("td", {}, t.kind === "upload" ? [h("span", { class: "badge upload" }, "upload"), ` ${t.persona_name}`] : t.persona_name),
            h("td", {}, `${number(t.overall, 1)}${t.passed === true ? " ✓" : t.passed === false ? " ✗" : ""}`),
            DIMENSIONS.map(([key]) => h("td", {}, number(t.dimensions?.[key]))))))))))
    : h("p", { class: "hint" }, "Scores appear here after a scored call.");

  root.append(
    h("section", { class: "card" }, h("h1", {}, name ? `Progress: ${name}` : "Your progress"),
      h("h2", {}, "Curriculum"),
      data.modules.length ? modules : h("p", { class: "hint" }, "No curriculum modules yet.")),
    h("section", { class: "card" }, h("h2", {}, "Score trend"), chart));
  return null;
}
