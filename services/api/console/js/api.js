// HTTP access for the console: bearer token on every call, purpose headers on searches and image
// views, images as blob URLs (an <img> cannot send headers), and a fetch-based Server-Sent Events
// reader for the live alert stream (EventSource cannot send headers either).

export const API = "/api/v1";
const TOKEN_KEY = "platewatch.token";

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail || `request failed (${status})`);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  // Called when the API answers 401: the app shows the login view.
  onUnauthorized: () => {},
};

/** Headers for a call: Authorization when signed in, purpose headers when `purpose` is given. */
export function headers(purpose, extra = {}) {
  const result = { ...extra };
  if (session.token) result.Authorization = `Bearer ${session.token}`;
  if (purpose) {
    result["X-Purpose-Code"] = purpose.code;
    result["X-Case-Number"] = purpose.caseNumber;
    if (purpose.note) result["X-Purpose-Note"] = purpose.note;
    if (purpose.approvalId) result["X-Approval-Id"] = purpose.approvalId;
  }
  return result;
}

function detailOf(body, status) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  }
  return `request failed (${status})`;
}

/**
 * JSON call. `opts`: method, json (body), body (raw), contentType, purpose, query (object or
 * URLSearchParams). Throws ApiError with the server's detail on non-2xx answers.
 */
export async function call(path, opts = {}) {
  let url = path.startsWith("/") ? path : `${API}/${path}`;
  if (opts.query) {
    const query = opts.query instanceof URLSearchParams ? opts.query : toQuery(opts.query);
    const text = query.toString();
    if (text) url += (url.includes("?") ? "&" : "?") + text;
  }
  const extra = { Accept: "application/json" };
  let body = opts.body;
  if (opts.json !== undefined) {
    extra["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  } else if (opts.contentType) {
    extra["Content-Type"] = opts.contentType;
  }
  const response = await fetch(url, { method: opts.method || "GET", headers: headers(opts.purpose, extra), body });
  if (response.status === 204) return null;
  let parsed = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) parsed = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && !opts.noAuthRedirect) session.onUnauthorized();
    throw new ApiError(response.status, detailOf(parsed, response.status), parsed);
  }
  return parsed;
}

/** Object -> URLSearchParams; arrays repeat the key, empty values are left out. */
export function toQuery(object) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(object)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => query.append(key, v));
    else query.set(key, String(value));
  }
  return query;
}

/** An image fetched with the session's headers, as a blob: URL (caller revokes it). */
export async function imageUrl(path, purpose) {
  const response = await fetch(path, { headers: headers(purpose, { Accept: "image/jpeg" }) });
  if (!response.ok) {
    let parsed = null;
    try { parsed = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, detailOf(parsed, response.status), parsed);
  }
  return URL.createObjectURL(await response.blob());
}

/**
 * Follow the live alert stream until `signal` aborts: calls onEvent(type, data, id) per event and
 * onState("open"|"reconnecting"|"closed", detail). Reconnects with backoff and Last-Event-ID so no
 * alert is lost across a short interruption.
 */
export async function followStream(path, { onEvent, onState, signal }) {
  let lastEventId = null;
  let delay = 1000;
  while (!signal.aborted) {
    try {
      const extra = { Accept: "text/event-stream" };
      if (lastEventId) extra["Last-Event-ID"] = lastEventId;
      const response = await fetch(path, { headers: headers(null, extra), signal, cache: "no-store" });
      if (response.status === 401) { session.onUnauthorized(); onState("closed", "signed out"); return; }
      if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
      onState("open");
      delay = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = parseEvent(block);
          if (event) {
            if (event.id) lastEventId = event.id;
            onEvent(event.type, event.data, event.id);
          }
        }
      }
      throw new Error("stream ended");
    } catch (err) {
      if (signal.aborted) break;
      onState("reconnecting", String(err && err.message ? err.message : err));
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }
  onState("closed");
}

function parseEvent(block) {
  let type = "message";
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  if (!data.length) return null;
  return { type, id, data: data.join("\n") };
}
