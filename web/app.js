// The single page: a hash router, the signed-in header, and each page's module.

import { api, forget, me } from "./api.js";
import { h } from "./dom.js";

const pages = {
  login: () => import("./pages/auth.js").then((m) => m.login),
  signup: () => import("./pages/auth.js").then((m) => m.signup),
  practice: () => import("./pages/practice.js").then((m) => m.practice),
  call: () => import("./pages/practice.js").then((m) => m.callPage),
  coach: () => import("./pages/coach.js").then((m) => m.coach),
  watch: () => import("./pages/coach.js").then((m) => m.watch),
  review: () => import("./pages/review.js").then((m) => m.review),
  history: () => import("./pages/history.js").then((m) => m.history),
  upload: () => import("./pages/upload.js").then((m) => m.upload),
  "upload-review": () => import("./pages/upload.js").then((m) => m.uploadReview),
  progress: () => import("./pages/progress.js").then((m) => m.progress),
  team: () => import("./pages/team.js").then((m) => m.team),
  admin: () => import("./pages/admin.js").then((m) => m.admin),
  personas: () => import("./pages/personas.js").then((m) => m.personas),
  chat: () => import("./pages/chat.js").then((m) => m.chat),
  knowledge: () => import("./pages/knowledge.js").then((m) => m.knowledge),
};
const PUBLIC = new Set(["login", "signup"]);
let cleanup = null;
// A page that must not be left without asking (a live call) sets this: it returns the question, or null.
let leaveGuard = null;
let shownHash = location.hash;
// Each route() takes a number; one that a newer navigation overtook stops at its next step, and
// a page it already started draws into a view that is no longer on screen.
let routing = 0;

function parse() {
  // "#/history?user=ID": the path picks the page and its args, the query string its options.
  const hash = location.hash.replace(/^#\/?/, "");
  const at = hash.indexOf("?");
  const [name, ...rest] = (at < 0 ? hash : hash.slice(0, at)).split("/");
  return { name: name || "", args: rest.map(decodeURIComponent), query: new URLSearchParams(at < 0 ? "" : hash.slice(at + 1)) };
}

function header(account) {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  nav.replaceChildren();
  who.replaceChildren();
  if (!account) return;
  const links = [["#/practice", "Practice"], ["#/progress", "Progress"], ["#/history", "History"],
    ["#/upload", "Upload a call"]];
  if (account.role === "coach" || account.role === "admin") links.splice(1, 0, ["#/coach", "Coach console"], ["#/team", "Team"]);
  links.push(["#/chat", "Coach chat"]);
  if (account.role === "coach" || account.role === "admin") links.push(["#/personas", "Personas"], ["#/knowledge", "Knowledge"]);
  if (account.role === "admin") links.push(["#/admin", "Admin"]);
  nav.append(h("ul", {}, links.map(([href, text]) => h("li", {}, h("a", { href }, text)))));
  who.append(
    h("span", { class: "who-name" }, account.user.name),
    h("span", { class: "who-org" }, `${account.org.name} · ${account.role}`),
    h("button", { type: "button", class: "link", onclick: logOut }, "Log out"),
  );
}

async function logOut() {
  try {
    await api("/api/auth/logout", { method: "POST" });
  } finally {
    forget();
    location.hash = "#/login";
  }
}

// A page that could not load says so (never a blank page): "not found" for what does not exist or
// is not the caller's to see (the API answers both 404), the error's own words otherwise.
function failed(root, error) {
  const status = error && error.status;
  const [title, text] = status === 404
    ? ["Not found", "There is nothing here, or it is not yours to see: it may have been deleted, or the link is for another account."]
    : status === 403
      ? ["Not allowed", error.message]
      : ["This page could not load", error && error.message
        ? `${error.message}` : "Something went wrong. Check your connection and try again."];
  root.replaceChildren(h("section", { class: "card narrow failed-page", "data-status": status || "error" },
    h("h1", {}, title), h("p", { role: "alert" }, text),
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: () => route() }, "Try again"),
      h("a", { href: "#/practice", class: "button" }, "Go to practice"))));
  document.title = `${title} · Sparring`;
}

export async function route() {
  if (cleanup) {
    try { cleanup(); } catch { /* the page is going away anyway */ }
    cleanup = null;
  }
  leaveGuard = null;
  shownHash = location.hash;
  const mine = ++routing;
  const current = () => mine === routing;
  const root = document.getElementById("app");
  let { name, args, query } = parse();
  let account = null;
  try {
    account = await me({ force: PUBLIC.has(name) || name === "" });
  } catch (error) {
    if (current()) failed(root, error);
    return;
  }
  if (!current()) return;
  if (!account && !PUBLIC.has(name)) name = "login";
  if (account && (PUBLIC.has(name) || name === "")) name = "practice";
  if (!pages[name]) name = account ? "practice" : "login";
  header(account);
  // A page a newer navigation overtook neither navigates nor guards leaving: it is no longer shown.
  const context = { account, args, query, current,
                    navigate: (hash) => { if (current()) location.hash = hash; },
                    guardLeaving: (question) => { if (current()) leaveGuard = question; } };
  let view;
  try {
    const page = await pages[name]();
    if (!current()) return;
    view = h("div", { class: "view" });
    root.replaceChildren(view);
    const done = (await page(view, context)) || null;
    if (!current()) {
      if (done) done();
      return;
    }
    cleanup = done;
  } catch (error) {
    console.warn("page failed to load", error);
    if (current()) failed(root, error);
    return;
  }
  document.title = `${view.querySelector("h1")?.textContent || "Sparring"} · Sparring`;
}

window.addEventListener("hashchange", () => {
  // Leaving a page that asks first (a live call): on "no", the address goes back and the page stays.
  if (leaveGuard && location.hash !== shownHash) {
    const question = leaveGuard();
    if (question && !window.confirm(question)) {
      history.replaceState(null, "", shownHash || "#/");
      return;
    }
  }
  route();
});
route();
