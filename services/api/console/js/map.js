// Leaflet (bundled under vendor/leaflet, global `L`) on a plain background: no tile server unless the
// deployment configures one (PLATEWATCH_CONSOLE_TILE_URL), so nothing leaves the network by default.

const L = window.L;

export function makeMap(node, config) {
  const map = L.map(node, { attributionControl: Boolean(config.tile_url), zoomSnap: 0.5 });
  if (config.tile_url) {
    L.tileLayer(config.tile_url, { attribution: config.tile_attribution || "", maxZoom: 19 }).addTo(map);
  }
  map.setView([0, 0], 2);
  return map;
}

/** Grey circles with permanent name labels for every camera; returns the layer group. */
export function drawCameras(map, cameras) {
  const group = L.featureGroup();
  for (const camera of cameras) {
    if (camera.lat == null || camera.lon == null) continue;
    const color = camera.state === "online" ? "#1e6b2f" : camera.state === "offline" ? "#a40000" : "#5b6470";
    L.circleMarker([camera.lat, camera.lon], { radius: 7, color, weight: 2, fillColor: "#fff", fillOpacity: 1 })
      .bindTooltip(camera.name || camera.camera_id, { permanent: true, direction: "right", className: "camera-label" })
      .addTo(group);
  }
  group.addTo(map);
  return group;
}

/** Numbered sightings joined by a line, in time order. `points`: [{lat, lon, label}]. */
export function drawPath(map, points) {
  const group = L.featureGroup();
  const located = points.filter((p) => p.lat || p.lon);
  if (located.length > 1) L.polyline(located.map((p) => [p.lat, p.lon]), { color: "#0b5cad", weight: 3, opacity: .7 }).addTo(group);
  located.forEach((p, index) => {
    L.circleMarker([p.lat, p.lon], { radius: 9, color: "#0b5cad", fillColor: "#0b5cad", fillOpacity: .85 })
      .bindTooltip(`${index + 1}. ${p.label}`)
      .addTo(group);
  });
  group.addTo(map);
  return group;
}

export function fit(map, groups) {
  const bounds = L.latLngBounds([]);
  for (const group of groups) {
    if (group && group.getLayers().length) bounds.extend(group.getBounds());
  }
  if (bounds.isValid()) map.fitBounds(bounds.pad(0.3), { maxZoom: 16 });
}
