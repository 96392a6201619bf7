// The explore view: parallel coordinates over params and results with brushing, and a scatter of
// one param or metric against a metric, for every run the filter matches (hand-written SVG).
// Brushes live in the URL (?brush=AXIS:LO:HI;…), so a narrowed view can be shared.

import { api, el, state, fmt, isNum, experiments } from "./lib.js";

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...kids) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = String(v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const k of kids.flat()) if (k) e.append(k);
  return e;
}

/** An axis: numeric (all values numbers) or categorical (the sorted distinct values). */
function axis(name, values) {
  const nums = values.filter((v) => v !== null && v !== "" && !isNaN(Number(v))).map(Number);
  const numeric = nums.length > 0 && nums.length === values.filter((v) => v !== null && v !== "").length;
  if (numeric) {
    let lo = Math.min(...nums);
    let hi = Math.max(...nums);
    if (lo === hi) { lo -= 1; hi += 1; }
    return { name, numeric, lo, hi, pos: (v) => (v === null || v === "" || isNaN(Number(v)) ? null : (Number(v) - lo) / (hi - lo)) };
  }
  const cats = [...new Set(values.filter((v) => v !== null && v !== ""))].map(String).sort();
  return { name, numeric, cats, pos: (v) => (v === null || v === "" ? null : cats.length < 2 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1)) };
}

function brushes() {
  const out = {};
  for (const b of state.get("brush").split(";").filter(Boolean)) {
    // the axis name may hold a colon (metrics.K:best): the range is the last two fields
    const parts = b.split(":");
    const hi = parts.pop();
    const lo = parts.pop();
    const name = parts.join(":");
    if (name && !isNaN(Number(lo)) && !isNaN(Number(hi))) out[name] = [Number(lo), Number(hi)];
  }
  return out;
}

export async function render(main) {
  const exps = await experiments();
  const ids = state.list("exp").length ? state.list("exp") : exps.map((e) => e.experiment_id);
  const keys = await api(`/api/fusionprot/dashboard/keys?experiment_ids=${encodeURIComponent(ids.join(","))}`);
  let dims = state.list("dims");
  if (!dims.length) {
    dims = [
      // varying-only: the params that differ among these runs (the seed aside)
      ...(keys.varying_params?.length ? keys.varying_params : keys.params).filter((k) => k !== "seed").slice(0, 4).map((k) => `params.${k}`),
      ...keys.metrics.filter((k) => /^(valid|test)/.test(k)).slice(0, 3).map((k) => `metrics.${k}:best`),
    ];
  }
  const page = await api("/api/fusionprot/dashboard/runs", {
    experiment_ids: ids, filter: state.get("filter") || undefined, columns: dims, offset: 0, limit: 5000,
  });
  const n = page.run_id.length;
  const axes = dims.map((d) => axis(d, page.columns[d]));
  const brush = brushes();
  const inside = (i) => axes.every((a) => {
    const b = brush[a.name];
    if (!b) return true;
    const p = a.pos(page.columns[a.name][i]);
    return p !== null && p >= b[0] && p <= b[1];
  });
  const kept = [...Array(n).keys()].filter(inside);

  // parallel coordinates
  const W = 1100, H = 360, top = 40, bottom = 30, left = 60;
  const step = axes.length > 1 ? (W - 2 * left) / (axes.length - 1) : 0;
  const x = (k) => left + k * step;
  const y = (p) => top + (1 - p) * (H - top - bottom);
  const lines = svg("g", { class: "lines" });
  for (let i = 0; i < n; i++) {
    const pts = axes.map((a, k) => {
      const p = a.pos(page.columns[a.name][i]);
      return p === null ? null : `${x(k).toFixed(1)},${y(p).toFixed(1)}`;
    });
    const d = pts.map((p, k) => (p === null ? "" : `${k === 0 || pts[k - 1] === null ? "M" : "L"}${p}`)).join("");
    const on = kept.includes(i);
    lines.append(svg("path", {
      d, "data-run": page.run_id[i], class: on ? "kept" : "dimmed",
    }, svg("title", { text: page.run_name[i] })));
  }
  const axisG = axes.map((a, k) => {
    // drag on an axis to brush a range of it; a click without a drag clears it
    let start = null;
    const g = svg("g", { class: "axis", "data-axis": a.name });
    const ticks = a.numeric ? [0, 0.5, 1].map((p) => [p, fmt(a.lo + p * (a.hi - a.lo))]) : a.cats.slice(0, 12).map((c) => [a.pos(c), c]);
    g.append(
      svg("line", { x1: x(k), x2: x(k), y1: y(0), y2: y(1), class: "rule" }),
      svg("text", { x: x(k), y: top - 18, "text-anchor": "middle", "font-size": 12, class: "label", text: a.name.replace(/^(params|metrics)\./, "") }),
      ...ticks.map(([p, t]) => svg("text", { x: x(k) + 5, y: y(p) + 4, "font-size": 10, class: "label", text: t })),
    );
    const b = brush[a.name];
    if (b) g.append(svg("rect", { x: x(k) - 7, y: y(b[1]), width: 14, height: Math.max(2, y(b[0]) - y(b[1])), class: "brush" }));
    const hit = svg("rect", {
      x: x(k) - 12, y: top, width: 24, height: H - top - bottom, class: "hit",
      onpointerdown: (e) => { start = e.offsetY; },
      onpointerup: (e) => {
        const all = brushes();
        if (start !== null && Math.abs(e.offsetY - start) > 3) {
          const p = (v) => Math.min(1, Math.max(0, 1 - (v - top) / (H - top - bottom)));
          const [lo, hi] = [p(Math.max(start, e.offsetY)), p(Math.min(start, e.offsetY))];
          all[a.name] = [Number(lo.toFixed(4)), Number(hi.toFixed(4))];
        } else {
          delete all[a.name];
        }
        start = null;
        state.set({ brush: Object.entries(all).map(([k2, [l, h]]) => `${k2}:${l}:${h}`).join(";") || null });
      },
    });
    g.append(hit);
    return g;
  });
  const pc = svg("svg", { id: "parallel", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "parallel coordinates" }, lines, ...axisG);

  // scatter: ?x= (default the first param) against ?y= (default the first metric dimension)
  const xs = state.get("x", dims.find((d) => d.startsWith("params.")) || dims[0]);
  const ys = state.get("y", dims.find((d) => d.startsWith("metrics.")) || dims[dims.length - 1]);
  const sx = axis(xs, page.columns[xs] || []);
  const sy = axis(ys, page.columns[ys] || []);
  const SW = 520, SH = 340, m = 50;
  const dots = [];
  for (const i of kept) {
    const px = sx.pos((page.columns[xs] || [])[i]);
    const py = sy.pos((page.columns[ys] || [])[i]);
    if (px === null || py === null) continue;
    dots.push(svg("circle", {
      cx: (m + px * (SW - 2 * m)).toFixed(1), cy: (SH - m - py * (SH - 2 * m)).toFixed(1), r: 4,
      class: "dot", "data-run": page.run_id[i],
    }, svg("title", { text: `${page.run_name[i]}: ${fmt((page.columns[xs] || [])[i])}, ${fmt((page.columns[ys] || [])[i])}` })));
  }
  const sc = svg("svg", { id: "scatter", viewBox: `0 0 ${SW} ${SH}`, width: SW, height: SH, role: "img", "aria-label": "scatter" },
    svg("line", { x1: m, x2: SW - m, y1: SH - m, y2: SH - m, class: "rule" }),
    svg("line", { x1: m, x2: m, y1: m, y2: SH - m, class: "rule" }),
    svg("text", { x: SW / 2, y: SH - 12, "text-anchor": "middle", "font-size": 12, class: "label", text: xs }),
    svg("text", { x: 12, y: SH / 2, "font-size": 12, class: "label", transform: `rotate(-90 12 ${SH / 2})`, "text-anchor": "middle", text: ys }),
    ...dots);
  const asTable = state.get("table") === "1";
  main.replaceChildren(
    el("div", { class: "bar" },
      el("input", { id: "dims", type: "text", value: dims.join(","), placeholder: "axes: params.K, metrics.K:best, …",
        onkeydown: (e) => { if (e.key === "Enter") state.set({ dims: e.target.value, brush: null }); } }),
      el("span", { id: "kept", text: `${kept.length} of ${n} runs in the brushes` }),
      el("a", { href: "#", onclick: (e) => { e.preventDefault(); state.set({ view: "compare", sel: kept.slice(0, 20).map((i) => page.run_id[i]) }); } }, "compare them (first 20)"),
      el("label", {}, el("input", { type: "checkbox", id: "astable", checked: asTable, onchange: (e) => state.set({ table: e.target.checked ? "1" : null }) }), " show as table")),
    asTable
      ? el("table", { id: "explore-table" },
        el("thead", {}, el("tr", {}, ["run", ...dims].map((d) => el("th", { text: d })))),
        el("tbody", {}, kept.map((i) => el("tr", {}, el("td", { text: page.run_name[i] }), dims.map((d) => el("td", { class: isNum(page.columns[d][i]) ? "num" : undefined, text: fmt(page.columns[d][i]) }))))))
      : el("div", {}, pc, el("div", { class: "bar" },
        el("label", {}, "x ", el("input", { id: "sx", type: "text", value: xs, onkeydown: (e) => { if (e.key === "Enter") state.set({ x: e.target.value }); } })),
        el("label", {}, "y ", el("input", { id: "sy", type: "text", value: ys, onkeydown: (e) => { if (e.key === "Enter") state.set({ y: e.target.value }); } }))), sc),
  );
}
