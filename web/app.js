// The single page: a hash router, the signed-in header, and each page's module.

import { api, forget, me } from "./api.js";
import { h } from "./dom.js";

const pages = {
  login: () => import("./pages/auth.js").then((m) => m.login),
  signup: () => import("./pages/auth.js").then((m) => m.signup),
  practice: () => import("./pages/practice.js").then((m) => m.practice),
  coach: () => import("./pages/coach.js").then((m) => m.coach),
  watch: () => import("./pages/coach.js").then((m) => m.watch),
  review: () => import("./pages/review.js").then((m) => m.review),
  history: () => import("./pages/history.js").then((m) => m.history),
  progress: () => import("./pages/progress.js").then((m) => m.progress),
  team: () => import("./pages/team.js").then((m) => m.team),
};
const PUBLIC = new Set(["login", "signup"]);
let cleanup = null;

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
  const links = [["#/practice", "Practice"], ["#/progress", "Progress"], ["#/history", "History"]];
  if (account.role === "coach" || account.role === "admin") links.splice(1, 0, ["#/coach", "Coach console"], ["#/team", "Team"]);
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

export async function route() {
  if (cleanup) {
    try { cleanup(); } catch { /* the page is going away anyway */ }
    cleanup = null;
  }
  const root = document.getElementById("app");
  let { name, args, query } = parse();
  let account = null;
  try {
    account = await me({ force: PUBLIC.has(name) || name === "" });
  } catch (error) {
    root.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
    return;
  }
  if (!account && !PUBLIC.has(name)) name = "login";
  if (account && (PUBLIC.has(name) || name === "")) name = "practice";
  if (!pages[name]) name = account ? "practice" : "login";
  header(account);
  const page = await pages[name]();
  root.replaceChildren();
  cleanup = (await page(root, { account, args, query, navigate: (hash) => { location.hash = hash; } })) || null;
  document.title = `${root.querySelector("h1")?.textContent || "Sparring"} · Sparring`;
}

window.addEventListener("hashchange", route);
route();
