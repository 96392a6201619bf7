// The compare view: metric curves of the selected runs on shared axes, one chart per metric; a
// test metric is drawn with its valid twin and the best-valid step marked; curves come
// downsampled from the server (first, last, each bucket's min and max, the best-valid step);
// optional smoothing (EMA); every chart can be shown as a table.

import uPlot from "./vendor/uplot-1.6.32/uPlot.esm.js";
import { api, el, state, fmt, isNum } from "./lib.js";

const COLORS = ["#0b62c4", "#d1495b", "#00798c", "#edae49", "#66a182", "#8d6cab", "#2e4057", "#e07a5f"];

/** A run's group under ?group= (all-but:seed,K… or params.K,…), as the server groups. */
function groupKey(params, spec) {
  if (spec.startsWith("all-but:")) {
    const skip = spec.slice(8).split(",").map((k) => k.trim().replace(/^params\./, "")).filter(Boolean);
    return Object.keys(params).filter((k) => !skip.includes(k)).sort().map((k) => `${k}=${params[k]}`).join(" ") || "(all)";
  }
  return spec.split(",").map((f) => f.trim()).filter(Boolean)
    .map((f) => `${f.replace(/^params\./, "")}=${params[f.replace(/^params\./, "")] ?? "—"}`).join(" ");
}

/** The metrics to draw: ?metrics=, or the valid/* keys of the runs (their test twins follow). */
function chosen(keys) {
  const m = state.list("metrics");
  if (m.length) return m;
  const valid = keys.filter((k) => k.startsWith("valid/") || k.startsWith("valid_"));
  return (valid.length ? valid : keys).slice(0, 6);
}

export async function render(main) {
  const runs = state.list("sel");
  if (!runs.length) {
    main.replaceChildren(el("p", { class: "muted", text: "Select runs in the runs table (or a group's runs) to compare them." }));
    return;
  }
  const infos = await Promise.all(runs.map((id) => api(`/api/2.0/mlflow/runs/get?run_id=${encodeURIComponent(id)}`)));
  const keys = [...new Set(infos.flatMap((r) => (r.run.data.metrics || []).map((m) => m.key)))].sort();
  const metrics = chosen(keys);
  const smooth = Number(state.get("smooth", "0")) || 0;
  // points per curve asked of the server (it keeps ends, extremes and the best-valid step)
  const budget = Math.min(100000, Math.max(4, Number(state.get("points", "800")) || 800));
  const asTable = state.get("table") === "1";
  const bar = el(
    "div",
    { class: "bar" },
    el("span", { text: `${runs.length} runs` }),
    el("input", {
      id: "metrics", type: "text", list: "mkeys", value: metrics.join(","),
      placeholder: "metrics, comma separated",
      onkeydown: (e) => { if (e.key === "Enter") state.set({ metrics: e.target.value }); },
    }),
    el("datalist", { id: "mkeys" }, keys.slice(0, 200).map((k) => el("option", { value: k }))),
    el("input", {
      id: "cgroup", type: "text", value: state.get("group"), placeholder: "mean ± sd by: all-but:seed",
      onkeydown: (e) => { if (e.key === "Enter") state.set({ group: e.target.value }); },
    }),
    el("label", {}, "smoothing ",
      el("input", {
        id: "smooth", type: "range", min: 0, max: 0.99, step: 0.01, value: smooth,
        onchange: (e) => state.set({ smooth: e.target.value === "0" ? null : e.target.value }),
      })),
    el("label", {}, el("input", {
      id: "astable", type: "checkbox", checked: asTable,
      onchange: (e) => state.set({ table: e.target.checked ? "1" : null }),
    }), " show as table"),
  );
  const grid = el("div", { class: "charts", id: "charts" });
  main.replaceChildren(bar, grid);
  const names = Object.fromEntries(infos.map((r) => [r.run.info.run_id, r.run.info.run_name]));
  const params = Object.fromEntries(infos.map((r) => [r.run.info.run_id, Object.fromEntries((r.run.data.params || []).map((p) => [p.key, p.value]))]));
  const group = state.get("group");
  for (const metric of metrics) {
    const twins = [metric];
    const test = metric.replace(/^valid([/_])/, "test$1");
    if (test !== metric && keys.includes(test)) twins.push(test);
    const select = metric.startsWith("valid") ? metric : metric.replace(/^test([/_])/, "valid$1");
    const box = el("div", { class: "chart", "data-metric": metric });
    grid.append(box);
    box.append(el("h3", { text: twins.join(" and ") }));
    const series = [];
    for (const id of runs) {
      for (const key of twins) {
        const s = await api(`/api/fusionprot/dashboard/series?run_id=${encodeURIComponent(id)}&key=${encodeURIComponent(key)}&points=${budget}&select=${encodeURIComponent(keys.includes(select) ? select : key)}`);
        if (s.total_points) series.push({ id, key, s });
      }
    }
    if (!series.length) {
      box.append(el("p", { class: "muted", text: "no points" }));
      continue;
    }
    // the data is in hand: from here to the first drawn frame is the chart's own cost
    const t0 = performance.now();
    const steps = [...new Set(series.flatMap((x) => x.s.step))].sort((a, b) => a - b);
    const at = new Map(steps.map((s, i) => [s, i]));
    const columns = series.map((x) => {
      const col = new Array(steps.length).fill(null);
      let ema = null;
      x.s.step.forEach((st, i) => {
        const v = x.s.value[i];
        if (!isNum(v)) return;
        ema = ema === null || !smooth ? v : smooth * ema + (1 - smooth) * v;
        col[at.get(st)] = ema;
      });
      return col;
    });
    // lines to draw: one per run, or with ?group= one mean per group and its ± sd band
    let lines = series.map((x, k) => ({
      label: `${names[x.id] || x.id} ${x.key}`,
      color: COLORS[runs.indexOf(x.id) % COLORS.length],
      dash: x.key !== metric,
      values: columns[k],
      best: x.s.best_step,
    }));
    const bands = [];
    if (group) {
      const keyOf = (id) => groupKey(params[id] || {}, group);
      const groups = [...new Set(runs.map(keyOf))].sort();
      lines = [];
      groups.forEach((g, gi) => {
        for (const key of twins) {
          const members = series.map((x, k) => [x, k]).filter(([x]) => x.key === key && keyOf(x.id) === g);
          if (!members.length) continue;
          const mean = [], hi = [], lo = [];
          steps.forEach((_, i) => {
            const v = members.map(([, k]) => columns[k][i]).filter((y) => y !== null);
            if (!v.length) { mean.push(null); hi.push(null); lo.push(null); return; }
            const m = v.reduce((a2, b2) => a2 + b2, 0) / v.length;
            const sd = v.length > 1 ? Math.sqrt(v.reduce((a2, b2) => a2 + (b2 - m) * (b2 - m), 0) / (v.length - 1)) : 0;
            mean.push(m); hi.push(m + sd); lo.push(m - sd);
          });
          const color = COLORS[gi % COLORS.length];
          const base = lines.length + 1; // uPlot series index of the mean (0 is x)
          lines.push({ label: `${g} ${key} (n=${members.length})`, color, dash: key !== metric, values: mean, best: null });
          lines.push({ label: `${g} ${key} + sd`, color, band: true, values: hi });
          lines.push({ label: `${g} ${key} − sd`, color, band: true, values: lo });
          bands.push({ series: [base + 1, base + 2], fill: color + "33" });
        }
      });
    }
    if (asTable) {
      box.append(el("table", { class: "as-table" },
        el("thead", {}, el("tr", {}, ["step", ...lines.map((l) => l.label)].map((c) => el("th", { text: c })))),
        el("tbody", {}, steps.map((st, i) => el("tr", {},
          el("td", { class: "num", text: st }),
          lines.map((l) => el("td", { class: "num", text: fmt(l.values[i]) })))))));
      continue;
    }
    const plot = el("div", { class: "plot" });
    box.append(plot);
    const opts = {
      width: Math.max(420, Math.min(900, (grid.clientWidth || 960) / 2 - 20)),
      height: 280,
      scales: { x: { time: false } },
      // room for labels such as 12,000 or 1.2e-5 on the value axis
      axes: [{}, { size: 72 }],
      series: [
        { label: "step" },
        ...lines.map((l) => ({
          label: l.label,
          stroke: l.band ? l.color + "55" : l.color,
          width: l.band ? 0.5 : 1,
          dash: l.dash ? [6, 4] : undefined,
          spanGaps: true,
          points: { show: false },
        })),
      ],
      bands,
      hooks: {
        // the best-valid step of each run's series, as a ring on the curve
        draw: [(u) => {
          if (!box.dataset.drawMs) box.dataset.drawMs = (performance.now() - t0).toFixed(1);
          const ctx = u.ctx;
          lines.forEach((l) => {
            const i = l.best === null || l.best === undefined ? undefined : at.get(l.best);
            const v = i === undefined ? null : l.values[i];
            if (v === null || v === undefined) return;
            const cx = u.valToPos(l.best, "x", true);
            const cy = u.valToPos(v, "y", true);
            ctx.beginPath();
            ctx.arc(cx, cy, 5 * devicePixelRatio, 0, 2 * Math.PI);
            ctx.strokeStyle = l.color;
            ctx.lineWidth = 2;
            ctx.stroke();
          });
        }],
      },
    };
    box.dataset.lines = String(lines.filter((l) => !l.band).length);
    box.dataset.bands = String(bands.length);
    new uPlot(opts, [steps, ...lines.map((l) => l.values)], plot);
    box.dataset.points = String(columns.reduce((n, c) => n + c.filter((v) => v !== null).length, 0));
  }
}
