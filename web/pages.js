// The other views: the paper table (groups × task metrics, mean ± sd (n), best in bold, reference
// rows, CSV / Markdown / LaTeX), a run's page, the datasets page and the SQL console.

import { api, el, state, fmt, isNum, lowerIsBetter, download, plainTable, csv, experiments } from "./lib.js";

/** Paper table: rows = models (?group=, default the model param), columns = task (?task=,
 * default the data.task param) × metric (?metrics=, default the test_at_best_valid/* keys; ?at=last
 * switches to test_at_last/*); cells mean ± sd (n), the best of each column in bold; published
 * reference rows (?refs=); CSV, Markdown and LaTeX. */
export async function paper(main) {
  const exps = await experiments();
  const ids = state.list("exp").length ? state.list("exp") : exps.map((e) => e.experiment_id);
  const keys = await api(`/api/fusionprot/dashboard/keys?experiment_ids=${encodeURIComponent(ids.join(","))}`);
  const at = state.get("at", "best_valid");
  const prefix = at === "last" ? "test_at_last/" : "test_at_best_valid/";
  let metrics = state.list("metrics");
  if (!metrics.length) metrics = keys.metrics.filter((k) => k.startsWith(prefix));
  if (!metrics.length) metrics = keys.metrics.filter((k) => k.startsWith("test")).slice(0, 6);
  const defaultRow = ["model.kind", "model"].find((k) => keys.params.includes(k));
  const group = state.get("group", defaultRow ? `params.${defaultRow}` : "all-but:seed");
  const task = state.get("task", keys.params.includes("data.task") && !group.startsWith("all-but:") ? "params.data.task" : "");
  // a baseline row: its key without the task (so each task's cell meets the baseline's cell)
  let baseKey = null;
  try { baseKey = state.get("pbase") ? JSON.parse(state.get("pbase")) : null; } catch { baseKey = null; }
  const test = state.get("test", "welch");
  const showCi = state.get("ci") === "1";
  const g = await api("/api/fusionprot/dashboard/groups", {
    experiment_ids: ids, filter: state.get("filter") || undefined,
    group_by: task ? `${group},${task}` : group,
    columns: metrics.map((m) => `metrics.${m}`),
    baseline: baseKey || undefined,
    test: baseKey ? test : undefined,
  });
  // pivot: a row per model, a column per (task, metric)
  const rowName = (k) => k.filter((p) => p[0] !== task).map((p) => p[1] ?? "—").join(" / ") || "(all)";
  const taskOf = (k) => (task ? (k.find((p) => p[0] === task) || [null, "—"])[1] ?? "—" : "");
  const tasks = [...new Set(g.key.map(taskOf))].sort();
  const cols = tasks.flatMap((t) => metrics.map((m) => ({ task: t, metric: m })));
  const label = (c) => (c.task ? `${c.task} ${c.metric.replace(prefix, "")}` : c.metric.replace(prefix, ""));
  const byRow = new Map();
  const empty = () => ({ mean: null, sd: null, n: null, lo: null, hi: null, delta: null, p: null });
  g.key.forEach((k, i) => {
    const name = rowName(k);
    const own = k.filter((p) => p[0] !== task);
    if (!byRow.has(name)) byRow.set(name, { name, key: own, cells: cols.map(empty) });
    cols.forEach((c, j) => {
      if (c.task !== taskOf(k)) return;
      const s = g.columns[`metrics.${c.metric}`];
      byRow.get(name).cells[j] = { mean: s.mean[i], sd: s.sd[i], n: s.n[i], lo: s.ci_lo[i], hi: s.ci_hi[i], delta: s.delta?.[i] ?? null, p: s.p?.[i] ?? null };
    });
  });
  const isBase = (r) => baseKey && r.key && JSON.stringify(r.key) === JSON.stringify(baseKey);
  // runs without these metrics (an embedding run, another task's model) leave empty rows and
  // columns: drop them
  let rows = [...byRow.values()].filter((r) => r.cells.some((c) => c.mean !== null));
  const keep = cols.map((_, j) => rows.some((r) => r.cells[j].mean !== null));
  cols.splice(0, cols.length, ...cols.filter((_, j) => keep[j]));
  rows = rows.map((r) => ({ ...r, cells: r.cells.filter((_, j) => keep[j]) }));
  // reference rows: "name: v1, v2, …" per line, in the column order
  for (const l of state.get("refs").split("\n").map((x) => x.trim()).filter(Boolean)) {
    const [name, vals = ""] = l.split(":");
    const values = vals.split(",").map((v) => (v.trim() === "" ? null : Number(v)));
    rows.push({ name: `${name.trim()} (published)`, cells: cols.map((_, c) => ({ ...empty(), mean: values[c] ?? null })) });
  }
  const bestRow = cols.map((c, j) => {
    let best = -1;
    rows.forEach((r, i) => {
      const v = r.cells[j].mean;
      if (!isNum(v)) return;
      if (best < 0 || (lowerIsBetter(c.metric) ? v < rows[best].cells[j].mean : v > rows[best].cells[j].mean)) best = i;
    });
    return best;
  });
  const pval = (p) => (p < 1e-4 ? p.toExponential(1) : p.toFixed(4));
  const text = (cell) => {
    if (cell.mean === null) return "";
    let t = cell.sd === null ? fmt(cell.mean) + (cell.n ? ` (${cell.n})` : "") : `${fmt(cell.mean)} ± ${fmt(cell.sd)} (${cell.n})`;
    if (showCi && cell.lo !== null) t += ` [${fmt(cell.lo)}, ${fmt(cell.hi)}]`;
    if (isNum(cell.delta)) t += ` Δ ${cell.delta >= 0 ? "+" : "−"}${fmt(Math.abs(cell.delta))}${cell.p === null ? "" : ` (p=${pval(cell.p)})`}`;
    return t;
  };
  const header = ["model", ...cols.map(label)];
  const table = el("table", { id: "paper" },
    el("thead", {}, el("tr", {}, header.map((c) => el("th", { text: c })))),
    el("tbody", {}, rows.map((r, i) => el("tr", { class: isBase(r) ? "baseline" : undefined },
      el("td", {}, r.key ? el("span", {
        class: "base" + (isBase(r) ? " on" : ""), text: isBase(r) ? "◉ " : "◎ ", role: "button",
        title: isBase(r) ? "the baseline row (click to clear)" : "use as the baseline row: Δ and p in every other row",
        onclick: () => state.set({ pbase: isBase(r) ? null : JSON.stringify(r.key) }),
      }) : null, r.name),
      r.cells.map((cell, c) => el("td", {
        class: "num" + (bestRow[c] === i ? " best" : ""), text: text(cell),
        "data-delta": cell.delta ?? "", "data-p": cell.p ?? "", "data-ci-lo": cell.lo ?? "", "data-ci-hi": cell.hi ?? "",
      }))))));
  const flat = rows.map((r) => [r.name, ...r.cells.map(text)]);
  const md = () => {
    // backslash-escape what Markdown (and a table's cell) would read as markup
    const esc = (x) => String(x).replace(/[\\`*_{}[\]<>#|~^&%]/g, "\\$&");
    const line = (cells) => `| ${cells.join(" | ")} |`;
    return [line(header.map(esc)), line(header.map(() => "---")),
      ...rows.map((r, i) => line([esc(r.name), ...r.cells.map((c, k) => (bestRow[k] === i && text(c) ? `**${esc(text(c))}**` : esc(text(c))))]))].join("\n") + "\n";
  };
  const tex = () => {
    // LaTeX's ten specials: \ ^ ~ have no one-character escape; | is a text-mode command too
    const named = { "\\": "\\textbackslash{}", "^": "\\textasciicircum{}", "~": "\\textasciitilde{}", "|": "\\textbar{}" };
    const esc = (x) => String(x).replace(/[\\^~|&%$#_{}]/g, (c) => named[c] ?? `\\${c}`).replace(/±/g, "$\\pm$");
    const body = rows.map((r, i) => [esc(r.name), ...r.cells.map((c, k) => (bestRow[k] === i && text(c) ? `\\textbf{${esc(text(c))}}` : esc(text(c))))].join(" & ") + " \\\\");
    return [`\\begin{tabular}{l${"r".repeat(cols.length)}}`, "\\toprule", header.map(esc).join(" & ") + " \\\\", "\\midrule", ...body, "\\bottomrule", "\\end{tabular}"].join("\n") + "\n";
  };
  main.replaceChildren(
    el("div", { class: "bar" },
      el("label", {}, "rows ", el("input", { id: "group", type: "text", value: group, onkeydown: (e) => { if (e.key === "Enter") state.set({ group: e.target.value }); } })),
      el("label", {}, "task ", el("input", { id: "task", type: "text", value: task, placeholder: "none", onkeydown: (e) => { if (e.key === "Enter") state.set({ task: e.target.value || null }); } })),
      el("label", {}, el("input", { type: "checkbox", id: "atlast", checked: at === "last", onchange: (e) => state.set({ at: e.target.checked ? "last" : null, metrics: null }) }), " test at last epoch"),
      el("label", {}, el("input", { type: "checkbox", id: "showci", checked: showCi, onchange: (e) => state.set({ ci: e.target.checked ? "1" : null }) }), " 95% CI"),
      el("label", {}, " test ", el("select", { id: "test", onchange: (e) => state.set({ test: e.target.value === "welch" ? null : e.target.value }) },
        [["welch", "Welch"], ["paired", "paired (by seed)"]].map(([v, t]) => {
          const o = el("option", { value: v, text: t });
          o.selected = v === test;
          return o;
        }))),
      el("button", { id: "csv", onclick: () => download("paper-table.csv", csv(header, flat), "text/csv") }, "CSV"),
      el("button", { id: "md", onclick: () => download("paper-table.md", md()) }, "Markdown"),
      el("button", { id: "tex", onclick: () => download("paper-table.tex", tex()) }, "LaTeX")),
    el("p", { class: "muted", id: "paper-note", text: `cells: ${at === "last" ? "test at the last epoch" : "test at the best valid epoch"}, mean ± sd (n) over ${g.runs_total} runs` +
      (showCi ? `, [${Math.round(g.bootstrap.level * 100)}% CI: ${g.bootstrap.method}, ${g.bootstrap.resamples} resamples, seed ${g.bootstrap.seed}]` : "") +
      (g.test ? `; Δ to the baseline row (◉) with p from ${g.test}` : "; ◎ makes a row the baseline") + "; best per column in bold" }),
    table,
    el("details", {}, el("summary", { text: "published reference rows (name: value, value, … in column order)" }),
      el("textarea", { id: "refs", placeholder: "GearNet-Edge: 0.810, 0.490", value: state.get("refs"), onchange: (e) => state.set({ refs: e.target.value }) })),
    el("pre", { id: "markdown", class: "muted", text: md() }),
    el("pre", { id: "latex", class: "muted", text: tex() }),
  );
}

/** A run: its info, params (and a diff against ?other=), tags, latest metrics, checkpoints,
 * datasets, the inputs MLflow's clients logged, artifacts. */
export async function run(main) {
  const id = state.get("run");
  const r = (await api(`/api/2.0/mlflow/runs/get?run_id=${encodeURIComponent(id)}`)).run;
  const other = state.get("other");
  const o = other ? (await api(`/api/2.0/mlflow/runs/get?run_id=${encodeURIComponent(other)}`)).run : null;
  const params = Object.fromEntries((r.data.params || []).map((p) => [p.key, p.value]));
  const oparams = o ? Object.fromEntries((o.data.params || []).map((p) => [p.key, p.value])) : {};
  const pkeys = [...new Set([...Object.keys(params), ...Object.keys(oparams)])].sort();
  const cks = (await api(`/api/fusionprot/checkpoints/list?run_id=${encodeURIComponent(id)}`)).checkpoints;
  const ds = await api("/api/sql", {
    query: `SELECT d.name, l.context, d.content_hash, d.schema_version FROM run_datasets l JOIN datasets d USING (dataset_id) WHERE l.run_uuid = '${id.replace(/[^0-9a-f]/g, "")}' ORDER BY 2`,
  });
  let artifacts = [];
  try {
    const path = r.info.artifact_uri.replace(/^mlflow-artifacts:\/?/, "");
    artifacts = (await api(`/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent(path)}`)).files || [];
    artifacts = artifacts.map((f) => ({ ...f, url: `/api/2.0/mlflow-artifacts/artifacts/${path}/${f.path}` }));
  } catch { /* no artifacts */ }
  // run hygiene, through MLflow's own routes (with the token, where the server asks for one)
  const again = () => run(main);
  const act = (path, body) => async () => {
    try {
      await api(path, { run_id: id, ...body });
      await again();
    } catch (e) {
      document.getElementById("hygiene-error").textContent = String(e.message || e);
    }
  };
  const value = (elId) => document.getElementById(elId).value;
  const tags = (r.data.tags || []).filter((t) => !t.key.startsWith("mlflow.") || t.key === "mlflow.note.content");
  const note = (r.data.tags || []).find((t) => t.key === "mlflow.note.content")?.value ?? "";
  const deleted = r.info.lifecycle_stage === "deleted";
  const system = (r.data.metrics || []).filter((m) => m.key.startsWith("system/"));
  // per-class breakdown of a predictions artifact (the trainer's test-predictions-best.parquet by
  // default; ?pred= picks another)
  const predFiles = artifacts.filter((f) => !f.is_dir && /predictions.*\.parquet$/.test(f.path)).map((f) => f.path);
  const pred = state.get("pred", predFiles.includes("test-predictions-best.parquet") ? "test-predictions-best.parquet" : predFiles[0] || "");
  let breakdown = null;
  let breakdownError = "";
  if (pred) {
    try {
      breakdown = await api(`/api/fusionprot/dashboard/breakdown?run_id=${encodeURIComponent(id)}&artifact=${encodeURIComponent(pred)}`);
    } catch (e) {
      breakdownError = String(e.message || e);
    }
  }
  const bar = (v) => {
    const b = el("span", { class: "bar-fill" });
    b.style.width = `${Math.round(Math.max(0, Math.min(1, v)) * 80)}px`; // CSSOM: the CSP forbids style attributes
    return b;
  };
  const bucketRow = (b) => el("tr", { "data-bucket": b.name, "data-fmax": b.fmax, "data-auprc": b.auprc },
    el("td", { text: b.name }), el("td", { class: "num", text: b.proteins }), el("td", { class: "num", text: b.columns }),
    el("td", { class: "num", text: b.positives }),
    el("td", { class: "num" }, fmt(b.fmax), " ", bar(b.fmax)),
    el("td", { class: "num", text: fmt(b.auprc) }), el("td", { class: "num", text: fmt(b.auroc) }));
  const breakdownView = !pred
    ? el("p", { class: "muted", text: "no predictions artifact (predictions/v1 Parquet) in this run" })
    : breakdownError
      ? el("p", { class: "error", text: `${pred}: ${breakdownError}` })
      : el("div", { id: "breakdown" },
        predFiles.length > 1 ? el("select", { id: "pred", onchange: (e) => state.set({ pred: e.target.value }) },
          predFiles.map((f) => { const o = el("option", { value: f, text: f }); o.selected = f === pred; return o; })) : el("p", { class: "muted", text: pred }),
        [{ by: "all", label: "all proteins, all columns", buckets: [breakdown.overall] }, ...breakdown.breakdowns].map((v) => el("table", { class: "breakdown", "data-by": v.by },
          el("caption", { text: v.label, title: v.source || "" }),
          el("thead", {}, el("tr", {}, ["bucket", "proteins", "columns", "positives", "Fmax", "AUPR", "AUROC"].map((c) => el("th", { text: c })))),
          el("tbody", {}, v.buckets.map(bucketRow)))),
        el("p", { class: "muted", text: breakdown.unavailable.map((u) => `${u.by.replace(/_/g, " ")}: ${u.reason}`).join(" · ") }));
  main.replaceChildren(
    el("h2", { id: "run-name", text: r.info.run_name }),
    el("p", { class: "muted" }, `${r.info.run_id} · ${r.info.status} · experiment ${r.info.experiment_id} · `,
      el("span", { id: "lifecycle", class: deleted ? "deleted" : "", text: r.info.lifecycle_stage })),
    el("div", { class: "bar", id: "hygiene" },
      el("input", { id: "rename-input", type: "text", value: r.info.run_name, "aria-label": "run name" }),
      el("button", { id: "rename", onclick: () => act("/api/2.0/mlflow/runs/update", { run_name: value("rename-input") })() }, "rename"),
      deleted
        ? el("button", { id: "restore-run", onclick: act("/api/2.0/mlflow/runs/restore", {}) }, "restore run")
        : el("button", { id: "delete-run", onclick: act("/api/2.0/mlflow/runs/delete", {}) }, "delete run"),
      el("span", { id: "hygiene-error", class: "error" })),
    el("div", { class: "bar" }, el("input", { id: "other", type: "text", placeholder: "diff params against run id", value: other,
      onkeydown: (e) => { if (e.key === "Enter") state.set({ other: e.target.value }); } })),
    el("p", {}, el("a", { id: "curves", href: `?view=compare&sel=${encodeURIComponent(id)}` }, "metric curves →")),
    el("h3", { text: "params" }),
    plainTable(o ? ["key", "this run", "other run"] : ["key", "value"],
      pkeys.filter((k) => !o || params[k] !== oparams[k] || state.get("all") === "1")
        .map((k) => (o ? [k, params[k] ?? "—", oparams[k] ?? "—"] : [k, params[k]])), "params"),
    el("h3", { text: "metrics (latest)" }),
    plainTable(["key", "value", "step"], (r.data.metrics || []).map((m) => [m.key, m.value, m.step]), "metrics"),
    el("h3", { text: "system" }),
    system.length
      ? el("div", {},
        plainTable(["key", "latest", "step"], system.map((m) => [m.key, m.value, m.step]), "system"),
        el("a", { id: "system-curves", href: `?view=compare&sel=${encodeURIComponent(id)}&metrics=${encodeURIComponent(system.map((m) => m.key).join(","))}` }, "system curves →"))
      : el("p", { id: "system", class: "muted", text: "no system/… metrics (examples/s, memory, per rank) in this run" }),
    el("h3", { text: "notes" }),
    el("textarea", { id: "note", "aria-label": "notes (mlflow.note.content)", value: note }),
    el("button", { id: "note-save", onclick: () => act("/api/2.0/mlflow/runs/set-tag", { key: "mlflow.note.content", value: value("note") })() }, "save notes"),
    el("h3", { text: "tags" }),
    el("table", { id: "tags" },
      el("thead", {}, el("tr", {}, ["key", "value", ""].map((c) => el("th", { text: c })))),
      el("tbody", {}, tags.map((t) => el("tr", {},
        el("td", { text: t.key }), el("td", { text: t.value }),
        el("td", {}, el("button", { "data-delete-tag": t.key, title: "delete this tag", onclick: act("/api/2.0/mlflow/runs/delete-tag", { key: t.key }) }, "×")))))),
    el("div", { class: "bar" },
      el("input", { id: "tag-key", type: "text", placeholder: "tag key" }),
      el("input", { id: "tag-value", type: "text", placeholder: "value" }),
      el("button", { id: "tag-add", onclick: () => act("/api/2.0/mlflow/runs/set-tag", { key: value("tag-key"), value: value("tag-value") })() }, "set tag")),
    el("h3", { text: "checkpoints" }),
    plainTable(["step", "sha256", "best", "path", "metrics"], cks.map((c) => [c.step, c.sha256 || "", c.is_best ? "best" : "", c.path || c.artifact_path || "", JSON.stringify(c.metrics)]), "checkpoints"),
    el("h3", { text: "datasets" }),
    plainTable(ds.columns.map((c) => c.name), ds.rows, "datasets"),
    el("h3", { text: "inputs (mlflow.log_input)" }),
    plainTable(["name", "digest", "context", "source type", "source", "tags"],
      ((r.inputs || {}).dataset_inputs || []).map((d) => {
        const tags = Object.fromEntries((d.tags || []).map((t) => [t.key, t.value]));
        const { "mlflow.data.context": context = "", ...rest } = tags;
        return [d.dataset.name, d.dataset.digest, context, d.dataset.source_type, d.dataset.source,
          Object.entries(rest).map(([k, v]) => `${k}=${v}`).join(" ")];
      }), "inputs"),
    el("h3", { text: "per-class breakdown" }),
    breakdownView,
    el("h3", { text: "artifacts" }),
    el("ul", { id: "artifacts" }, artifacts.map((f) => el("li", {}, f.is_dir ? el("span", { text: `${f.path}/` }) : el("a", { href: f.url, text: `${f.path} (${f.file_size} bytes)` })))),
  );
}

/** Registered datasets: manifest summary (counts, tables with rows, parts and bytes), each split
 * with its certificate (identity definition and threshold, the largest identity found across
 * splits, pairs checked, the audit), and the runs that used each. */
export async function datasets(main) {
  const r = await api("/api/sql", {
    query: `SELECT d.name, d.content_hash, d.schema_version, d.path, d.manifest_json, d.split_json,
                   (SELECT count(DISTINCT l.run_uuid) FROM run_datasets l WHERE l.dataset_id = d.dataset_id) AS runs
            FROM datasets d ORDER BY d.name`,
  });
  const parse = (t) => { try { return t ? JSON.parse(t) : null; } catch { return null; } };
  const blocks = r.rows.map(([name, hash, version, path, manifestText, splitText, runs]) => {
    const m = parse(manifestText) || {};
    const c = m.counts || {};
    const tables = Object.entries(m.tables || {}).map(([t, v]) => [t, v.rows, (v.parts || []).length, (v.parts || []).reduce((n, p) => n + (p.bytes || 0), 0)]);
    let splits = parse(splitText) || {};
    if (splits.identity) splits = { "(unnamed)": splits }; // a dataset split before named splits
    const certs = Object.entries(splits).map(([sname, sp]) => [
      sname,
      sp.identity ? `${sp.identity.name || sp.identity.definition} < ${fmt(sp.identity.threshold)}` : "",
      sp.max_cross_split ? fmt(sp.max_cross_split.identity) : "none",
      sp.cross_split_pairs_checked ?? "",
      sp.audit_pairs !== undefined ? `${sp.audit_pairs} pairs${sp.audit_exhaustive ? " (exhaustive)" : ""}, max ${sp.audit_max ? fmt(sp.audit_max.identity) : "none"}` : "",
      Array.isArray(sp.counts) ? `train ${sp.counts[0]}, valid ${sp.counts[1]}, test ${sp.counts[2]}` : "",
    ]);
    return el("section", { class: "dataset", "data-name": name },
      el("h3", { text: name }),
      el("p", { class: "muted", text: `${hash.slice(0, 16)}… · schema ${version} · ${path || "(manifest only)"} · used by ${runs} run${runs === 1 ? "" : "s"}` }),
      el("p", { text: `${c.proteins ?? "?"} proteins, ${c.residues ?? "?"} residues, ${c.edges ?? "?"} edges from ${c.files ?? "?"} files (${c.files_failed ?? 0} failed)` }),
      plainTable(["table", "rows", "parts", "bytes"], tables),
      certs.length
        ? plainTable(["split", "identity", "max across splits", "pairs checked", "audit", "proteins"], certs)
        : el("p", { class: "muted", text: "no split yet (fusionprot split)" }));
  });
  main.replaceChildren(el("h2", { text: "datasets" }), ...(blocks.length ? blocks : [el("p", { class: "muted", text: "no registered dataset (fusionprot register DATASET)" })]));
}

const EXAMPLES = [
  "SELECT r.run_name, m.key, m.value FROM runs r JOIN latest_metrics m USING (run_uuid) ORDER BY m.value DESC LIMIT 20",
  "SELECT p.value AS model, avg(m.value) AS mean, stddev_samp(m.value) AS sd, count(*) AS n FROM params p JOIN latest_metrics m USING (run_uuid) WHERE p.key = 'model' AND m.key LIKE 'test%' GROUP BY 1 ORDER BY 2 DESC",
  "SELECT key, count(*) AS points FROM metrics GROUP BY key ORDER BY points DESC",
];

/** The SQL console: read-only DuckDB over the tracker's tables and registered datasets. */
export async function sql(main) {
  const q = state.get("q", EXAMPLES[0]);
  const out = el("div", { id: "result" });
  const area = el("textarea", { id: "query", value: q });
  main.replaceChildren(
    el("p", { class: "muted", text: "Read-only SQL (DuckDB): experiments, runs, params, tags, metrics, latest_metrics, checkpoints, datasets, run_datasets and <dataset>_proteins / _residues / _edges / _splits." }),
    area,
    el("div", { class: "bar" },
      el("button", { id: "run", onclick: () => state.set({ q: area.value }) }, "run"),
      el("select", { "aria-label": "examples", onchange: (e) => { area.value = e.target.value; } },
        el("option", { text: "examples…", value: q }), EXAMPLES.map((x) => el("option", { value: x, text: x.slice(0, 90) })))),
    out,
  );
  if (!state.get("q")) return;
  try {
    const r = await api("/api/sql", { query: q, max_rows: 10000 });
    const cols = r.columns.map((c) => c.name);
    out.replaceChildren(
      el("div", { class: "bar" },
        el("span", { text: `${r.rows.length} rows${r.truncated ? " (truncated)" : ""}` }),
        el("button", { id: "csv", onclick: () => download("query.csv", csv(cols, r.rows), "text/csv") }, "CSV"),
        el("a", { id: "parquet", href: "#", onclick: async (e) => {
          e.preventDefault();
          const resp = await fetch("/api/sql", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ query: q, format: "parquet" }) });
          if (!resp.ok) { out.append(el("p", { class: "error", text: (await resp.json()).message })); return; }
          const url = URL.createObjectURL(await resp.blob());
          const a = el("a", { href: url, download: "query.parquet" });
          document.body.append(a); a.click(); a.remove();
        } }, "Parquet")),
      // registered datasets the server left out of the query, each with why
      (r.warnings || []).map((w) => el("p", { class: "muted warning", text: w })),
      plainTable(cols, r.rows, "rows"),
    );
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", id: "sql-error", text: e.message }));
  }
}
