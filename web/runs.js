// The runs table: the runs of the chosen experiments, filtered with MLflow's syntax, sorted on
// the server, columns chosen per metric summary (last / min / max / best), rows and columns
// virtualised (only the rows and columns on screen are in the DOM; rows are fetched by page),
// selection for the compare view, keyboard navigation; or, grouped, mean ± sd (n) per group.

import { api, el, state, fmt, isNum, experiments } from "./lib.js";

const ROW = 24;
const COL = 150;
const PAGE = 200;
const FIXED = [
  { key: "sel", label: "", width: 28 },
  { key: "base", label: "", width: 24 },
  { key: "run_name", label: "run", width: 220 },
  { key: "status", label: "status", width: 90 },
];

export async function render(main) {
  const exps = await experiments();
  let ids = state.list("exp");
  if (!ids.length) ids = exps.map((e) => e.experiment_id);
  const keys = await api(`/api/fusionprot/dashboard/keys?experiment_ids=${encodeURIComponent(ids.join(","))}`);
  let cols = state.list("cols");
  if (!cols.length) {
    // varying-only: the params that differ among these runs (all of them when none does)
    const varying = keys.varying_params?.length ? keys.varying_params : keys.params;
    cols = [
      ...keys.metrics.slice(0, 6).map((k) => `metrics.${k}`),
      ...varying.slice(0, 6).map((k) => `params.${k}`),
    ];
  }
  const baseline = state.get("base");
  const selected = new Set(state.list("sel"));
  const group = state.get("group");

  const bar = el(
    "div",
    { class: "bar" },
    el("label", {}, "experiments ",
      el("select", {
        id: "exp", multiple: true, size: Math.min(4, Math.max(2, exps.length)),
        onchange: (e) => state.set({ exp: [...e.target.selectedOptions].map((o) => o.value) }),
      }, exps.map((x) => {
        const o = el("option", { value: x.experiment_id, text: `${x.name} (${x.experiment_id})` });
        o.selected = ids.includes(x.experiment_id);
        return o;
      }))),
    el("input", {
      id: "filter", type: "text", placeholder: "filter: metrics.valid/fmax > 0.5 and (params.model = 'fusionprot' or params.model = 'esm2')",
      value: state.get("filter"),
      onkeydown: (e) => { if (e.key === "Enter") state.set({ filter: e.target.value }); },
    }),
    el("input", {
      id: "group", type: "text", placeholder: "group by: all-but:seed or params.model", value: group,
      onkeydown: (e) => { if (e.key === "Enter") state.set({ group: e.target.value }); },
    }),
    el("input", {
      id: "addcol", type: "text", list: "keys", placeholder: "add column (metrics.K, params.K, tags.K)",
      onkeydown: (e) => {
        if (e.key === "Enter" && e.target.value) state.set({ cols: [...cols, e.target.value.trim()] });
      },
      // offer at most 50 keys that contain what is typed: 10,000 keys never enter the DOM
      oninput: (e) => {
        const q = e.target.value.toLowerCase();
        const all = [
          ...keys.metrics.map((k) => `metrics.${k}`),
          ...keys.params.map((k) => `params.${k}`),
          ...keys.tags.map((k) => `tags.${k}`),
        ];
        const hits = [];
        for (const k of all) {
          if (k.toLowerCase().includes(q)) hits.push(k);
          if (hits.length === 50) break;
        }
        document.getElementById("keys").replaceChildren(...hits.map((k) => el("option", { value: k })));
      },
    }),
    el("datalist", { id: "keys" }),
    el("a", {
      id: "compare", href: "#",
      onclick: (e) => { e.preventDefault(); state.set({ view: "compare", sel: [...selected] }); },
    }, `compare selected (${selected.size})`),
  );
  const info = el("p", { id: "count", class: "muted" });
  main.replaceChildren(bar, info);
  if (group) return renderGroups(main, info, ids, cols, group);

  const body = {
    experiment_ids: ids,
    filter: state.get("filter") || undefined,
    order_by: state.get("sort") ? [state.get("sort")] : [],
    columns: cols,
    baseline: baseline || undefined,
  };
  const pages = new Map();
  const first = await api("/api/fusionprot/dashboard/runs", { ...body, offset: 0, limit: PAGE });
  pages.set(0, first);
  const total = first.total;
  const base = first.baseline;
  info.textContent = `${total} runs; ${cols.length} columns (only those on screen are drawn)` +
    (base ? `; Δ to the baseline run ${base.run_id.slice(0, 8)} (◉; click it again to clear)` : "; ◎ makes a run the baseline");
  // pinned columns come first and stay in view when the table scrolls sideways, as the fixed ones
  const pinned = state.list("pin").filter((p) => cols.includes(p));
  const ordered = [...pinned, ...cols.filter((c) => !pinned.includes(c))];
  const all = [...FIXED, ...ordered.map((c) => ({ key: c, label: c, width: COL, data: true, pinned: pinned.includes(c) }))];
  const stuck = FIXED.length + pinned.length;
  const left = [];
  let x = 0;
  for (const c of all) { left.push(x); x += c.width; }
  const width = x;

  const scroller = el("div", { class: "vt", id: "runs", tabindex: 0, role: "grid", "aria-rowcount": total });
  const inner = el("div", { class: "vt-inner" });
  inner.style.height = `${(total + 1) * ROW}px`;
  inner.style.width = `${width}px`;
  scroller.append(inner);
  main.append(scroller);
  let cursor = 0;

  const cell = (c, content, num) => {
    const d = el("div", { class: "vt-cell" + (num ? " num" : "") });
    if (content instanceof Node) d.append(content); else d.textContent = content;
    d.style.width = `${c.width}px`;
    return d;
  };
  const header = (c) => {
    if (!c.data) return cell(c, c.label);
    const [base, summary] = c.key.startsWith("metrics.") ? c.key.split(/:(?=[a-z]+$)/) : [c.key, null];
    const sort = state.get("sort");
    const mark = sort === `${base} DESC` ? " ▼" : sort === `${base} ASC` || sort === base ? " ▲" : "";
    const h = cell(c, "");
    h.title = c.key;
    h.append(el("span", {
      text: base.replace(/^(metrics|params|tags)\./, "") + mark,
      onclick: () => state.set({ sort: sort === `${base} DESC` ? `${base} ASC` : `${base} DESC` }),
    }));
    if (c.key.startsWith("metrics.")) {
      const s = el("select", {
        "aria-label": "summary",
        onchange: (e) => state.set({ cols: cols.map((k) => (k === c.key ? `${base}:${e.target.value}` : k)) }),
      }, ["last", "min", "max", "best"].map((o) => el("option", { value: o, text: o })));
      s.value = summary || "last";
      h.append(" ", s);
    }
    h.append(el("span", {
      text: c.pinned ? " ◆" : " ◇", title: c.pinned ? "unpin" : "pin (keep in view)", class: "pin",
      onclick: () => {
        const pins = state.list("pin");
        state.set({ pin: c.pinned ? pins.filter((p) => p !== c.key) : [...pins, c.key] });
      },
    }));
    h.append(el("span", {
      text: " ×", title: "remove column",
      onclick: () => state.set({ cols: cols.filter((k) => k !== c.key) }),
    }));
    return h;
  };

  function rowAt(i) {
    const p = pages.get(Math.floor(i / PAGE));
    if (!p) return null;
    const j = i % PAGE;
    if (j >= p.run_id.length) return null;
    return { p, j, id: p.run_id[j] };
  }
  async function ensure(from, to) {
    const want = [];
    for (let pg = Math.floor(from / PAGE); pg <= Math.floor(to / PAGE); pg++) {
      if (!pages.has(pg) && pg * PAGE < total) want.push(pg);
    }
    for (const pg of want) {
      pages.set(pg, { run_id: [], columns: {} });
      pages.set(pg, await api("/api/fusionprot/dashboard/runs", { ...body, offset: pg * PAGE, limit: PAGE }));
    }
    if (want.length) draw();
  }
  function draw() {
    const top = scroller.scrollTop;
    const h = scroller.clientHeight || 600;
    const from = Math.max(0, Math.floor(top / ROW) - 2);
    const to = Math.min(total, Math.ceil((top + h) / ROW) + 2);
    const lx = scroller.scrollLeft;
    const wv = scroller.clientWidth || 1200;
    const visible = all.map((c, k) => k).filter((k) => k < stuck || (left[k] + all[k].width >= lx + left[stuck] && left[k] <= lx + wv));
    // a stuck column is drawn at its place plus the sideways scroll, above the others
    const at = (k) => `${left[k] + (k < stuck ? lx : 0)}px`;
    const head = el("div", { class: "vt-head" });
    head.style.top = "0px";
    const rows = [head];
    for (const k of visible) {
      const hc = header(all[k]);
      hc.style.position = "absolute";
      hc.style.left = at(k);
      if (k < stuck) hc.classList.add("stuck");
      head.append(hc);
    }
    head.style.width = `${width}px`;
    head.style.height = `${ROW}px`;
    for (let i = from; i < to; i++) {
      const r = rowAt(i);
      const row = el("div", { class: "vt-row", role: "row", "data-i": i });
      row.style.top = `${(i + 1) * ROW}px`;
      row.style.width = `${width}px`;
      row.style.height = `${ROW}px`;
      if (i === cursor) row.classList.add("cursor");
      for (const k of visible) {
        const c = all[k];
        let content = "";
        let num = false;
        if (r) {
          if (c.key === "sel") {
            const box = el("input", { type: "checkbox", "aria-label": "select run" });
            box.checked = selected.has(r.id);
            box.addEventListener("change", () => toggle(r.id));
            content = box;
          } else if (c.key === "base") {
            const on = base && base.run_id === r.id;
            content = el("span", {
              class: "base" + (on ? " on" : ""), text: on ? "◉" : "◎", role: "button",
              title: on ? "the baseline (click to clear)" : "use as the baseline: every other row shows Δ to it",
              onclick: () => state.set({ base: on ? null : r.id }),
            });
          } else if (c.key === "run_name") {
            content = el("a", { href: `?view=run&run=${encodeURIComponent(r.id)}`, text: r.p.run_name[r.j] || r.id });
          } else if (c.data) {
            const v = r.p.columns[c.key][r.j];
            const b = base?.columns[c.key];
            num = isNum(v);
            if (num && isNum(b) && base.run_id !== r.id) {
              const d = v - b;
              content = el("span", {},
                fmt(v), " ",
                el("span", { class: "delta", "data-delta": d, text: `${d >= 0 ? "+" : "−"}${fmt(Math.abs(d))}` }));
            } else {
              content = fmt(v);
            }
          } else {
            content = String(r.p[c.key][r.j] ?? "");
          }
          if (selected.has(r.id)) row.classList.add("sel");
        } else if (c.key === "run_name") {
          content = "…";
        }
        const d = cell(c, content, num);
        d.style.position = "absolute";
        d.style.left = at(k);
        if (k < stuck) d.classList.add("stuck");
        row.append(d);
      }
      rows.push(row);
    }
    inner.replaceChildren(...rows);
    ensure(from, to);
  }
  function toggle(id) {
    if (selected.has(id)) selected.delete(id); else selected.add(id);
    state.set({ sel: [...selected] }, false);
  }
  scroller.addEventListener("scroll", () => requestAnimationFrame(draw));
  scroller.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      cursor = Math.max(0, Math.min(total - 1, cursor + (e.key === "ArrowDown" ? 1 : -1)));
      if ((cursor + 1) * ROW < scroller.scrollTop + ROW) scroller.scrollTop = cursor * ROW;
      if ((cursor + 2) * ROW > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = (cursor + 2) * ROW - scroller.clientHeight;
      draw();
    } else if (e.key === " ") {
      e.preventDefault();
      const r = rowAt(cursor);
      if (r) toggle(r.id);
    } else if (e.key === "Enter") {
      const r = rowAt(cursor);
      if (r) state.set({ view: "run", run: r.id });
    }
  });
  draw();
}

async function renderGroups(main, info, ids, cols, group) {
  const metrics = cols.filter((c) => c.startsWith("metrics."));
  const test = state.get("test", "welch");
  let baseKey = null;
  try { baseKey = state.get("gbase") ? JSON.parse(state.get("gbase")) : null; } catch { baseKey = null; }
  const g = await api("/api/fusionprot/dashboard/groups", {
    experiment_ids: ids,
    filter: state.get("filter") || undefined,
    group_by: group,
    columns: metrics,
    baseline: baseKey || undefined,
    test: baseKey ? test : undefined,
  });
  const b = g.bootstrap;
  info.textContent = `${g.key.length} groups of ${g.runs_total} runs (every matching run); mean ± sd (n), ` +
    `[${Math.round(b.level * 100)}% CI: ${b.method}, ${b.resamples} resamples, seed ${b.seed}]` +
    (g.test ? `; Δ and p against the baseline group (◉), ${g.test}` : "; ◎ makes a group the baseline");
  const same = (k) => baseKey && JSON.stringify(k) === JSON.stringify(baseKey);
  const keyNames = [...new Set(g.key.flatMap((k) => k.map((p) => p[0])))];
  const table = el(
    "table",
    { id: "groups" },
    el("thead", {}, el("tr", {}, ["", ...keyNames, "runs", ...metrics].map((c) => el("th", { text: c })))),
    el("tbody", {}, g.key.map((k, i) => el(
      "tr",
      { "data-runs": g.runs[i].join(","), class: same(k) ? "baseline" : undefined },
      el("td", {}, el("span", {
        class: "base" + (same(k) ? " on" : ""), text: same(k) ? "◉" : "◎", role: "button",
        title: same(k) ? "the baseline group (click to clear)" : "use as the baseline group",
        onclick: () => state.set({ gbase: same(k) ? null : JSON.stringify(k) }),
      })),
      keyNames.map((name) => el("td", { text: (k.find((p) => p[0] === name) || [null, ""])[1] ?? "—" })),
      el("td", { class: "num" }, el("a", {
        href: "#", text: g.runs[i].length,
        onclick: (e) => { e.preventDefault(); state.set({ view: "compare", sel: g.runs[i], group: null }); },
      })),
      metrics.map((m) => {
        const s = g.columns[m];
        const text = s.mean[i] === null ? "" : `${fmt(s.mean[i])} ± ${s.sd[i] === null ? "—" : fmt(s.sd[i])} (${s.n[i]})`;
        const ci = s.ci_lo[i] === null ? null : el("span", { class: "ci muted", text: ` [${fmt(s.ci_lo[i])}, ${fmt(s.ci_hi[i])}]` });
        const d = s.delta?.[i];
        const delta = isNum(d) ? el("span", {
          class: "delta" + (s.p[i] !== null && s.p[i] < 0.05 ? " significant" : ""),
          text: ` Δ ${d >= 0 ? "+" : "−"}${fmt(Math.abs(d))}` + (s.p[i] === null ? " (no test)" : ` p=${s.p[i] < 1e-4 ? s.p[i].toExponential(1) : s.p[i].toFixed(4)}`),
          title: s.p[i] === null ? "too few runs (or no variance) to test" : `${g.test}: t=${fmt(s.t[i])}, df=${fmt(s.df[i])}`,
        }) : null;
        return el("td", {
          class: "num", "data-mean": s.mean[i] ?? "", "data-sd": s.sd[i] ?? "", "data-n": s.n[i],
          "data-ci-lo": s.ci_lo[i] ?? "", "data-ci-hi": s.ci_hi[i] ?? "", "data-delta": d ?? "", "data-p": s.p?.[i] ?? "",
        }, text, ci, delta);
      }),
    ))),
  );
  main.append(
    el("label", {}, "test against the baseline ",
      el("select", { id: "test", onchange: (e) => state.set({ test: e.target.value === "welch" ? null : e.target.value }) },
        [["welch", "Welch's t-test"], ["paired", "paired t-test (by seed)"]].map(([v, t]) => {
          const o = el("option", { value: v, text: t });
          o.selected = v === test;
          return o;
        }))),
    " ",
    el("a", {
      id: "compare-groups", href: "#",
      onclick: (e) => { e.preventDefault(); state.set({ view: "compare", sel: g.runs.flat().slice(0, 60), group }); },
    }, "compare the groups' curves (mean ± sd)"),
    table,
  );
}
