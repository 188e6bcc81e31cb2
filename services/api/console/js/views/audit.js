// Audit: entries with filters, the chain's verification status, the latest signed checkpoint and
// the transparency report. Shapes are read defensively (flat or nested under `event`), so the view
// keeps working as the audit API grows.

import { API, call } from "../api.js";
import { el, humanize, setStatus, statusLine, table, when } from "../dom.js";

export const AUDIT_PATHS = {
  entries: `${API}/audit/entries`,
  verification: `${API}/audit/verification`,
  checkpoint: `${API}/audit/checkpoints/latest`,
  transparency: `${API}/audit/transparency`,
};
const KINDS = ["", "login", "search", "image_view", "export", "hotlist_change", "alert_action", "policy_change", "retention_delete", "refusal"];

function field(entry, name) {
  if (entry[name] !== undefined) return entry[name];
  return entry.event ? entry.event[name] : undefined;
}

/** Scalars as a definition list, anything nested as formatted JSON. */
function describe(object) {
  const items = [];
  const nested = {};
  for (const [key, value] of Object.entries(object || {})) {
    if (value !== null && typeof value === "object") nested[key] = value;
    else items.push(el("dt", { text: humanize(key) }), el("dd", { text: value === null ? "—" : String(value) }));
  }
  return el("div", {}, el("dl", { class: "kv" }, items),
    Object.keys(nested).length ? el("details", {}, el("summary", { text: "Details" }), el("pre", { text: JSON.stringify(nested, null, 2) })) : null);
}

export function render(root) {
  const chainStatus = statusLine("chain-status");
  const chain = el("div", { id: "chain" });
  const checkpoint = el("div", { id: "checkpoint" });
  const entriesStatus = statusLine("audit-entries-status");
  const entries = el("div", { id: "audit-entries" });
  const report = el("div", { id: "transparency" });

  const form = el("form", { class: "inline", id: "audit-filter" },
    el("label", { for: "audit-kind" }, "Kind", el("select", { id: "audit-kind", name: "kind" },
      KINDS.map((k) => el("option", { value: k, text: k ? humanize(k) : "Any" })))),
    el("label", { for: "audit-actor" }, "Actor", el("input", { id: "audit-actor", name: "actor", autocomplete: "off" })),
    el("label", { for: "audit-agency" }, "Agency", el("input", { id: "audit-agency", name: "agency_id", autocomplete: "off" })),
    el("label", { for: "audit-from" }, "From", el("input", { id: "audit-from", name: "from", type: "datetime-local" })),
    el("label", { for: "audit-to" }, "To", el("input", { id: "audit-to", name: "to", type: "datetime-local" })),
    el("button", { type: "submit", text: "Show entries" }));

  async function loadEntries() {
    setStatus(entriesStatus, "Loading audit entries…");
    try {
      const body = await call(AUDIT_PATHS.entries, { query: {
        kind: form.kind.value, actor: form.actor.value.trim(), agency_id: form.agency_id.value.trim(),
        from: form.from.value ? new Date(form.from.value).toISOString() : "",
        to: form.to.value ? new Date(form.to.value).toISOString() : "", limit: 200,
      } });
      const list = Array.isArray(body) ? body : body.entries || [];
      setStatus(entriesStatus, `${list.length} entr${list.length === 1 ? "y" : "ies"} (newest 200 at most).`);
      entries.replaceChildren(table(["#", "Time", "Kind", "Actor", "Agency", "Action", "Outcome", "Purpose", "Case", "Results"],
        list.map((e) => el("tr", { class: field(e, "outcome") === "refused" ? "error" : "" },
          el("td", { text: field(e, "sequence") ?? "" }),
          el("td", { text: when(field(e, "occurred_at") || field(e, "chained_at")) }),
          el("td", { text: humanize(field(e, "kind")) }),
          el("td", { text: field(e, "actor") ?? "" }),
          el("td", { text: field(e, "agency_id") ?? "" }),
          el("td", { text: field(e, "action") ?? "" }),
          el("td", { text: field(e, "outcome") ?? "" }),
          el("td", { text: field(e, "purpose_code") ?? "" }),
          el("td", { text: field(e, "case_number") ?? "" }),
          el("td", { text: field(e, "result_count") ?? "" }))), "Audit entries"));
    } catch (err) {
      setStatus(entriesStatus, `Could not load audit entries: ${err.message}`, "error");
    }
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); loadEntries(); });

  async function loadChain() {
    try {
      const body = await call(AUDIT_PATHS.verification);
      const ok = body.ok ?? body.verified ?? body.valid;
      setStatus(chainStatus, ok ? "Chain verified: no entry edited, deleted, inserted or reordered." :
        "Chain verification FAILED.", ok ? "ok" : "error");
      chain.replaceChildren(describe(body));
    } catch (err) { setStatus(chainStatus, `Chain status unavailable: ${err.message}`, "error"); }
    try {
      checkpoint.replaceChildren(describe(await call(AUDIT_PATHS.checkpoint)));
    } catch (err) { checkpoint.replaceChildren(el("p", { class: "muted", text: `No checkpoint: ${err.message}` })); }
  }

  const reportButton = el("button", { type: "button", class: "secondary", text: "Show transparency report" });
  reportButton.addEventListener("click", async () => {
    try { report.replaceChildren(describe(await call(AUDIT_PATHS.transparency))); }
    catch (err) { report.replaceChildren(el("p", { class: "error", text: `Transparency report unavailable: ${err.message}` })); }
  });

  root.append(el("h1", { text: "Audit" }),
    el("div", { class: "grid-2" },
      el("section", { class: "panel", "aria-labelledby": "chain-title" }, el("h2", { id: "chain-title", text: "Hash chain" }), chainStatus, chain),
      el("section", { class: "panel", "aria-labelledby": "checkpoint-title" }, el("h2", { id: "checkpoint-title", text: "Latest signed checkpoint" }), checkpoint)),
    el("section", { class: "panel", "aria-labelledby": "entries-title" }, el("h2", { id: "entries-title", text: "Entries" }), form, entriesStatus, entries),
    el("section", { class: "panel", "aria-labelledby": "transparency-title" }, el("h2", { id: "transparency-title", text: "Transparency report" }), reportButton, report));
  loadChain();
  loadEntries();
}
