// Search and analytics calls of the console, in one place so the views do not depend on which
// server routes exist: plate search over GET /reads, timelines, visit frequency and convoys.

import { API, ApiError, call } from "./api.js";

const PAGE = 200;

/** Wildcards as typed; plain text in partial mode is matched anywhere in the plate. */
export function partialPattern(text) {
  return /[*?]/.test(text) ? text : `*${text}*`;
}

/** {reads, more, label} for one plate search. */
export async function searchPlates(plate, mode, filters, purpose) {
  if (mode === "fuzzy") {
    const body = await call("reads", { query: { plate, fuzzy: "true", ...filters, page_size: PAGE }, purpose });
    return { reads: body.reads, more: Boolean(body.next_page_token), label: `plates like ${plate}` };
  }
  const pattern = mode === "partial" ? partialPattern(plate) : plate;
  const body = await call("reads", { query: { plate: pattern, ...filters, page_size: PAGE }, purpose });
  return { reads: body.reads, more: Boolean(body.next_page_token), label: pattern };
}

// The analytics routes (services/api/analytics_routes.py) where the server has them; a route the
// server does not know answers FastAPI's plain 404 "Not Found", and the console falls back.
export const ANALYTICS = {
  timeline: `${API}/analytics/timeline`,
  visits: `${API}/analytics/visits`,
  convoy: `${API}/analytics/convoy`,
};

function missingRoute(err) {
  return err instanceof ApiError && err.status === 404 && err.detail === "Not Found";
}

/** Every stored sighting of one exact plate, oldest first. */
export async function timeline(plate, purpose) {
  try {
    const body = await call(ANALYTICS.timeline, { query: { plate, limit: 1000 }, purpose });
    return body.sightings || body.reads || [];
  } catch (err) {
    if (!missingRoute(err)) throw err;
  }
  // Fallback: page through GET /reads (up to 5 pages) and sort.
  const reads = [];
  let token = "";
  for (let page = 0; page < 5; page += 1) {
    const body = await call("reads", { query: { plate, page_size: PAGE, page_token: token }, purpose });
    reads.push(...body.reads);
    token = body.next_page_token;
    if (!token) break;
  }
  return reads.sort((a, b) => (a.captured_at || "").localeCompare(b.captured_at || ""));
}

/**
 * Visit frequency: the server's visits (sightings grouped by gaps) when it has the route, else
 * sightings counted per camera. Returns {kind: "visits"|"cameras", count, rows}.
 */
export async function visits(plate, purpose, sightings) {
  // The site is every camera the vehicle was seen at; visits are gap-separated runs of sightings.
  const cameraIds = [...new Set(sightings.map((s) => s.camera_id).filter(Boolean))];
  if (cameraIds.length) {
    try {
      const body = await call(ANALYTICS.visits, { method: "POST", json: { plate, site: { camera_ids: cameraIds } }, purpose });
      return { kind: "visits", count: body.visit_count ?? (body.visits || []).length, rows: body.visits || [] };
    } catch (err) {
      // A role without analytics.run still sees the sightings it was allowed to search: count them.
      if (!missingRoute(err) && !(err instanceof ApiError && err.status === 403)) throw err;
    }
  }
  const byCamera = new Map();
  for (const s of sightings) {
    const v = byCamera.get(s.camera_id) || { camera_id: s.camera_id, visits: 0, first_seen: s.captured_at, last_seen: s.captured_at };
    v.visits += 1;
    if (s.captured_at < v.first_seen) v.first_seen = s.captured_at;
    if (s.captured_at > v.last_seen) v.last_seen = s.captured_at;
    byCamera.set(s.camera_id, v);
  }
  const rows = [...byCamera.values()].sort((a, b) => b.visits - a.visits);
  return { kind: "cameras", count: sightings.length, rows };
}

/** Vehicles seen with this one at several cameras: [{plate, co_sightings, cameras, camera_ids}]. */
export async function convoy(plate, purpose) {
  try {
    const body = await call(ANALYTICS.convoy, { method: "POST", json: { plate }, purpose });
    return body.associates || [];
  } catch (err) {
    if (missingRoute(err)) throw new ApiError(404, "convoy analysis is not available on this server", null);
    throw err;
  }
}
