"""The landing page at `/`: live alerts and a plate search, self-contained (no external assets)."""

from __future__ import annotations

LANDING_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>platewatch</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1rem auto; max-width: 64rem; padding: 0 1rem;
         color: #1b1b1b; background: #fff; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  h2 { font-size: 1.1rem; margin-top: 1.5rem; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ddd; vertical-align: middle; }
  img { max-height: 3rem; }
  .plate { font-family: ui-monospace, monospace; font-weight: bold; font-size: 1.05rem; }
  .flag { background: #ffe08a; padding: 0 .3rem; border-radius: .2rem; margin-right: .2rem; }
  #stream-status { font-size: .9rem; color: #555; }
  form { display: flex; gap: .5rem; align-items: end; flex-wrap: wrap; }
  label { display: flex; flex-direction: column; font-size: .9rem; }
  input, button { font-size: 1rem; padding: .3rem .5rem; }
  .error { color: #a40000; }
</style>
</head>
<body>
<header>
  <h1>platewatch</h1>
  <p><a href="/docs">API documentation</a></p>
</header>
<main>
<section aria-labelledby="alerts-heading">
  <h2 id="alerts-heading">Live alerts</h2>
  <p id="stream-status" role="status">Connecting to the live alert stream&hellip;</p>
  <table>
    <thead><tr><th scope="col">Time</th><th scope="col">Plate</th><th scope="col">Hotlist</th>
      <th scope="col">Reason</th><th scope="col">Camera</th><th scope="col">Match</th>
      <th scope="col">Crop</th></tr></thead>
    <tbody id="alerts" aria-live="polite"></tbody>
  </table>
</section>
<section aria-labelledby="search-heading">
  <h2 id="search-heading">Search reads</h2>
  <form id="search-form">
    <label for="plate">Plate (use ? for one character, * for any run)
      <input id="plate" name="plate" required maxlength="32" autocomplete="off"></label>
    <label for="camera">Camera id (optional)<input id="camera" name="camera_id"></label>
    <button type="submit">Search</button>
  </form>
  <p id="search-status" role="status"></p>
  <table>
    <thead><tr><th scope="col">Time</th><th scope="col">Plate</th><th scope="col">Confidence</th>
      <th scope="col">Camera</th><th scope="col">Crop</th></tr></thead>
    <tbody id="reads"></tbody>
  </table>
</section>
</main>
<script>
"use strict";
const API = "/api/v1";
const seen = new Set();

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  row.appendChild(td);
  return td;
}
function imageCell(row, url, alt) {
  const td = document.createElement("td");
  if (url) {
    const img = document.createElement("img");
    img.src = url; img.alt = alt; img.loading = "lazy";
    td.appendChild(img);
  }
  row.appendChild(td);
}
function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

function showAlert(alert, atTop) {
  if (seen.has(alert.alert_id)) return;
  seen.add(alert.alert_id);
  const row = document.createElement("tr");
  cell(row, when(alert.captured_at));
  cell(row, alert.plate).className = "plate";
  cell(row, alert.hotlist_name);
  cell(row, alert.reason.replace(/_/g, " ") + " (priority " + alert.priority + ")");
  cell(row, alert.camera_name || alert.camera_id);
  const match = cell(row, alert.match_kind);
  for (const [flag, label] of [[alert.stale, "stale list"], [alert.region_mismatch, "region mismatch"]]) {
    if (flag) {
      const span = document.createElement("span");
      span.className = "flag"; span.textContent = label;
      match.appendChild(document.createTextNode(" ")); match.appendChild(span);
    }
  }
  imageCell(row, alert.crop_url, "plate crop for " + alert.plate);
  const body = document.getElementById("alerts");
  if (atTop) body.prepend(row); else body.appendChild(row);
}

async function loadRecentAlerts() {
  try {
    const response = await fetch(API + "/alerts?limit=50");
    if (!response.ok) return;
    for (const alert of (await response.json()).alerts) showAlert(alert, false);
  } catch (err) { /* the live stream will still fill the table */ }
}

function connectStream() {
  const status = document.getElementById("stream-status");
  const source = new EventSource(API + "/alerts/stream");
  source.addEventListener("open", () => { status.textContent = "Live: waiting for alerts."; });
  source.addEventListener("alert", (event) => {
    showAlert(JSON.parse(event.data), true);
    status.textContent = "Live: last alert " + new Date().toLocaleTimeString() + ".";
  });
  source.addEventListener("error", () => { status.textContent = "Stream interrupted; reconnecting\\u2026"; });
}

document.getElementById("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("search-status");
  const rows = document.getElementById("reads");
  const params = new URLSearchParams({ plate: document.getElementById("plate").value.trim() });
  const camera = document.getElementById("camera").value.trim();
  if (camera) params.set("camera_id", camera);
  status.className = ""; status.textContent = "Searching\\u2026"; rows.replaceChildren();
  try {
    const response = await fetch(API + "/reads?" + params);
    const body = await response.json();
    if (!response.ok) {
      status.className = "error";
      const detail = typeof body.detail === "string" ? body.detail : null;
      status.textContent = detail || "Search failed (" + response.status + ")";
      return;
    }
    for (const read of body.reads) {
      const row = document.createElement("tr");
      cell(row, when(read.captured_at));
      cell(row, read.plate).className = "plate";
      cell(row, (read.confidence * 100).toFixed(0) + "%");
      cell(row, read.camera_id);
      imageCell(row, read.crop_url, "plate crop for " + read.plate);
      rows.appendChild(row);
    }
    const more = body.next_page_token ? " (more available)" : "";
    status.textContent = body.reads.length + " read(s)" + more + ".";
  } catch (err) {
    status.className = "error"; status.textContent = "Search failed: " + err;
  }
});

loadRecentAlerts().then(connectStream);
</script>
</body>
</html>
"""
