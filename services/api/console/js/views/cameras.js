// Cameras: where they are and how they are doing (online, last frame, frames and reads per minute),
// refreshed every 15 seconds while the view is open.

import { call } from "../api.js";
import { age, el, setStatus, statusLine, table, when } from "../dom.js";
import { drawCameras, fit, makeMap } from "../map.js";

const REFRESH_MS = 15000;

function rate(value) {
  return value === null || value === undefined ? "—" : value.toFixed(1);
}

export function render(root, ctx) {
  const status = statusLine("cameras-status");
  const mapNode = el("div", { class: "map", id: "cameras-map", role: "region", "aria-label": "Camera map" });
  const tableNode = el("div", { id: "cameras-table" });
  root.append(el("h1", { text: "Cameras" }), status, el("div", { class: "grid-2" }, mapNode, tableNode),
    el("p", { class: "muted", text: "Rates are averaged since the previous refresh; the first view shows — until the next one." }));
  const map = makeMap(mapNode, ctx.config);
  let layer = null;
  let fitted = false;

  async function refresh() {
    try {
      const body = await call("cameras");
      const online = body.cameras.filter((c) => c.state === "online").length;
      let text = `${online} of ${body.cameras.length} camera(s) online. Updated ${new Date().toLocaleTimeString()}.`;
      if (body.unreachable.length) text += ` Metrics unreachable: ${body.unreachable.join(", ")}.`;
      setStatus(status, text, body.unreachable.length ? "error" : "muted");
      if (layer) layer.remove();
      layer = drawCameras(map, body.cameras);
      if (!fitted) { fit(map, [layer]); fitted = true; }
      tableNode.replaceChildren(table(["Camera", "Site", "Agency", "Status", "Last frame", "Frames/min", "Reads/min"],
        body.cameras.map((c) => el("tr", { dataset: { cameraId: c.camera_id } },
          el("td", {}, c.name || c.camera_id, el("div", { class: "muted", text: c.camera_id })),
          el("td", { text: c.site }),
          el("td", { text: c.agency_id }),
          el("td", {}, el("span", { class: `status-pill ${c.state}`, text: c.enabled ? c.state : "disabled" })),
          el("td", { text: c.last_frame_at ? `${when(c.last_frame_at)} (${age((Date.now() - Date.parse(c.last_frame_at)) / 1000)} ago)` : "—" }),
          el("td", { text: rate(c.frames_per_minute) }),
          el("td", { text: rate(c.reads_per_minute) }))), "Camera status"));
    } catch (err) {
      setStatus(status, `Could not load camera status: ${err.message}`, "error");
    }
  }
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => { clearInterval(timer); map.remove(); };
}
