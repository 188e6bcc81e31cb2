// Hotlists: the lists with their freshness, a list's entries, adding and removing entries, and CSV
// import with the per-row errors the server reports.

import { API, ApiError, call } from "../api.js";
import { age, el, humanize, setStatus, statusLine, table, when } from "../dom.js";

const REASONS = ["stolen_vehicle", "stolen_plate", "wanted_person", "missing_person", "amber_alert", "silver_alert", "custom", "unspecified"];

export function freshness(list, now = Date.now()) {
  if (!list.max_age_seconds) return { state: "no-limit", text: "no age limit" };
  if (!list.refreshed_at) return { state: "stale", text: "never refreshed" };
  const ageSeconds = (now - Date.parse(list.refreshed_at)) / 1000;
  return ageSeconds > list.max_age_seconds
    ? { state: "stale", text: `STALE (${age(ageSeconds)} old, limit ${age(list.max_age_seconds)})` }
    : { state: "fresh", text: `fresh (${age(ageSeconds)} old)` };
}

export function render(root, ctx) {
  const status = statusLine("hotlists-status");
  const lists = el("div", { id: "hotlists-table" });
  const detail = el("div", { id: "hotlist-detail" });

  async function load(selectId) {
    setStatus(status, "Loading hotlists…");
    try {
      const body = await call("hotlists");
      setStatus(status, `${body.hotlists.length} hotlist(s).`);
      lists.replaceChildren(table(["Name", "Agency", "Entries", "Refreshed", "Freshness", ""], body.hotlists.map((h) => {
        const fresh = freshness(h);
        return el("tr", { dataset: { hotlistId: h.hotlist_id } },
          el("td", { text: h.name }),
          el("td", { text: h.agency_id || "all" }),
          el("td", { text: h.entry_count }),
          el("td", { text: when(h.refreshed_at) || "never" }),
          el("td", {}, el("span", { class: `status-pill ${fresh.state}`, text: fresh.text })),
          el("td", {}, el("button", { type: "button", class: "secondary", text: "Open",
            "aria-label": `Open hotlist ${h.name}`, onclick: () => openList(h) })));
      }), "Hotlists"));
      const selected = body.hotlists.find((h) => h.hotlist_id === selectId);
      if (selected) openList(selected, false);
    } catch (err) {
      setStatus(status, `Could not load hotlists: ${err.message}`, "error");
    }
  }

  async function openList(list, focus = true) {
    const entriesStatus = statusLine("entries-status");
    const entries = el("div", { id: "entries-table" });
    const heading = el("h2", { id: "hotlist-title", tabindex: "-1", text: `Hotlist: ${list.name}` });
    detail.replaceChildren(el("section", { class: "panel", "aria-labelledby": "hotlist-title" },
      heading,
      el("p", { class: "muted", text: `${list.hotlist_id} · max age ${list.max_age_seconds ? age(list.max_age_seconds) : "none"}` +
        ` · ${list.fuzzy_confusables ? "look-alike characters match" : "exact characters"}` }),
      entriesStatus, entries,
      addEntryForm(list, () => load(list.hotlist_id)),
      // After an import keep its summary and errors on screen: refresh the tables only.
      importForm(list, () => { load(); loadEntries(); })));
    if (focus) heading.focus();
    loadEntries();

    async function loadEntries() {
    try {
      const body = await call(`${API}/hotlists/${encodeURIComponent(list.hotlist_id)}/entries`);
      setStatus(entriesStatus, `${body.entries.length} entr${body.entries.length === 1 ? "y" : "ies"}.`);
      entries.replaceChildren(table(["Plate", "Region", "Reason", "Priority", "Source", "Expires", "Notes", ""],
        body.entries.map((e) => el("tr", {},
          el("td", {}, el("span", { class: "plate", text: e.plate })),
          el("td", { text: e.region }),
          el("td", { text: humanize(e.reason) }),
          el("td", { text: e.priority }),
          el("td", { text: e.source }),
          el("td", { text: when(e.expires_at) }),
          el("td", { text: [e.vehicle_description, e.notes].filter(Boolean).join(" — ") }),
          el("td", {}, el("button", { type: "button", class: "danger", text: "Remove", "aria-label": `Remove ${e.plate}`,
            onclick: async () => {
              if (!window.confirm(`Remove ${e.plate} from ${list.name}?`)) return;
              try {
                await call(`${API}/hotlists/${encodeURIComponent(list.hotlist_id)}/entries/${encodeURIComponent(e.entry_id)}`, { method: "DELETE" });
                load(list.hotlist_id);
              } catch (err) { setStatus(entriesStatus, `Remove failed: ${err.message}`, "error"); }
            } })))), `Entries of ${list.name}`));
    } catch (err) {
      setStatus(entriesStatus, `Could not load entries: ${err.message}`, "error");
    }
    }
  }

  root.append(el("h1", { text: "Hotlists" }), status, lists, createListForm(() => load()), detail);
  load();
}

function createListForm(onDone) {
  const status = statusLine("create-list-status");
  const form = el("form", { class: "inline", id: "create-list-form" },
    el("label", { for: "new-list-name" }, "Name", el("input", { id: "new-list-name", name: "name", required: true, maxlength: 200 })),
    el("label", { for: "new-list-agency" }, "Agency (empty: all)", el("input", { id: "new-list-agency", name: "agency_id" })),
    el("label", { for: "new-list-age" }, "Max age (hours, 0 = none)",
      el("input", { id: "new-list-age", name: "max_age_hours", type: "number", min: 0, step: 1, value: 24 })),
    el("label", { style: "flex-direction:row;align-items:center;gap:.3rem" },
      el("input", { type: "checkbox", name: "fuzzy_confusables", id: "new-list-fuzzy" }), "Match look-alike characters"),
    el("button", { type: "submit", text: "Create list" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await call("hotlists", { method: "POST", json: {
        name: form.name.value.trim(), agency_id: form.agency_id.value.trim(),
        max_age_seconds: Math.round(Number(form.max_age_hours.value || 0) * 3600),
        fuzzy_confusables: form.fuzzy_confusables.checked,
      } });
      setStatus(status, `Created ${created.name}.`, "ok");
      form.reset();
      onDone();
    } catch (err) { setStatus(status, `Create failed: ${err.message}`, "error"); }
  });
  return el("section", { class: "panel", "aria-labelledby": "create-list-title" },
    el("h2", { id: "create-list-title", text: "New hotlist" }), form, status);
}

function addEntryForm(list, onDone) {
  const status = statusLine("add-entry-status");
  const form = el("form", { class: "inline", id: "add-entry-form" },
    el("label", { for: "entry-plate" }, "Plate", el("input", { id: "entry-plate", name: "plate", required: true, maxlength: 32, autocomplete: "off" })),
    el("label", { for: "entry-region" }, "Region", el("input", { id: "entry-region", name: "region", maxlength: 16 })),
    el("label", { for: "entry-reason" }, "Reason",
      el("select", { id: "entry-reason", name: "reason" }, REASONS.map((r) => el("option", { value: r, text: humanize(r) })))),
    el("label", { for: "entry-priority" }, "Priority", el("input", { id: "entry-priority", name: "priority", type: "number", min: 1, value: 1 })),
    el("label", { for: "entry-notes" }, "Notes", el("input", { id: "entry-notes", name: "notes", maxlength: 500 })),
    el("button", { type: "submit", text: "Add entry" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call(`${API}/hotlists/${encodeURIComponent(list.hotlist_id)}/entries`, { method: "POST", json: { entries: [{
        plate: form.plate.value.trim(), region: form.region.value.trim(), reason: form.reason.value,
        priority: Number(form.priority.value || 1), notes: form.notes.value.trim(), source: "console",
      }] } });
      onDone();
    } catch (err) { setStatus(status, `Add failed: ${err.message}`, "error"); }
  });
  return el("div", {}, el("h3", { text: "Add an entry" }), form, status);
}

function importForm(list, onDone) {
  const status = statusLine("import-status");
  const errors = el("div", { id: "import-errors" });
  const form = el("form", { class: "inline", id: "import-form" },
    el("label", { for: "import-file" }, "CSV file", el("input", { id: "import-file", name: "file", type: "file", accept: ".csv,text/csv", required: true })),
    el("label", { style: "flex-direction:row;align-items:center;gap:.3rem" },
      el("input", { type: "checkbox", name: "allow_partial", id: "import-partial" }), "Apply good rows even if some are bad"),
    el("label", { style: "flex-direction:row;align-items:center;gap:.3rem" },
      el("input", { type: "checkbox", name: "replace", id: "import-replace" }), "Full extract (remove entries not in the file)"),
    el("button", { type: "submit", text: "Import" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.file.files[0];
    if (!file) return;
    setStatus(status, `Importing ${file.name}…`);
    errors.replaceChildren();
    let summary;
    try {
      summary = await call(`${API}/hotlists/${encodeURIComponent(list.hotlist_id)}/import`, {
        method: "POST", body: file, contentType: "text/csv",
        query: { filename: file.name, allow_partial: form.allow_partial.checked, replace: form.replace.checked },
      });
      setStatus(status, `Imported: ${summary.imported} new, ${summary.updated} updated, ${summary.unchanged} unchanged, ` +
        `${summary.removed} removed, ${summary.error_count} bad row(s) of ${summary.rows}.`, summary.error_count ? "error" : "ok");
    } catch (err) {
      summary = err instanceof ApiError ? err.body : null;
      setStatus(status, `Import refused: ${err.message}`, "error");
    }
    if (summary && summary.errors && summary.errors.length) {
      errors.append(table(["Line", "Column", "Problem"], summary.errors.map((e) => el("tr", {},
        el("td", { text: e.line || "file" }), el("td", { text: e.column }), el("td", { text: e.message }))), "Import errors"));
    }
    if (summary && summary.applied) onDone();
  });
  return el("div", {}, el("h3", { text: "Import a CSV extract" }), form, status, errors);
}
