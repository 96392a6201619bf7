// The dashboard's entry: picks the view named in the URL (?view=runs|compare|explore|run|paper|
// datasets|sql), keeps the theme, and keeps the view live: server-sent events name the runs that
// changed, polling every 15 s is the fallback (reads carry ETags, so an unchanged answer is a 304).

import { api, el, state } from "./lib.js";
import * as runs from "./runs.js";
import * as compare from "./compare.js";
import * as explore from "./explore.js";
import * as pages from "./pages.js";

const VIEWS = {
  runs: runs.render,
  compare: compare.render,
  explore: explore.render,
  paper: pages.paper,
  run: pages.run,
  datasets: pages.datasets,
  sql: pages.sql,
};

let rendering = null;

/** Renders the view of the URL. A refresh renders off screen and swaps the result in, so the
 * page never jumps or empties while data loads. */
async function show(refresh = false) {
  const view = state.get("view", "runs");
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("on", a.dataset.view === view);
  const main = document.getElementById("main");
  const status = document.getElementById("status");
  const t0 = performance.now();
  if (!refresh) document.body.dataset.ready = "0";
  const job = (async () => {
    const target = refresh ? el("div") : main;
    try {
      await (VIEWS[view] || runs.render)(target);
      if (refresh) main.replaceChildren(...target.childNodes);
      status.textContent = "";
    } catch (e) {
      if (refresh) status.textContent = `refresh failed: ${e.message}`;
      else main.replaceChildren(el("p", { class: "error", id: "error", text: e.message }));
    }
  })();
  rendering = job;
  await job;
  if (rendering === job) {
    document.body.dataset.ready = "1";
    if (!refresh) document.body.dataset.renderMs = (performance.now() - t0).toFixed(1);
  }
}

function theme(t) {
  if (t) document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
}

theme(localStorage.getItem("fp-theme"));
document.getElementById("theme").addEventListener("click", () => {
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  const now = document.documentElement.dataset.theme || (dark ? "dark" : "light");
  const next = now === "dark" ? "light" : "dark";
  localStorage.setItem("fp-theme", next);
  theme(next);
});
for (const a of document.querySelectorAll("#nav a")) {
  a.addEventListener("click", (e) => {
    e.preventDefault();
    state.set({ view: a.dataset.view });
  });
}
window.addEventListener("fp:state", () => show());
window.addEventListener("popstate", () => show());
// Live: one server-sent event stream per tab carries the ids of runs written in the last second;
// the views showing one of them refresh (off screen, then swapped in). Where the server asks for
// a token (EventSource cannot send it), the page first gets a short-lived ticket for the stream
// (POST /api/fusionprot/events/ticket with the token) and opens the stream with it, so the token
// never goes into a URL; a stream that breaks is reopened with a fresh ticket, and one that cannot
// be opened again falls back to polling every 15 s. The stream is closed while the tab is hidden.
const live = document.getElementById("live");
let stream = null;
let polling = false;
let failures = 0;
function shows(ids) {
  const view = state.get("view", "runs");
  if (view === "compare") return state.list("sel").some((id) => ids.includes(id));
  if (view === "run") return ids.includes(state.get("run"));
  return view === "explore" || view === "paper" || (view === "runs" && (document.getElementById("runs")?.scrollTop ?? 0) === 0);
}
async function connect() {
  if (stream || polling || state.get("live", "1") !== "1") return;
  let url = "/api/fusionprot/events";
  if (sessionStorage.getItem("fp-token")) {
    try {
      url += `?ticket=${encodeURIComponent((await api("/api/fusionprot/events/ticket", {})).ticket)}`;
    } catch {
      polling = true;
      live.textContent = "polling";
      return;
    }
  }
  if (stream) return;
  stream = new EventSource(url);
  stream.addEventListener("open", () => { live.textContent = "live"; failures = 0; });
  stream.addEventListener("runs", (e) => {
    const { run_ids: ids, lagged } = JSON.parse(e.data);
    if (document.body.dataset.ready === "1" && (lagged || shows(ids))) show(true);
  });
  stream.addEventListener("error", () => {
    stream.close();
    stream = null;
    failures += 1;
    if (failures <= 2) {
      // a restarted server or an expired ticket: reopen (with a new ticket) after a moment
      live.textContent = "reconnecting";
      setTimeout(connect, 1000 * failures);
    } else {
      polling = true;
      live.textContent = "polling";
    }
  });
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden" && stream) {
    stream.close();
    stream = null;
  } else if (document.visibilityState === "visible") {
    connect();
  }
});
setInterval(() => {
  const view = state.get("view", "runs");
  if (polling && document.visibilityState === "visible" && state.get("live", "1") === "1"
      && (view === "compare" || view === "run") && document.body.dataset.ready === "1") {
    show(true);
  }
}, 15000);
// MLflow UI links (`/#/experiments/N/runs/ID`, `/#/experiments/N`, as MLflow's client prints
// them after a run) open the matching run page or the experiment's runs.
function mlflowLink() {
  const m = location.hash.match(/^#\/experiments\/(\d+)(?:\/runs\/([0-9a-fA-F]+))?\/?$/);
  if (!m) return;
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(m[2] ? { view: "run", run: m[2].toLowerCase() } : { view: "runs", exp: m[1] })) q.set(k, v);
  history.replaceState(null, "", `?${q}`);
}
window.addEventListener("hashchange", () => { mlflowLink(); show(); });
mlflowLink();
connect();
show();
