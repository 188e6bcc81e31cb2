// The console shell: sign-in, hash routing between views, the purpose prompt and the live alert
// store (one stream per signed-in tab, shared by every view).

import { API, ApiError, call, followStream, session } from "./api.js";
import { el, revokeViewImages } from "./dom.js";
import * as alertsView from "./views/alerts.js";
import * as auditView from "./views/audit.js";
import * as camerasView from "./views/cameras.js";
import * as hotlistsView from "./views/hotlists.js";
import * as loginView from "./views/login.js";
import * as searchView from "./views/search.js";

const VIEWS = {
  alerts: alertsView,
  search: searchView,
  hotlists: hotlistsView,
  cameras: camerasView,
  audit: auditView,
};
const PURPOSE_KEY = "platewatch.purpose";

const root = document.getElementById("view");
const nav = document.getElementById("nav");
const sessionBox = document.getElementById("session");
const streamStatus = document.getElementById("stream-status");
const announcer = document.getElementById("announcer");
const badge = document.getElementById("alert-badge");

/** Live alerts, newest first, one entry per alert id (the latest version wins). */
class AlertStore extends EventTarget {
  constructor() {
    super();
    this.byId = new Map();
    this.unseen = 0;
  }
  list() {
    return [...this.byId.values()].sort((a, b) => key(b).localeCompare(key(a)));
  }
  put(alert, { fresh = false } = {}) {
    const known = this.byId.has(alert.alert_id);
    this.byId.set(alert.alert_id, alert);
    this.dispatchEvent(new CustomEvent("change", { detail: { alert, isNew: fresh && !known } }));
    return !known;
  }
  clear() { this.byId.clear(); this.unseen = 0; }
}
function key(alert) { return alert.raised_at || alert.captured_at || ""; }

const ctx = {
  principal: null,
  config: { tile_url: "", tile_attribution: "" },
  alerts: new AlertStore(),
  identity: "bearer", // "bearer" when the API has a login, "open" when it has none (development)
  askPurpose,
  actor() { return ctx.principal ? ctx.principal.subject : "console"; },
};
let currentCleanup = null;
let streamAbort = null;

// ---- purpose prompt ------------------------------------------------------------------------

/** Ask for the purpose and case number (pre-filled with the last ones); null when cancelled. */
function askPurpose(what = "this search") {
  const dialog = document.getElementById("purpose-dialog");
  const form = document.getElementById("purpose-form");
  const last = JSON.parse(sessionStorage.getItem(PURPOSE_KEY) || "null") || {};
  form.purpose_code.value = last.code || "";
  form.case_number.value = last.caseNumber || "";
  form.purpose_note.value = last.note || "";
  form.approval_id.value = last.approvalId || "";
  document.getElementById("purpose-title").textContent = `Purpose of ${what}`;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "ok") { resolve(null); return; }
      const purpose = {
        code: form.purpose_code.value.trim(),
        caseNumber: form.case_number.value.trim(),
        note: form.purpose_note.value.trim(),
        approvalId: form.approval_id.value.trim(),
      };
      sessionStorage.setItem(PURPOSE_KEY, JSON.stringify(purpose));
      resolve(purpose);
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    (form.purpose_code.value ? form.case_number : form.purpose_code).focus();
  });
}

// ---- session -------------------------------------------------------------------------------

async function loadConfig() {
  try { ctx.config = await call("/console/config.json"); } catch { /* defaults: plain map */ }
}

/** Who is signed in: the principal, null when a login is needed; detects an API without login. */
async function whoAmI() {
  try {
    const me = await call("/auth/me", { noAuthRedirect: true });
    ctx.identity = "bearer";
    return me;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      // This API has no identity module: every call is allowed as is (development builds only).
      ctx.identity = "open";
      const name = sessionStorage.getItem("platewatch.openUser");
      return name ? { subject: name, agency_id: "", roles: [], kind: "human" } : null;
    }
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return null;
    throw err;
  }
}

export async function signedIn(principal) {
  ctx.principal = principal;
  document.getElementById("session-user").textContent =
    `${principal.subject}${principal.agency_id ? ` (${principal.agency_id})` : ""}`;
  nav.hidden = false;
  sessionBox.hidden = false;
  startAlerts();
  if (!location.hash || location.hash === "#/login") location.hash = "#/alerts";
  else route();
}

function signOut(message) {
  session.token = null;
  sessionStorage.removeItem("platewatch.openUser");
  sessionStorage.removeItem("platewatch.alertPurpose");
  sessionStorage.removeItem(PURPOSE_KEY);
  stopAlerts();
  ctx.principal = null;
  nav.hidden = true;
  sessionBox.hidden = true;
  showLogin(message);
}

session.onUnauthorized = () => {
  if (ctx.principal) signOut("Your session has ended; please sign in again.");
};

function showLogin(message) {
  cleanupView();
  loginView.render(root, ctx, { message, onSignedIn: signedIn });
}

// ---- live alerts -----------------------------------------------------------------------------

async function startAlerts() {
  stopAlerts();
  ctx.alerts.clear();
  streamAbort = new AbortController();
  const signal = streamAbort.signal;
  streamStatus.hidden = false;
  streamStatus.textContent = "Connecting to the live alert stream…";
  try {
    const recent = await call("alerts", { query: { limit: 200 } });
    for (const alert of recent.alerts) ctx.alerts.put(alert);
  } catch (err) {
    streamStatus.textContent = `Could not load recent alerts: ${err.message}`;
  }
  followStream(`${API}/alerts/stream`, {
    signal,
    onState(state, detail) {
      streamStatus.classList.toggle("down", state !== "open");
      if (state === "open") streamStatus.textContent = "Live: connected to the alert stream.";
      else if (state === "reconnecting") streamStatus.textContent = `Live stream interrupted (${detail}); reconnecting…`;
      else streamStatus.textContent = "Live stream closed.";
      streamStatus.dataset.state = state;
    },
    onEvent(type, data) {
      if (type !== "alert" && type !== "alert_update") return;
      const alert = JSON.parse(data);
      const isNew = ctx.alerts.put(alert, { fresh: type === "alert" });
      if (isNew && type === "alert") {
        announcer.textContent = `New alert: plate ${alert.plate}, ${alert.hotlist_name}, ` +
          `${alert.camera_name || alert.camera_id}${alert.stale ? ", stale list" : ""}.`;
        if (currentView() !== "alerts") {
          ctx.alerts.unseen += 1;
          badge.textContent = String(ctx.alerts.unseen);
          badge.hidden = false;
        }
      }
    },
  });
}

function stopAlerts() {
  if (streamAbort) streamAbort.abort();
  streamAbort = null;
  streamStatus.hidden = true;
}

// ---- routing -------------------------------------------------------------------------------

function currentView() {
  const name = location.hash.replace(/^#\/?/, "").split("?")[0];
  return VIEWS[name] ? name : "alerts";
}

function cleanupView() {
  if (currentCleanup) { try { currentCleanup(); } catch { /* view already gone */ } }
  currentCleanup = null;
  revokeViewImages();
}

function route() {
  if (!ctx.principal) return;
  const name = currentView();
  cleanupView();
  for (const link of nav.querySelectorAll("a[data-view]")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (name === "alerts") { ctx.alerts.unseen = 0; badge.hidden = true; }
  root.replaceChildren();
  currentCleanup = VIEWS[name].render(root, ctx) || null;
  root.focus();
}

window.addEventListener("hashchange", route);
document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out."));

async function boot() {
  await loadConfig();
  let principal = null;
  try {
    principal = await whoAmI();
  } catch (err) {
    root.replaceChildren(el("p", { class: "error", role: "alert", text: `The API is not answering: ${err.message}` }));
    return;
  }
  if (principal) signedIn(principal);
  else showLogin();
}

boot();
