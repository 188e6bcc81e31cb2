// Small DOM helpers: building elements without innerHTML (all server text goes through textContent).

import { imageUrl } from "./api.js";

/** el("td", {class: "plate"}, "ABC123") — attrs: class, text, on<Event> handlers, dataset, others as attributes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

/** 3725 -> "1 h 2 min"; null/undefined -> "". */
export function age(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function percent(value) {
  return value === null || value === undefined ? "" : `${Math.round(value * 100)}%`;
}

export function humanize(text) {
  return text ? String(text).replace(/_/g, " ") : "";
}

/** A status line element (role=status so screen readers hear the outcome of an action). */
export function statusLine(id) {
  return el("p", { id, role: "status", class: "muted" });
}

export function setStatus(node, text, kind = "") {
  node.className = kind || "muted";
  node.textContent = text;
}

/** Blob URLs made for the current view; revoked when the view changes. */
const viewBlobs = new Set();

export function trackViewImage(url) {
  viewBlobs.add(url);
}

export function revokeViewImages() {
  for (const url of viewBlobs) URL.revokeObjectURL(url);
  viewBlobs.clear();
}

/**
 * An <img> filled asynchronously from `path` with the session's headers (and purpose headers when
 * given). On failure it is replaced by a short text naming why.
 */
export function authImage(path, alt, purpose) {
  const img = el("img", { class: "crop", alt });
  const holder = el("span", {}, img);
  if (!path) {
    holder.replaceChildren(el("span", { class: "muted", text: "no image" }));
    return holder;
  }
  imageUrl(path, purpose)
    .then((url) => { viewBlobs.add(url); img.src = url; })
    .catch((err) => {
      holder.replaceChildren(el("span", { class: "muted", text: `image unavailable (${err.status || "network"})` }));
    });
  return holder;
}

export function table(headings, rows, caption) {
  return el("div", { class: "table-wrap" },
    el("table", {},
      caption ? el("caption", { class: "visually-hidden", text: caption }) : null,
      el("thead", {}, el("tr", {}, headings.map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows)));
}
