// The HTTP API as the pages use it: cookies carry the login (HttpOnly), changes echo the CSRF
// cookie, an expired access token is refreshed once, and errors become messages a rep reads.

export class ApiError extends Error {
  constructor(status, code, message, field, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.job = details.job ?? null;  // score_not_ready: the scoring job's {id, status, error}
    this.details = details;
  }
}

function csrf() {
  const match = document.cookie.match(/(?:^|;\s*)sparring_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function send(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  return fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function refresh() {
  const response = await fetch("/api/auth/refresh", {
    method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf() },
  });
  return response.ok;
}

export async function api(path, { method = "GET", body } = {}) {
  let response;
  try {
    response = await send(method, path, body);
    if (response.status === 401 && !path.startsWith("/api/auth/") && await refresh()) {
      response = await send(method, path, body);
    }
  } catch {
    throw new ApiError(0, "offline", "Sparring can't be reached. Check your connection and try again.");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    throw new ApiError(response.status, error.code || "error",
      error.message || `Something went wrong (${response.status}). Please try again.`, error.field, error);
  }
  return data;
}

let current = null;

export async function me({ force = false } = {}) {
  if (current && !force) return current;
  if (!csrf()) return (current = null);  // never signed in here (or logged out): no need to ask
  try {
    current = await api("/api/me");
  } catch (error) {
    if (error.status === 401) current = null;
    else throw error;
  }
  return current;
}

export function forget() {
  current = null;
}

export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}
