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

// Answers other than JSON bodies (a multipart upload, a POST streamed as Server-Sent Events): the
// same cookies, CSRF header and one refresh as `api`; an error answer throws the API's message.
async function sendRaw(path, init) {
  const go = () => fetch(path, { credentials: "same-origin", ...init,
                                 headers: { ...init.headers, "X-CSRF-Token": csrf() } });
  let response;
  try {
    response = await go();
    if (response.status === 401 && await refresh()) response = await go();
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "offline", "Sparring can't be reached. Check your connection and try again.");
  }
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    const error = data && data.error ? data.error : {};
    throw new ApiError(response.status, error.code || "error",
      error.message || `Something went wrong (${response.status}). Please try again.`, error.field, error);
  }
  return response;
}

export async function postForm(path, form) {
  const response = await sendRaw(path, { method: "POST", headers: { Accept: "application/json" }, body: form });
  return response.status === 204 ? null : response.json();
}

// POST a JSON body answered as Server-Sent Events (EventSource can only GET): yields
// {event, data} with data parsed from JSON, as each event arrives.
export async function* postEvents(path, body, { signal } = {}) {
  const response = await sendRaw(path, {
    method: "POST", signal, body: JSON.stringify(body),
    headers: { Accept: "text/event-stream", "Content-Type": "application/json" },
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let pending = "";  // a CR at a chunk's end may be the first half of a CRLF
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    let text = pending + value;
    pending = text.endsWith("\r") ? "\r" : "";
    if (pending) text = text.slice(0, -1);
    buffer += text.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}
