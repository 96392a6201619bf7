// Shared helpers: the API client, DOM building that never interprets user data as HTML, the
// view state kept in the URL, number formatting and downloads.

/** Calls the tracker. A body makes it a POST with JSON. Errors carry the server's message. */
export async function api(path, body) {
  const headers = {};
  const token = sessionStorage.getItem("fp-token");
  if (token) headers.Authorization = "Bearer " + token;
  const opts = { headers };
  if (body !== undefined) {
    opts.method = "POST";
    headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401 && !opts.retried) {
    const t = window.prompt("This tracker asks for its token (serve --token)");
    if (t) {
      sessionStorage.setItem("fp-token", t);
      return api(path, body);
    }
  }
  const text = await r.text();
  let json = {};
  try { json = text ? JSON.parse(text) : {}; } catch { json = { message: text }; }
  if (!r.ok) throw new Error(json.message || `${r.status} ${path}`);
  return json;
}

/**
 * el("td", {class: "num", text: "1.0", onclick: f}, child…): an element whose text is set with
 * textContent and attributes with setAttribute, so names, params and tags stay text.
 */
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = String(v);
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "value") e.value = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

/** The view state: the URL's query string, read and written as a whole. */
export const state = {
  get(key, fallback = "") {
    const v = new URLSearchParams(location.search).get(key);
    return v === null ? fallback : v;
  },
  list(key) {
    return this.get(key).split(",").map((s) => s.trim()).filter(Boolean);
  },
  /** Sets keys (null removes one) and re-renders; push=false replaces the history entry. */
  set(changes, push = true) {
    const q = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === undefined || v === "") q.delete(k);
      else q.set(k, Array.isArray(v) ? v.join(",") : String(v));
    }
    const url = "?" + q.toString();
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
    window.dispatchEvent(new Event("fp:state"));
  },
};

/** A metric value as MLflow sends it (number, "NaN", "Infinity") for display. */
export function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (Number.isInteger(v) && Math.abs(v) < 1e12) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return v.toFixed(4);
}

export function isNum(v) {
  return typeof v === "number" && Number.isFinite(v);
}

/** Lower is better for losses and errors (the server's rule, tracker/src/dashboard/query.rs). */
export function lowerIsBetter(key) {
  const words = key.toLowerCase().split(/[^a-z0-9]+/);
  return ["loss", "error", "err", "rmse", "mae", "mse", "perplexity", "nll"].some((w) => words.includes(w));
}

/** Offers `text` as a file download. */
export function download(name, text, type = "text/plain") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A table of rows (arrays) with a header, every cell as text; numbers right-aligned. */
export function plainTable(columns, rows, id) {
  return el(
    "table",
    { id },
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { text: c })))),
    el(
      "tbody",
      {},
      rows.map((r) => el("tr", {}, r.map((v) => el("td", { class: isNum(v) ? "num" : undefined, text: fmt(v) })))),
    ),
  );
}

/** CSV of a header and rows (RFC 4180 quoting). */
export function csv(columns, rows) {
  const q = (v) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  };
  return [columns, ...rows].map((r) => r.map(q).join(",")).join("\n") + "\n";
}

/** The ids of the active experiments, for views that need some. */
export async function experiments() {
  const r = await api("/api/2.0/mlflow/experiments/search", { max_results: 1000 });
  return r.experiments || [];
}
