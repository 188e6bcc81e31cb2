// Search and analytics calls of the console, in one place so the views do not depend on which
// server routes exist: plate search over GET /reads, timelines, visit frequency and convoys.

import { ApiError, call } from "./api.js";

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

/** Every stored sighting of one exact plate, oldest first (up to 5 pages). */
export async function timeline(plate, purpose) {
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

/** Visits per camera: [{camera_id, visits, first_seen, last_seen}], most visited first. */
export async function visits(plate, purpose, sightings) {
  const byCamera = new Map();
  for (const s of sightings) {
    const v = byCamera.get(s.camera_id) || { camera_id: s.camera_id, visits: 0, first_seen: s.captured_at, last_seen: s.captured_at };
    v.visits += 1;
    if (s.captured_at < v.first_seen) v.first_seen = s.captured_at;
    if (s.captured_at > v.last_seen) v.last_seen = s.captured_at;
    byCamera.set(s.camera_id, v);
  }
  return [...byCamera.values()].sort((a, b) => b.visits - a.visits);
}

/** Vehicles seen near this one at several places: [{plate, count, camera_ids}]. */
export async function convoy(plate, purpose) {
  throw new ApiError(404, "convoy analysis is not available on this server yet", null);
}
