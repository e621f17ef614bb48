// Admin: the organization's members (change a role, remove), invites (create one for a role, copy its
// link, see the pending ones, revoke), and its settings (single sign-on, VAPI, and the scoring
// weights and pass mark).

import { api } from "../api.js";
import { errorBox, field, h, showError } from "../dom.js";
import { scoringForm } from "./team.js";

const ROLES = [["trainee", "Rep (trainee)"], ["coach", "Coach"], ["admin", "Admin"]];
const ROLE_NAME = Object.fromEntries(ROLES);

function roleSelect(value, attrs = {}) {
  return h("select", attrs, ROLES.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

function when(iso) {
  return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

export function inviteLink(code) {
  return `${location.origin}${location.pathname}#/signup?invite=${encodeURIComponent(code)}`;
}

async function copy(input) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();  // no clipboard permission (plain http): select it so Ctrl+C copies it
    if (!document.execCommand("copy")) throw new Error("Copy the selected link with Ctrl+C (⌘C on a Mac).");
  }
}

export async function admin(root, { account }) {
  if (account.role !== "admin") {
    root.append(h("section", { class: "card narrow" }, h("h1", {}, "Admin"),
      h("p", { class: "error", role: "alert" }, "The admin pages are for your organization's admins.")));
    return null;
  }
  root.append(h("h1", {}, `Admin: ${account.org.name}`));
  const [members, invites] = [membersCard(account), invitesCard()];
  root.append(members.el, invites.el);
  const [sso, vapi, scoring] = await Promise.all([ssoCard(), vapiCard(), scoringForm()]);
  scoring.classList.add("org-scoring");
  root.append(h("h2", { class: "section-title" }, "Organization settings"), sso, vapi, scoring);
  await Promise.all([members.load(), invites.load()]);
  return null;
}

function membersCard(account) {
  const error = errorBox();
  const status = h("p", { class: "hint", role: "status" });
  const body = h("tbody");
  const el = h("section", { class: "card", "aria-labelledby": "members-heading" },
    h("h2", { id: "members-heading" }, "Members"),
    h("p", { class: "hint" }, "Coaches see the team's calls and whisper during them; admins also manage members, invites and settings."),
    h("div", { class: "table-scroll" }, h("table", { class: "members" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Email"),
        h("th", { scope: "col" }, "Role"), h("th", { scope: "col" }, "Joined"), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
      body)),
    status, error);

  async function load() {
    try {
      const { items } = await api("/api/orgs/members");
      body.replaceChildren(...items.map(row));
    } catch (e) {
      showError(error, e);
    }
  }

  function row(m) {
    const who = m.name || m.email;
    const me = m.user_id === account.user.id;
    const select = roleSelect(m.role, { "aria-label": `Role for ${who}`, "data-user": m.user_id });
    select.addEventListener("change", async () => {
      error.hidden = true;
      status.textContent = "";
      try {
        const out = await api(`/api/orgs/members/${m.user_id}`, { method: "PATCH", body: { role: select.value } });
        m.role = out.role;
        status.textContent = `${who} is now ${ROLE_NAME[out.role].toLowerCase()}.`;
      } catch (e) {
        select.value = m.role;
        showError(error, e);
      }
    });
    const remove = h("button", { type: "button", class: "link danger-link", "aria-label": `Remove ${who}` }, "Remove");
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Remove ${who} from ${account.org.name}? They lose access at once; their calls stay.`)) return;
      error.hidden = true;
      try {
        await api(`/api/orgs/members/${m.user_id}`, { method: "DELETE" });
        tr.remove();
        status.textContent = `${who} was removed.`;
      } catch (e) {
        showError(error, e);
        remove.focus();
      }
    });
    const tr = h("tr", { "data-user": m.user_id },
      h("th", { scope: "row" }, who, me ? h("span", { class: "hint" }, " (you)") : null),
      h("td", {}, m.email), h("td", {}, select), h("td", {}, when(m.joined_at)), h("td", {}, remove));
    return tr;
  }

  return { el, load };
}

function invitesCard() {
  const error = errorBox();
  const status = h("p", { class: "hint", role: "status" });
  const role = roleSelect("trainee", { name: "invite-role", id: "invite-role" });
  const create = h("button", { type: "submit", class: "primary" }, "Create invite");
  const link = h("input", { type: "text", readonly: true, id: "invite-link", class: "invite-link" });
  const copyButton = h("button", { type: "button" }, "Copy link");
  const created = h("div", { class: "invite-created", hidden: true },
    field("Invite link", link, "Send it to the person you invite. It works once and expires in 7 days; it is not shown again."),
    h("div", { class: "actions" }, copyButton));
  const form = h("form", { class: "invite-form", novalidate: true },
    field("Role", role), h("div", { class: "actions" }, create));
  const body = h("tbody");
  const el = h("section", { class: "card", "aria-labelledby": "invites-heading" },
    h("h2", { id: "invites-heading" }, "Invites"), form, created, status, error,
    h("h3", {}, "Pending invites"),
    h("div", { class: "table-scroll" }, h("table", { class: "invites" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Role"), h("th", { scope: "col" }, "Created"),
        h("th", { scope: "col" }, "By"), h("th", { scope: "col" }, "Expires"),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))), body)));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    status.textContent = "";
    create.disabled = true;
    try {
      const out = await api("/api/orgs/invites", { method: "POST", body: { role: role.value } });
      link.value = inviteLink(out.code);
      created.hidden = false;
      status.textContent = `Invite for a ${ROLE_NAME[out.role].toLowerCase()} created. Copy the link and send it.`;
      link.focus();
      link.select();
      await load();
    } catch (e) {
      showError(error, e);
    } finally {
      create.disabled = false;
    }
  });
  copyButton.addEventListener("click", async () => {
    try {
      await copy(link);
      status.textContent = "Link copied.";
    } catch (e) {
      status.textContent = e.message;
    }
  });

  async function load() {
    try {
      const { items } = await api("/api/orgs/invites");
      body.replaceChildren(...(items.length ? items.map(row)
        : [h("tr", {}, h("td", { colspan: 5, class: "hint" }, "No pending invites."))]));
    } catch (e) {
      showError(error, e);
    }
  }

  function row(invite) {
    const revoke = h("button", { type: "button", class: "link danger-link",
                                 "aria-label": `Revoke the ${ROLE_NAME[invite.role].toLowerCase()} invite created ${when(invite.created_at)}` },
      "Revoke");
    revoke.addEventListener("click", async () => {
      error.hidden = true;
      try {
        await api(`/api/orgs/invites/${invite.id}`, { method: "DELETE" });
        status.textContent = "Invite revoked: its link no longer works.";
        await load();
        create.focus();
      } catch (e) {
        showError(error, e);
      }
    });
    return h("tr", { "data-invite": invite.id }, h("td", {}, ROLE_NAME[invite.role]), h("td", {}, when(invite.created_at)),
      h("td", {}, invite.created_by_name || "—"), h("td", {}, when(invite.expires_at)), h("td", {}, revoke));
  }

  return { el, load };
}

const AUTH_MODES = [["auto", "Automatic (whatever VAPI signs with)"], ["hmac", "HMAC signature"], ["secret", "Shared secret header"],
                    ["bearer", "Bearer token"], ["legacy", "Legacy secret"], ["none", "None (unsigned)"]];

async function vapiCard() {
  const error = errorBox();
  const saved = h("p", { class: "hint", role: "status" });
  let config;
  let personas = [];
  try {
    [config, personas] = await Promise.all([api("/api/orgs/vapi"), api("/api/personas").then((r) => r.items)]);
  } catch (e) {
    showError(error, e);
    return h("section", { class: "card" }, h("h2", {}, "VAPI phone calls"), error);
  }
  const builtIn = personas.filter((p) => p.built_in);
  const personaOptions = (value) => [h("option", { value: "" }, "None"),
    ...builtIn.map((p) => h("option", { value: p.id, selected: p.id === value }, `${p.name} (${p.title})`))];
  const webhook = h("input", { type: "text", readonly: true, value: config.webhook_url, id: "vapi-webhook" });
  const mode = h("select", { id: "vapi-auth-mode" }, AUTH_MODES
    .filter(([v]) => v !== "none" || config.unsigned_allowed || config.auth_mode === "none")
    .map(([v, label]) => h("option", { value: v, selected: v === config.auth_mode }, label)));
  const secret = h("input", { type: "password", id: "vapi-secret", autocomplete: "new-password", minlength: 16 });
  const persona = h("select", { id: "vapi-default-persona" }, personaOptions(config.default_persona_id));
  const numbers = h("textarea", { id: "vapi-numbers", rows: 3,
                                  placeholder: "+15551234567 = skeptical-cfo" });
  numbers.value = Object.entries(config.phone_numbers || {}).map(([n, p]) => `${n} = ${p}`).join("\n");
  const secretHint = () => (config.secret_set ? "A secret is set. Leave empty to keep it." : "No secret set yet. At least 16 characters.");
  const secretField = field("Webhook secret", secret, secretHint());
  const button = h("button", { type: "submit", class: "primary" }, "Save VAPI settings");
  const form = h("form", { class: "card vapi-form", novalidate: true, "aria-labelledby": "vapi-heading" },
    h("h2", { id: "vapi-heading" }, "VAPI phone calls"),
    h("p", { class: "hint" }, "Point your VAPI assistant's server URL here; calls to your numbers become practice calls with the persona you pick."),
    field("Webhook URL", webhook), field("Webhook authentication", mode), secretField,
    field("Default persona", persona, "Used when a number has no persona of its own."),
    field("Phone numbers", numbers, "One per line: the number, \"=\", then a persona id."),
    error, h("div", { class: "actions" }, button, saved));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    saved.textContent = "";
    const phone = {};
    for (const line of numbers.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
      const [number, id] = line.split("=").map((part) => part.trim());
      if (!number || !id) {
        showError(error, new Error(`"${line}": write the number, "=", then a persona id.`));
        numbers.focus();
        return;
      }
      phone[number.replace(/[\s()-]/g, "")] = id;
    }
    const body = { auth_mode: mode.value, default_persona_id: persona.value || null, phone_numbers: phone };
    if (secret.value) body.webhook_secret = secret.value;
    button.disabled = true;
    try {
      config = await api("/api/orgs/vapi", { method: "PUT", body });
      secret.value = "";
      secretField.querySelector(".hint").textContent = secretHint();
      saved.textContent = "Saved.";
    } catch (e) {
      showError(error, e);
      const target = { auth_mode: mode, webhook_secret: secret, default_persona_id: persona }[e.field]
        || (String(e.field || "").startsWith("phone_numbers") ? numbers : null);
      if (target) target.focus();
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// Single sign-on: whether members must use it, and the email domains whose new SSO users join as reps.
async function ssoCard() {
  const error = errorBox();
  const status = h("p", { class: "hint", role: "status" });
  const el = h("section", { class: "card sso-settings", "aria-labelledby": "sso-heading" },
    h("h2", { id: "sso-heading" }, "Single sign-on"));
  let config;
  try {
    config = await api("/api/orgs/sso");
  } catch (e) {
    showError(error, e);
    el.append(error);
    return el;
  }
  const names = config.providers.map((p) => p.name).join(", ");
  const required = h("input", { type: "checkbox", id: "sso-required", checked: config.sso_required,
                                disabled: !config.providers.length && !config.sso_required });
  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const requireForm = h("form", { class: "sso-require-form", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "sso-required" }, required, " Members must log in with single sign-on"),
      h("p", { class: "hint" }, config.providers.length
        ? `Password logins are then refused; members use ${names} on the log-in page.`
        : "No single sign-on provider is configured on this server (OIDC_PROVIDERS), so this cannot be turned on.")),
    h("div", { class: "actions" }, save));
  const domain = h("input", { type: "text", id: "sso-domain", placeholder: "acme.com", autocomplete: "off" });
  const claim = h("button", { type: "submit" }, "Claim domain");
  const claimForm = h("form", { class: "sso-domain-form", novalidate: true },
    field("Email domain", domain, "New people who sign in with a verified email on a claimed domain join as reps. "
      + "You can claim a domain only after signing in through single sign-on with your own email there."),
    h("div", { class: "actions" }, claim));
  const list = h("ul", { class: "sso-domains" });
  el.append(requireForm, h("h3", {}, "Claimed domains"), list, claimForm, status, error);

  function render() {
    list.replaceChildren(...(config.domains.length ? config.domains.map((d) => {
      const release = h("button", { type: "button", class: "link danger-link", "aria-label": `Release ${d.domain}` },
        "Release");
      release.addEventListener("click", async () => {
        error.hidden = true;
        try {
          await api(`/api/orgs/sso/domains/${encodeURIComponent(d.domain)}`, { method: "DELETE" });
          config.domains = config.domains.filter((x) => x.domain !== d.domain);
          status.textContent = `${d.domain} was released.`;
          render();
        } catch (e) {
          showError(error, e);
        }
      });
      return h("li", { "data-domain": d.domain }, h("strong", {}, d.domain), " ",
        h("span", { class: "hint" }, d.claimed_by_name ? `claimed by ${d.claimed_by_name}` : ""), " ", release);
    }) : [h("li", { class: "hint" }, "No domain claimed: new people need an invite.")]));
  }
  render();

  requireForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    status.textContent = "";
    save.disabled = true;
    try {
      config = await api("/api/orgs/sso", { method: "PUT", body: { sso_required: required.checked } });
      status.textContent = config.sso_required ? "Saved: members now log in with single sign-on." : "Saved: passwords work again.";
    } catch (e) {
      required.checked = config.sso_required;
      showError(error, e);
    } finally {
      save.disabled = false;
    }
  });
  claimForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    status.textContent = "";
    claim.disabled = true;
    try {
      config = await api("/api/orgs/sso/domains", { method: "POST", body: { domain: domain.value } });
      status.textContent = `${domain.value.trim().toLowerCase().replace(/^@/, "")} is claimed.`;
      domain.value = "";
      render();
    } catch (e) {
      showError(error, e);
      domain.focus();
    } finally {
      claim.disabled = false;
    }
  });
  return el;
}
