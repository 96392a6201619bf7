// The dashboard's entry: picks the view named in the URL (?view=runs|compare|run|paper|datasets|
// sql), keeps the theme, and refreshes the view every 15 s while the tab is visible (reads carry
// ETags, so an unchanged answer costs a 304).

import { el, state } from "./lib.js";
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
setInterval(() => {
  const view = state.get("view", "runs");
  if (document.visibilityState === "visible" && state.get("live", "1") === "1" && view === "compare" && document.body.dataset.ready === "1") {
    document.getElementById("live").textContent = "live";
    show(true);
  }
}, 15000);
show();
