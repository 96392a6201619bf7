// The compare view: metric curves of the selected runs on shared axes, one chart per metric; a
// test metric is drawn with its valid twin and the best-valid step marked; curves come
// downsampled from the server (first, last, each bucket's min and max, the best-valid step);
// optional smoothing (EMA); every chart can be shown as a table.

import uPlot from "./vendor/uplot-1.6.32/uPlot.esm.js";
import { api, el, state, fmt, isNum } from "./lib.js";

const COLORS = ["#0b62c4", "#d1495b", "#00798c", "#edae49", "#66a182", "#8d6cab", "#2e4057", "#e07a5f"];

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
    const label = (x) => `${names[x.id] || x.id} ${x.key}`;
    if (asTable) {
      box.append(el("table", { class: "as-table" },
        el("thead", {}, el("tr", {}, ["step", ...series.map(label)].map((c) => el("th", { text: c })))),
        el("tbody", {}, steps.map((st, i) => el("tr", {},
          el("td", { class: "num", text: st }),
          columns.map((c) => el("td", { class: "num", text: fmt(c[i]) })))))));
      continue;
    }
    const plot = el("div", { class: "plot" });
    box.append(plot);
    const best = series.map((x) => x.s.best_step);
    const opts = {
      width: Math.max(420, Math.min(900, (grid.clientWidth || 960) / 2 - 20)),
      height: 280,
      scales: { x: { time: false } },
      // room for labels such as 12,000 or 1.2e-5 on the value axis
      axes: [{}, { size: 72 }],
      series: [
        { label: "step" },
        ...series.map((x, k) => ({
          label: label(x),
          stroke: COLORS[runs.indexOf(x.id) % COLORS.length],
          dash: x.key === metric ? undefined : [6, 4],
          spanGaps: true,
          points: { show: false },
        })),
      ],
      hooks: {
        // the best-valid step of each series, as a ring on the curve
        draw: [(u) => {
          const ctx = u.ctx;
          series.forEach((x, k) => {
            const i = at.get(best[k]);
            const v = i === undefined ? null : columns[k][i];
            if (v === null || v === undefined) return;
            const cx = u.valToPos(best[k], "x", true);
            const cy = u.valToPos(v, "y", true);
            ctx.beginPath();
            ctx.arc(cx, cy, 5 * devicePixelRatio, 0, 2 * Math.PI);
            ctx.strokeStyle = COLORS[runs.indexOf(x.id) % COLORS.length];
            ctx.lineWidth = 2;
            ctx.stroke();
          });
        }],
      },
    };
    new uPlot(opts, [steps, ...columns], plot);
    box.dataset.points = String(columns.reduce((n, c) => n + c.filter((v) => v !== null).length, 0));
  }
}
