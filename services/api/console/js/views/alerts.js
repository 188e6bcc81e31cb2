// Live alerts: newest first, with crop, read, hotlist entry, list age, STALE and region-mismatch
// flags and the workflow actions. New alerts and workflow steps arrive through the shared store.

import { API, ApiError, call, imageUrl } from "../api.js";
import { age, el, humanize, percent, setStatus, statusLine, trackViewImage, when } from "../dom.js";

const ACTION_LABELS = {
  confirm_visual: "Confirm (visual match)",
  confirm_dispatch: "Dispatch",
  dismiss_misread: "Dismiss (misread)",
  record_outcome: "Record outcome",
};
const CLOSED = new Set(["dismissed_misread", "outcome_recorded"]);

export function render(root, ctx) {
  const list = el("ol", { class: "alert-list", id: "alert-list", "aria-label": "Alerts, newest first" });
  const empty = el("p", { class: "muted", id: "alerts-empty", text: "No alerts yet. New ones appear here as they happen." });
  const showClosed = el("input", { type: "checkbox", id: "show-closed", checked: true });
  const cards = new Map();

  function place(alert, isNew) {
    const card = alertCard(alert, ctx);
    if (isNew) card.classList.add("new");
    card.hidden = !showClosed.checked && CLOSED.has(alert.status);
    const old = cards.get(alert.alert_id);
    cards.set(alert.alert_id, card);
    if (old) {
      const hadFocus = old.contains(document.activeElement);
      old.replaceWith(card);
      if (hadFocus) card.querySelector(".workflow-status").focus();
    } else {
      // Newest first: before the first card that is older.
      const newer = (a) => (a.raised_at || a.captured_at || "") >= (alert.raised_at || alert.captured_at || "");
      const next = [...ctx.alerts.list()].find((a) => a.alert_id !== alert.alert_id && !newer(a) && cards.has(a.alert_id));
      list.insertBefore(card, next ? cards.get(next.alert_id) : null);
    }
    empty.hidden = cards.size > 0;
  }

  for (const alert of ctx.alerts.list()) place(alert, false);
  empty.hidden = cards.size > 0;
  const onChange = (event) => place(event.detail.alert, event.detail.isNew);
  ctx.alerts.addEventListener("change", onChange);
  showClosed.addEventListener("change", () => {
    for (const alert of ctx.alerts.list()) {
      const card = cards.get(alert.alert_id);
      if (card) card.hidden = !showClosed.checked && CLOSED.has(alert.status);
    }
  });

  root.append(
    el("h1", { text: "Live alerts" }),
    el("p", { class: "muted" }, "Hotlist hits from every camera you may see, newest first. Confirm visually against the crop before dispatching."),
    el("p", {}, el("label", { for: "show-closed", style: "flex-direction:row;align-items:center;gap:.4rem" }, showClosed, "Show dismissed and closed alerts")),
    empty,
    list,
  );
  return () => ctx.alerts.removeEventListener("change", onChange);
}

function alertCard(alert, ctx) {
  const flags = [];
  if (alert.stale) flags.push(el("span", { class: "flag", title: "The hotlist was not refreshed within its maximum age", text: "STALE LIST" }));
  if (alert.region_mismatch) flags.push(el("span", { class: "flag", title: "The read's region differs from the entry's", text: "REGION MISMATCH" }));
  if (alert.superseded) flags.push(el("span", { class: "flag", title: "The vehicle's final consensus read no longer matches this entry: probable misread", text: "SUPERSEDED: PROBABLE MISREAD" }));
  else if (alert.provisional) flags.push(el("span", { class: "flag", title: "Raised on an early frame while the vehicle is still in view; the final read follows", text: "EARLY READ" }));
  if (alert.match_kind && alert.match_kind !== "exact") flags.push(el("span", { class: "flag", text: `${humanize(alert.match_kind).toUpperCase()} MATCH` }));
  const headingId = `alert-${alert.alert_id}-heading`;
  const status = el("p", { class: "workflow-status muted", role: "status", tabindex: "-1" },
    `Status: ${humanize(alert.status)}`, workflowTrail(alert));
  const card = el("li", {
    class: `alert-card${CLOSED.has(alert.status) ? " closed" : ""}`,
    "aria-labelledby": headingId,
    dataset: { alertId: alert.alert_id, status: alert.status },
  },
  el("div", {},
    alertCrop(alert, ctx),
    el("div", { class: "muted", text: when(alert.captured_at) })),
  el("div", {},
    el("h2", { id: headingId, style: "margin:0" },
      el("span", { class: "plate", text: alert.plate }), " ",
      el("span", { class: "muted", text: `${alert.region || "no region"} · read ${percent(alert.confidence)}` })),
    flags.length ? el("div", {}, flags) : null,
    el("dl", {},
      el("dt", { text: "Hotlist" }), el("dd", { text: `${alert.hotlist_name} (list age ${age(alert.list_age_seconds)})` }),
      el("dt", { text: "Entry" }), el("dd", {},
        el("span", { class: "plate", text: alert.entry_plate }), ` — ${humanize(alert.reason)}, priority ${alert.priority}`),
      alert.vehicle_description ? [el("dt", { text: "Vehicle" }), el("dd", { text: alert.vehicle_description })] : null,
      alert.notes ? [el("dt", { text: "Notes" }), el("dd", { text: alert.notes })] : null,
      el("dt", { text: "Camera" }), el("dd", { text: `${alert.camera_name || alert.camera_id} (${alert.agency_id})` }),
    )),
  workflow(alert, ctx, status));
  return card;
}

const ALERT_PURPOSE_KEY = "platewatch.alertPurpose";

/**
 * The alert's crop. Image views need a purpose and case number: once given for this tab's alert
 * monitoring, every crop loads with it (each view is audited); until then a button asks for it.
 */
function alertCrop(alert, ctx) {
  const alt = `Plate crop of read ${alert.plate}`;
  const purpose = JSON.parse(sessionStorage.getItem(ALERT_PURPOSE_KEY) || "null");
  const holder = el("div", { class: "crop-holder" });
  if (!alert.crop_url) { holder.append(el("span", { class: "muted", text: "no crop" })); return holder; }
  const ask = el("button", { type: "button", class: "secondary", text: "Show crop…", "aria-label": `Show the crop of ${alert.plate}` });
  ask.addEventListener("click", async () => {
    const given = await ctx.askPurpose("viewing alert crops");
    if (!given) return;
    sessionStorage.setItem(ALERT_PURPOSE_KEY, JSON.stringify(given));
    // Every card waiting for a purpose loads its crop now.
    for (const waiting of document.querySelectorAll(".alert-card .crop-holder[data-needs-purpose]")) {
      waiting.dispatchEvent(new CustomEvent("purpose-given"));
    }
  });
  function load(withPurpose) {
    imageUrl(alert.crop_url, withPurpose).then((url) => {
      trackViewImage(url);
      delete holder.dataset.needsPurpose;
      holder.replaceChildren(el("img", { class: "crop", alt, src: url }));
    }).catch((err) => {
      if (err instanceof ApiError && (err.status === 422 || err.status === 403) && !withPurpose) {
        holder.dataset.needsPurpose = "";
        holder.replaceChildren(ask);
      } else {
        holder.replaceChildren(el("span", { class: "muted", text: `crop unavailable: ${err.message}` }));
      }
    });
  }
  holder.addEventListener("purpose-given", () => load(JSON.parse(sessionStorage.getItem(ALERT_PURPOSE_KEY))));
  load(purpose);
  return holder;
}

function workflowTrail(alert) {
  const steps = [];
  if (alert.confirmed_by) steps.push(`confirmed by ${alert.confirmed_by} ${when(alert.confirmed_at)}`);
  if (alert.dispatched_by) steps.push(`dispatched by ${alert.dispatched_by} ${when(alert.dispatched_at)}`);
  if (alert.dismissed_by) steps.push(`dismissed by ${alert.dismissed_by} ${when(alert.dismissed_at)}`);
  if (alert.outcome) steps.push(`outcome ${alert.outcome} by ${alert.outcome_recorded_by}`);
  return steps.length ? ` — ${steps.join("; ")}` : "";
}

function workflow(alert, ctx, status) {
  const box = el("div", { class: "workflow" }, status);
  const allowed = alert.allowed_actions || [];
  if (!allowed.length) return box;
  const note = el("input", { id: `note-${alert.alert_id}`, maxlength: 500, autocomplete: "off" });
  const outcome = el("select", { id: `outcome-${alert.alert_id}` },
    el("option", { value: "stop", text: "Stop" }), el("option", { value: "arrest", text: "Arrest" }),
    el("option", { value: "none", text: "None" }));
  const buttons = [];
  async function act(action) {
    const body = { action, actor: ctx.actor() };
    if (action === "record_outcome") body.outcome = outcome.value;
    if (note.value.trim()) body.note = note.value.trim();
    buttons.forEach((b) => { b.disabled = true; });
    setStatus(status, `Sending ${humanize(action)}…`);
    try {
      const updated = await call(`${API}/alerts/${encodeURIComponent(alert.alert_id)}/actions`, { method: "POST", json: body });
      ctx.alerts.put(updated);
    } catch (err) {
      const why = err instanceof ApiError && err.status === 409 ? `Not allowed now: ${err.detail}` : `Failed: ${err.message}`;
      setStatus(status, why, "error");
      buttons.forEach((b) => { b.disabled = false; });
    }
  }
  for (const action of allowed) {
    const button = el("button", {
      type: "button",
      class: action === "dismiss_misread" ? "danger" : (action === "record_outcome" ? "secondary" : ""),
      dataset: { action },
      text: ACTION_LABELS[action] || humanize(action),
      onclick: () => act(action),
    });
    buttons.push(button);
  }
  box.append(
    el("label", { for: note.id }, "Note (optional)", note),
    allowed.includes("record_outcome") ? el("label", { for: outcome.id }, "Outcome", outcome) : null,
    el("div", { class: "actions", style: "margin-top:0" }, buttons),
  );
  return box;
}
