// Search: plate (exact, partial with wildcards, fuzzy) with filters, asked for a purpose and case
// number first; results with crops; a vehicle timeline on the map, its visit frequency and convoys.

import { ApiError, call } from "../api.js";
import { age, authImage, el, humanize, percent, setStatus, statusLine, table, when } from "../dom.js";
import { drawCameras, drawPath, fit, makeMap } from "../map.js";
import * as analytics from "../analytics.js";

export function render(root, ctx) {
  const status = statusLine("search-status");
  const results = el("div", { id: "search-results" });
  const detail = el("div", { id: "vehicle-detail" });
  const cameraSelect = el("select", { id: "search-camera", name: "camera_id" }, el("option", { value: "", text: "Any camera" }));
  loadCameras(ctx).then((cameras) => {
    for (const c of cameras) cameraSelect.append(el("option", { value: c.camera_id, text: c.name || c.camera_id }));
  });
  const mode = (value, label, checked) => el("label", {},
    el("input", { type: "radio", name: "mode", value, checked }), label);
  const form = el("form", { class: "inline", id: "search-form", "aria-describedby": "search-help" },
    el("label", { for: "search-plate" }, "Plate",
      el("input", { id: "search-plate", name: "plate", required: true, maxlength: 32, autocomplete: "off", spellcheck: "false" })),
    el("fieldset", {}, el("legend", { text: "Match" }),
      mode("exact", "Exact", true), mode("partial", "Partial", false), mode("fuzzy", "Fuzzy", false)),
    el("label", { for: "search-camera" }, "Camera", cameraSelect),
    el("label", { for: "search-from" }, "From", el("input", { id: "search-from", name: "from", type: "datetime-local" })),
    el("label", { for: "search-to" }, "To", el("input", { id: "search-to", name: "to", type: "datetime-local" })),
    el("label", { for: "search-confidence" }, "Min. confidence",
      el("input", { id: "search-confidence", name: "min_confidence", type: "number", min: 0, max: 1, step: 0.05, value: 0 })),
    el("button", { type: "submit", id: "search-submit", text: "Search" }));
  const help = el("p", { id: "search-help", class: "muted" },
    "Partial: use ? for one character and * for any run (ABC* or *123); without wildcards the text is matched anywhere in the plate. ",
    "Fuzzy: plates within one or two characters, including look-alikes (0/O, 8/B).");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const plate = form.plate.value.trim().toUpperCase();
    if (!plate) { setStatus(status, "Enter a plate.", "error"); form.plate.focus(); return; }
    const purpose = await ctx.askPurpose("this search");
    if (!purpose) { setStatus(status, "Search cancelled: a purpose and case number are required."); return; }
    const filters = {
      camera_id: form.camera_id.value || undefined,
      from: form.from.value ? new Date(form.from.value).toISOString() : undefined,
      to: form.to.value ? new Date(form.to.value).toISOString() : undefined,
      min_confidence: Number(form.min_confidence.value) > 0 ? form.min_confidence.value : undefined,
    };
    const matchMode = form.mode.value;
    setStatus(status, "Searching…");
    results.replaceChildren();
    try {
      const found = await analytics.searchPlates(plate, matchMode, filters, purpose);
      setStatus(status, `${found.reads.length} read(s) for ${found.label}${found.more ? " (more available; narrow the filters)" : ""}.`);
      results.append(readsTable(found.reads, purpose, (read) => showVehicle(detail, ctx, read.plate, purpose)));
    } catch (err) {
      setStatus(status, refusal(err), "error");
    }
  });

  root.append(
    el("h1", { text: "Search reads" }),
    el("section", { class: "panel", "aria-labelledby": "search-form-title" },
      el("h2", { id: "search-form-title", class: "visually-hidden", text: "Search form" }), form, help),
    status, results, detail);
  form.plate.focus();
}

export function refusal(err) {
  if (err instanceof ApiError && (err.status === 403 || err.status === 422)) return `Refused: ${err.detail}`;
  if (err instanceof ApiError && err.status === 404) return `Not available on this server: ${err.detail}`;
  return `Search failed: ${err.message}`;
}

let cameraCache = null;
export function loadCameras() {
  if (!cameraCache) {
    cameraCache = call("cameras").then((r) => r.cameras).catch(() => { cameraCache = null; return []; });
  }
  return cameraCache;
}

function readsTable(reads, purpose, onTimeline) {
  const rows = reads.map((read) => el("tr", { dataset: { readId: read.read_id } },
    el("td", { text: when(read.captured_at) }),
    el("td", {}, el("span", { class: "plate", text: read.plate })),
    el("td", { text: read.region }),
    el("td", { text: percent(read.confidence) }),
    el("td", { text: read.camera_id }),
    el("td", { text: humanize(read.direction) }),
    el("td", {}, authImage(read.crop_url, `Plate crop of ${read.plate}`, purpose)),
    el("td", {}, el("button", { type: "button", class: "secondary", text: "Timeline",
      "aria-label": `Timeline of ${read.plate}`, onclick: () => onTimeline(read) }))));
  return table(["Time", "Plate", "Region", "Confidence", "Camera", "Direction", "Crop", ""], rows, "Search results");
}

/** Timeline map, visit frequency and convoys of one plate (same purpose as the search). */
async function showVehicle(detail, ctx, plate, purpose) {
  const mapNode = el("div", { class: "map", id: "timeline-map", role: "region", "aria-label": `Map of the sightings of ${plate}` });
  const timelineStatus = statusLine("timeline-status");
  const list = el("ol", { id: "timeline-list" });
  const visits = el("div", { id: "visits" });
  const convoy = el("div", { id: "convoy" });
  const heading = el("h2", { id: "timeline-title", tabindex: "-1" }, "Vehicle timeline: ", el("span", { class: "plate", text: plate }));
  detail.replaceChildren(el("section", { class: "panel", "aria-labelledby": "timeline-title" },
    heading, timelineStatus,
    el("div", { class: "grid-2" }, mapNode, el("div", {}, el("h3", { text: "Sightings, oldest first" }), list)),
    el("h3", { text: "Visit frequency" }), visits,
    el("h3", { text: "Possible convoys" }), convoy));
  heading.focus();
  setStatus(timelineStatus, "Loading the timeline…");
  const map = makeMap(mapNode, ctx.config);
  const cameras = await loadCameras(ctx);
  const cameraLayer = drawCameras(map, cameras);
  try {
    const sightings = await analytics.timeline(plate, purpose);
    const byId = new Map(cameras.map((c) => [c.camera_id, c]));
    const points = sightings.map((s) => {
      const cam = byId.get(s.camera_id) || {};
      return { lat: s.lat || cam.lat, lon: s.lon || cam.lon, label: `${when(s.captured_at)} — ${cam.name || s.camera_id}` };
    });
    const path = drawPath(map, points);
    fit(map, [path, cameraLayer]);
    list.replaceChildren(...points.map((p) => el("li", { text: p.label })));
    setStatus(timelineStatus, `${sightings.length} sighting(s) of ${plate}.`, "ok");
    try {
      visits.replaceChildren(await visitsTable(plate, purpose, sightings, byId));
    } catch (err) {
      visits.replaceChildren(el("p", { class: "error", role: "status", text: refusal(err) }));
    }
  } catch (err) {
    fit(map, [cameraLayer]);
    setStatus(timelineStatus, refusal(err), "error");
  }
  convoyPanel(convoy, plate, purpose);
}

async function visitsTable(plate, purpose, sightings, cameras) {
  const name = (id) => (cameras.get(id) || {}).name || id;
  const result = await analytics.visits(plate, purpose, sightings);
  if (result.kind === "visits") {
    return el("div", {}, el("p", { text: `${result.count} visit(s).` }),
      table(["Start", "End", "Cameras", "Sightings", "Dwell"], result.rows.map((v) => el("tr", {},
        el("td", { text: when(v.start) }),
        el("td", { text: when(v.end) }),
        el("td", { text: (v.camera_ids || []).map(name).join(", ") }),
        el("td", { text: v.sightings }),
        el("td", { text: v.dwell_known ? age(v.dwell_seconds) : "—" }))), `Visits of ${plate}`));
  }
  return table(["Camera", "Sightings", "First seen", "Last seen"], result.rows.map((v) => el("tr", {},
    el("td", { text: name(v.camera_id) }),
    el("td", { text: v.visits }),
    el("td", { text: when(v.first_seen) }),
    el("td", { text: when(v.last_seen) }))), `Sightings of ${plate} per camera`);
}

function convoyPanel(node, plate, purpose) {
  const status = statusLine("convoy-status");
  const button = el("button", { type: "button", class: "secondary", id: "convoy-run", text: "Find vehicles travelling with this one" });
  button.addEventListener("click", async () => {
    setStatus(status, "Looking for vehicles seen with this one…");
    try {
      const companions = await analytics.convoy(plate, purpose);
      setStatus(status, `${companions.length} vehicle(s) seen with ${plate} at several cameras.`);
      node.querySelector("#convoy-table")?.remove();
      const result = table(["Plate", "Seen together", "Cameras"], companions.map((c) => el("tr", {},
        el("td", {}, el("span", { class: "plate", text: c.plate })),
        el("td", { text: c.co_sightings }),
        el("td", { text: (c.camera_ids || []).join(", ") }))), `Convoy candidates for ${plate}`);
      result.id = "convoy-table";
      node.append(result);
    } catch (err) {
      setStatus(status, refusal(err), "error");
    }
  });
  node.replaceChildren(el("p", { class: "muted", text: "Convoy analysis may need a second approver under your agency's policy." }), button, status);
}

