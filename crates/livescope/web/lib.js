// Small helpers shared by every page: building elements (user text only ever as text
// nodes), calling the API, formatting times.

/** h("button#send.btn.primary", {type: "submit", onclick}, "Send"): an element. Attributes
 * starting with "on" are listeners; children are nodes or strings (text nodes). */
export function h(spec, attrs = {}, ...children) {
  const el = document.createElement(spec.match(/^[a-z0-9]*/)[0] || "div");
  for (const [, kind, name] of spec.matchAll(/([#.])([\w-]+)/g)) {
    if (kind === "#") el.id = name;
    else el.classList.add(name);
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className += (el.className ? " " : "") + v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `request failed (${status})`);
    this.status = status;
    this.code = body?.error;
  }
}

/** Calls the API; resolves to the JSON answer (null for 204), rejects with ApiError. */
export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const json = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

/** The path and query of an absolute URL from the API, so media always comes from this
 * origin (the CSP allows only 'self'). */
export const local = (url) => {
  const u = new URL(url, location.href);
  return u.pathname + u.search;
};

/** "?token=..." of a watch URL, or "". */
export const tokenQuery = (url) => new URL(url, location.href).search;

export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export const ago = (iso) => `${duration(Date.now() - Date.parse(iso))} ago`;

/** Seconds with one decimal, "12.4 s". */
export const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;

export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const mm = String(Math.floor(s / 60) % 60).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm}:${ss}` : `${Math.floor(s / 60)}:${ss}`;
}

/** A user's name as a link to their profile. */
export const userLink = (name, cls = "user") =>
  name ? h("a." + cls, { href: `/u/${encodeURIComponent(name)}` }, name) : h("span." + cls, {}, "someone");

/** The "LIVE" / "REPLAY" badge. */
export const stateBadge = (state) =>
  state === "live" ? h("span.badge.live", {}, "Live") : h("span.badge", {}, state === "ended" ? "Replay" : "Not live yet");

/** Runs fn every ms until the returned function is called. */
export function every(ms, fn) {
  const id = setInterval(fn, ms);
  return () => clearInterval(id);
}

/** Writes text to the clipboard; returns whether it worked. */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** An input with its label. */
export function field(label, input, hint) {
  // The label names the control itself, also when it comes wrapped (a copy row).
  const control = input.matches("input, select, textarea") ? input : input.querySelector("input, select, textarea") || input;
  const id = control.id || (control.id = "f" + Math.random().toString(36).slice(2, 8));
  if (hint) control.setAttribute("aria-describedby", id + "-hint");
  return h(
    "div.field",
    {},
    h("label", { for: id }, label),
    input,
    hint && h("p.hint", { id: id + "-hint" }, hint),
  );
}

/** An SVG element (charts, icons). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  add(el, children);
  return el;
}

const ICONS = {
  eye: "M12 5C6.5 5 2.7 9.3 1.5 12c1.2 2.7 5 7 10.5 7s9.3-4.3 10.5-7C21.3 9.3 17.5 5 12 5zm0 11a4 4 0 110-8 4 4 0 010 8z",
  shield: "M12 2 4 5v6c0 5 3.4 9.6 8 11 4.6-1.4 8-6 8-11V5l-8-3zm-1.2 14.2-3.5-3.5 1.4-1.4 2.1 2.1 4.9-4.9 1.4 1.4-6.3 6.3z",
  warning: "M12 2 1 21h22L12 2zm1 15h-2v2h2v-2zm0-7h-2v5h2v-5z",
  heart: "M12 21s-7.5-4.6-10-9.2C.4 8.6 2.3 4.5 6.2 4.5c2.3 0 3.8 1.3 5.8 3.4 2-2.1 3.5-3.4 5.8-3.4 3.9 0 5.8 4.1 4.2 7.3C19.5 16.4 12 21 12 21z",
};
export const icon = (name) => svg("svg", { viewBox: "0 0 24 24", class: "icon", "aria-hidden": "true", focusable: "false" }, svg("path", { d: ICONS[name], fill: "currentColor" }));
