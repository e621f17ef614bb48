// Sign up and log in (with a password, or through a single sign-on provider).

import { api, forget } from "../api.js";
import { errorBox, field, h, showError } from "../dom.js";

function form(title, fields, submitText, onSubmit, footer) {
  const error = errorBox();
  const button = h("button", { type: "submit", class: "primary" }, submitText);
  const el = h("form", { class: "card narrow", novalidate: true }, h("h1", {}, title), ...fields, error, button, footer);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      await onSubmit();
      forget();
      location.hash = "#/practice";
    } catch (e) {
      showError(error, e);
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

// The landing page says what Sparring is before it asks for anything.
function intro() {
  return h("section", { class: "intro narrow", "aria-label": "About Sparring" },
    h("p", { class: "lead" }, "Sparring is where sales reps practise calls: talk (or type) to an AI buyer who"
      + " pushes back like a real one, get coaching hints while you talk, and a scorecard after every call."),
    h("p", { class: "hint" }, "Coaches watch calls live and send the rep typed notes; reps follow their progress over time."));
}

// Why a single sign-on login came back here (`#/login?sso_error=CODE`, set by the callback).
const SSO_ERRORS = {
  invite_required: "Your company has not set up Sparring for your email's domain yet. Ask your admin for an invite link.",
  invalid_invite: "That invite link is unknown, expired or already used. Ask your admin for a new one.",
  email_unverified: "Your sign-in provider has not verified your email address. Verify it there, then try again.",
  id_token_expired: "The sign-in took too long or your clock is off. Please try again.",
  invalid_id_token: "The sign-in could not be verified. Please try again; if it keeps failing, tell your admin.",
  provider_denied: "The sign-in was cancelled or refused by your provider.",
  provider_unavailable: "Your sign-in provider could not be reached. Try again in a moment.",
  provider_misconfigured: "Single sign-on is misconfigured here. Tell your admin.",
  no_membership: "Your account no longer belongs to an organization. Ask your admin for an invite.",
  sso_failed: "The sign-in did not complete. Please try again.",
  try_again: "The sign-in did not complete. Please try again.",
};

// One button per configured provider; `invite` goes along so the invite survives the round trip.
async function providerButtons(verb, invite) {
  let items = [];
  try {
    ({ items } = await api("/api/auth/providers"));
  } catch {
    return null;  // the password form still works
  }
  if (!items.length) return null;
  const suffix = invite ? `?invite=${encodeURIComponent(invite)}` : "";
  return h("div", { class: "sso-providers" }, h("p", { class: "hint" }, "Or use your company login:"),
    h("div", { class: "actions" }, items.map((p) => h("a", { class: "button sso-button", href: p.login_url + suffix,
                                                             "data-provider": p.id }, `${verb} with ${p.name}`))));
}

export async function login(root, { query } = {}) {
  root.append(intro());
  const email = h("input", { type: "email", name: "email", autocomplete: "email", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const el = form("Log in", [field("Email", email), field("Password", password)], "Log in",
    () => api("/api/auth/login", { method: "POST", body: { email: email.value, password: password.value } }),
    h("p", {}, "New here? ", h("a", { href: "#/signup" }, "Sign up")));
  const failed = query?.get("sso_error");
  if (failed) {
    const box = el.querySelector(".error");
    box.textContent = SSO_ERRORS[failed] || "The sign-in did not complete. Please try again.";
    box.hidden = false;
  }
  const buttons = await providerButtons("Log in", null);
  if (buttons) el.querySelector("button[type=submit]").after(buttons);
  root.append(el);
  email.focus();
}

export async function signup(root, { query } = {}) {
  // "#/signup?invite=CODE" (the link an admin or coach copies): the code is filled in, the team is theirs.
  const invited = (query?.get("invite") || "").trim();
  const name = h("input", { type: "text", name: "name", autocomplete: "name", required: true });
  const email = h("input", { type: "email", name: "email", autocomplete: "email", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "new-password", required: true,
                                minlength: 10 });
  const org = h("input", { type: "text", name: "org", autocomplete: "organization" });
  const code = h("input", { type: "text", name: "invite", autocomplete: "off", value: invited || undefined });
  root.append(form("Sign up", [
    field("Name", name), field("Email", email),
    field("Password", password, "At least 10 characters."),
    invited ? null : field("Organization", org, "Starting a new team? Name it here."),
    field("Invite code", code, invited ? "You were invited: this code joins you to your team."
      : "Joining a team? Paste the code your admin gave you instead."),
  ].filter(Boolean), "Sign up", () => {
    const body = { name: name.value, email: email.value, password: password.value };
    if (code.value.trim()) body.invite_code = code.value.trim();
    else body.org_name = org.value.trim();
    if (!body.invite_code && !body.org_name) {
      throw new Error("Enter an organization name, or an invite code to join an existing team.");
    }
    return api("/api/auth/signup", { method: "POST", body });
  }, h("p", {}, "Already have an account? ", h("a", { href: "#/login" }, "Log in"))));
  const buttons = invited ? await providerButtons("Sign up", invited) : null;
  if (buttons) root.querySelector("form button[type=submit]").after(buttons);
  name.focus();
}
