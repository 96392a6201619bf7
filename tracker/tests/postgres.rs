//! The tracker on PostgreSQL behaves as on SQLite, against a real PostgreSQL (Debian's, started
//! by scripts/postgres-cluster):
//! - its migrations (`migrations/postgres/`, applied by `Store::open`) are the twin of the SQLite
//!   ones: the same versions, tables, columns in the same order, types that map one to one
//!   (INTEGER → bigint, TEXT → text, REAL → double precision), NOT NULL columns, primary keys and
//!   named indexes;
//! - the same script of API calls (MLflow's and fusionprot's routes, errors, filters, orders,
//!   pages, SQL) gets the same answers from both, on a database whose default collation is not
//!   byte order;
//! - the readers cannot write on either.
//!
//! Skipped, saying so, only where PostgreSQL is not installed or the tests do not run as root.

#[path = "pg/mod.rs"]
mod pg;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fusionprot_tracker::store::{Durability, Store};
use pg::Pg;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn root() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("..")
}

fn versions(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("migrations")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.ends_with(".sql").then_some(name)
        })
        .collect();
    v.sort();
    v
}

/// table → [(column, type, not null)], table → primary key columns, and index names.
type Schema = (
    BTreeMap<String, Vec<(String, String, bool)>>,
    BTreeMap<String, Vec<String>>,
    Vec<String>,
);

fn sqlite_schema(db: &Path) -> Schema {
    runtime().block_on(async {
        let path = db.display().to_string();
        Store::open(&path, Durability::Normal).await.expect("store");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}"))
            .await
            .expect("pool");
        let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT m.name, p.name, upper(p.type), p.\"notnull\", p.pk FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE '\\_%' ESCAPE '\\' \
             AND m.name NOT LIKE 'sqlite%' ORDER BY m.name, p.cid",
        )
        .fetch_all(&pool)
        .await
        .expect("columns");
        let mut columns: BTreeMap<String, Vec<(String, String, bool)>> = BTreeMap::new();
        let mut keys: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
        for (table, column, ty, notnull, pk) in rows {
            let ty = match ty.as_str() {
                "INTEGER" => "bigint",
                "TEXT" => "text",
                "REAL" => "double precision",
                other => panic!("{table}.{column}: type {other} has no PostgreSQL twin"),
            };
            // A primary key column is never NULL in either (SQLite's pragma says 0 for them).
            columns
                .entry(table.clone())
                .or_default()
                .push((column.clone(), ty.to_owned(), notnull == 1 || pk > 0));
            if pk > 0 {
                keys.entry(table).or_default().push((pk, column));
            }
        }
        let keys = keys
            .into_iter()
            .map(|(t, mut v)| {
                v.sort();
                (t, v.into_iter().map(|(_, c)| c).collect())
            })
            .collect();
        let mut indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
        )
        .fetch_all(&pool)
        .await
        .expect("indexes");
        indexes.sort();
        (columns, keys, indexes)
    })
}

fn postgres_schema(pg: &Pg, db: &str) -> Schema {
    let mut columns: BTreeMap<String, Vec<(String, String, bool)>> = BTreeMap::new();
    for line in pg
        .psql(
            db,
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name NOT LIKE '\\_%' ORDER BY table_name, ordinal_position",
        )
        .lines()
    {
        let f: Vec<&str> = line.split('|').collect();
        columns
            .entry(f[0].to_owned())
            .or_default()
            .push((f[1].to_owned(), f[2].to_owned(), f[3] == "NO"));
    }
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in pg
        .psql(
            db,
            "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc \
                 JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name) \
                 WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public' AND tc.table_name NOT LIKE '\\_%' \
                 ORDER BY tc.table_name, kcu.ordinal_position",
        )
        .lines()
    {
        let f: Vec<&str> = line.split('|').collect();
        keys.entry(f[0].to_owned()).or_default().push(f[1].to_owned());
    }
    let mut indexes: Vec<String> = pg
        .psql(
            db,
            "SELECT indexname FROM pg_indexes i WHERE schemaname = 'public' \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        )
        .lines()
        .map(str::to_owned)
        .collect();
    indexes.sort();
    (columns, keys, indexes)
}

#[test]
fn the_postgres_migrations_are_the_twin_of_the_sqlite_ones() {
    let sqlite_dir = root().join("migrations");
    let pg_dir = sqlite_dir.join("postgres");
    assert_eq!(
        versions(&sqlite_dir),
        versions(&pg_dir),
        "migration versions"
    );
    let Some(pg) = Pg::start("the_postgres_migrations_are_the_twin_of_the_sqlite_ones") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // the schema Store::open builds on PostgreSQL (sqlx's migrator over migrations/postgres)
    let url = pg.database("twin");
    runtime().block_on(async {
        Store::open(&url, Durability::Normal)
            .await
            .expect("store on PostgreSQL");
    });
    let applied = pg.psql(
        "twin",
        "SELECT version, description FROM _sqlx_migrations ORDER BY version",
    );
    // every migration file, by version and description, the first two named as they shipped
    let want: Vec<String> = fusionprot_tracker::migrate::POSTGRES_MIGRATIONS
        .iter()
        .map(|(v, d, _)| format!("{v}|{d}"))
        .collect();
    assert!(
        applied.starts_with("1|tracking\n2|runs_search_order"),
        "{applied}"
    );
    assert_eq!(applied, want.join("\n"));
    let pg_schema = postgres_schema(&pg, "twin");
    let lite = sqlite_schema(&dir.path().join("t.db"));
    assert_eq!(
        pg_schema.0.keys().collect::<Vec<_>>(),
        lite.0.keys().collect::<Vec<_>>(),
        "tables"
    );
    for (table, cols) in &lite.0 {
        assert_eq!(&pg_schema.0[table], cols, "columns of {table}");
    }
    assert_eq!(pg_schema.1, lite.1, "primary keys");
    assert_eq!(pg_schema.2, lite.2, "indexes");
    assert!(lite.0.len() >= 10, "{:?}", lite.0.keys());
}

mod same_answers {
    use std::path::Path;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use fusionprot_tracker::api::{AppState, SqlGate, router};
    use fusionprot_tracker::store::{Durability, Store};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    struct Api {
        app: axum::Router,
        store: Store,
        log: Vec<Value>,
        runs: Vec<String>,
    }

    impl Api {
        fn new(store: Store, dir: &Path) -> Api {
            let guard = fusionprot_tracker::server::guard_for(
                "127.0.0.1:5000".parse().expect("addr"),
                None,
            );
            let app = router(AppState {
                store: store.clone(),
                guard: Arc::new(guard),
                artifacts: dir.join("artifacts"),
                max_artifact_bytes: 1 << 20,
                data_root: None,
                sql_gate: SqlGate::default(),
                shutdown: Default::default(),
            });
            Api {
                app,
                store,
                log: Vec::new(),
                runs: Vec::new(),
            }
        }

        /// One request; its status and body join the log, and the body is returned.
        async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> Value {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("host", "127.0.0.1:5000")
                .header("content-type", "application/json")
                .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
                .expect("request");
            let resp = self.app.clone().oneshot(req).await.expect("response");
            let status = resp.status().as_u16();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
                .await
                .expect("body");
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            self.log.push(
                json!({ "call": format!("{method} {path}"), "status": status, "body": body }),
            );
            body
        }

        async fn post(&mut self, path: &str, body: Value) -> Value {
            self.call("POST", &format!("/api/2.0/mlflow/{path}"), Some(body))
                .await
        }

        async fn get(&mut self, path: &str) -> Value {
            self.call("GET", &format!("/api/2.0/mlflow/{path}"), None)
                .await
        }

        /// Follows `next_page_token`s of a search to the end.
        async fn pages(&mut self, path: &str, mut body: Value) {
            for _ in 0..20 {
                let page = self.post(path, body.clone()).await;
                match page.get("next_page_token").and_then(Value::as_str) {
                    Some(t) => body["page_token"] = json!(t),
                    None => return,
                }
            }
            panic!("{path}: more than 20 pages");
        }
    }

    /// Every route the tracker has, in one script: MLflow's experiments, runs, metrics, params,
    /// tags, filters (LIKE / ILIKE / IN / numeric / escapes), orders (NULL and NaN last, text
    /// by code point), pages, lifecycle, errors; fusionprot's datasets and checkpoints; SQL.
    async fn script(api: &mut Api) {
        let mut exps = Vec::new();
        for name in ["b-exp", "A-exp", "_exp", "a-exp", "é-exp"] {
            let r = api
                .post(
                    "experiments/create",
                    json!({ "name": name, "tags": [{ "key": "team", "value": name.to_uppercase() }] }),
                )
                .await;
            exps.push(r["experiment_id"].as_str().expect("id").to_owned());
        }
        api.post("experiments/create", json!({ "name": "a-exp" }))
            .await;
        api.post("experiments/search", json!({ "order_by": ["name ASC"] }))
            .await;
        api.post("experiments/search", json!({ "order_by": ["name DESC"] }))
            .await;
        for filter in [
            "name LIKE 'a%'",
            "name ILIKE 'a%'",
            "name LIKE '\\_%'",
            "tags.team = 'B-EXP'",
            "name != 'b-exp'",
        ] {
            api.post(
                "experiments/search",
                json!({ "filter": filter, "order_by": ["name"] }),
            )
            .await;
        }
        api.pages(
            "experiments/search",
            json!({ "max_results": 2, "order_by": ["name"] }),
        )
        .await;
        api.get("experiments/get-by-name?experiment_name=A-exp")
            .await;
        api.get(&format!("experiments/get?experiment_id={}", exps[0]))
            .await;
        api.get("experiments/get?experiment_id=999").await;

        let e = exps[0].clone();
        let tags = ["Abc", "abc", "ABd", "x_y", "%", "ab"];
        let lrs = ["0.1", "0.01", "0.1", "1e-3", "0.1", "0.2"];
        let accs = [
            json!(0.5),
            json!("NaN"),
            json!("Infinity"),
            json!(0.9),
            json!("-Infinity"),
        ];
        for i in 0..6 {
            let r = api
                .post(
                    "runs/create",
                    json!({ "experiment_id": e, "run_name": format!("r{i}"), "start_time": 1000 + i,
                            "tags": [{ "key": "t", "value": tags[i] }] }),
                )
                .await;
            api.runs.push(
                r["run"]["info"]["run_id"]
                    .as_str()
                    .expect("run id")
                    .to_owned(),
            );
            let run = api.runs[i].clone();
            // run 5 logs no acc: missing values sort last
            let metrics: Vec<Value> = accs
                .get(i)
                .map(|a| vec![json!({ "key": "acc", "value": a, "timestamp": 7, "step": 1 })])
                .unwrap_or_default();
            api.post(
                "runs/log-batch",
                json!({ "run_id": run, "metrics": metrics,
                        "params": [{ "key": "lr", "value": lrs[i] }, { "key": "model", "value": format!("m{}", i % 2) }],
                        "tags": [{ "key": "seed", "value": (i % 3).to_string() }] }),
            )
            .await;
        }
        let r0 = api.runs[0].clone();
        // history: out of order, repeated, two points at one step
        let points: Vec<Value> = (0..40)
            .map(|k| json!({ "key": "loss", "value": 1.0 / f64::from(k % 25 + 1), "timestamp": 100 + k, "step": (k * 7) % 25 }))
            .collect();
        api.post("runs/log-batch", json!({ "run_id": r0, "metrics": points }))
            .await;
        api.post(
            "runs/log-batch",
            json!({ "run_id": r0, "metrics": points[..5] }),
        )
        .await;
        api.post(
            "runs/log-batch",
            json!({ "run_id": r0, "params": [{ "key": "lr", "value": "0.5" }] }),
        )
        .await;
        api.post(
            "runs/log-metric",
            json!({ "run_id": r0, "key": "acc", "value": 0.1, "timestamp": 1, "step": 0 }),
        )
        .await;
        api.post(
            "runs/log-parameter",
            json!({ "run_id": r0, "key": "extra", "value": "yes" }),
        )
        .await;
        api.post(
            "runs/set-tag",
            json!({ "run_id": r0, "key": "mlflow.runName", "value": "renamed" }),
        )
        .await;
        api.pages("metrics/get-history", json!({})).await;
        for page in [
            format!("metrics/get-history?run_id={r0}&metric_key=loss"),
            format!("metrics/get-history?run_id={r0}&metric_key=loss&max_results=15"),
        ] {
            api.get(&page).await;
        }
        let search = |filter: &str, order: &[&str]| json!({ "experiment_ids": [e], "filter": filter, "order_by": order });
        for (filter, order) in [
            ("", &[][..]),
            ("metrics.acc > 0.4", &["metrics.acc DESC"][..]),
            ("", &["metrics.acc ASC"][..]),
            ("", &["metrics.acc DESC"][..]),
            (
                "params.lr = '0.1'",
                &["params.lr ASC", "attributes.run_name DESC"][..],
            ),
            ("params.model IN ('m0')", &["params.lr DESC"][..]),
            ("tags.t LIKE 'A%'", &[][..]),
            ("tags.t ILIKE 'a%'", &["tags.t"][..]),
            ("tags.t LIKE '%\\_%'", &[][..]),
            ("tags.t LIKE '\\%'", &[][..]),
            ("", &["tags.t ASC"][..]),
            ("", &["tags.t DESC"][..]),
            (
                "attributes.run_name LIKE 'r%'",
                &["attributes.run_name"][..],
            ),
            (
                "attributes.status = 'RUNNING' AND attributes.start_time >= 1002",
                &["attributes.start_time"][..],
            ),
            ("tags.seed != '0'", &["params.model", "metrics.acc"][..]),
        ] {
            api.post("runs/search", search(filter, order)).await;
        }
        api.pages(
            "runs/search",
            json!({ "experiment_ids": [e], "max_results": 2, "order_by": ["tags.t"] }),
        )
        .await;
        api.post("runs/search", search("metrics.acc LIKE 'x'", &[]))
            .await;
        api.post("runs/search", search("", &["attributes.nope"]))
            .await;

        let (r1, r2) = (api.runs[1].clone(), api.runs[2].clone());
        api.post(
            "runs/update",
            json!({ "run_id": r1, "status": "FINISHED", "end_time": 5000 }),
        )
        .await;
        api.post("runs/update", json!({ "run_id": r1, "status": "BOGUS" }))
            .await;
        api.post("runs/delete", json!({ "run_id": r2 })).await;
        api.post(
            "runs/log-batch",
            json!({ "run_id": r2, "params": [{ "key": "k", "value": "v" }] }),
        )
        .await;
        api.post(
            "runs/search",
            json!({ "experiment_ids": [e], "run_view_type": "DELETED_ONLY" }),
        )
        .await;
        api.post("runs/restore", json!({ "run_id": r2 })).await;
        api.post("runs/delete-tag", json!({ "run_id": r2, "key": "t" }))
            .await;
        api.post("runs/delete-tag", json!({ "run_id": r2, "key": "t" }))
            .await;
        api.post(
            "experiments/set-experiment-tag",
            json!({ "experiment_id": e, "key": "note", "value": "first" }),
        )
        .await;
        api.post(
            "experiments/set-experiment-tag",
            json!({ "experiment_id": e, "key": "note", "value": "second" }),
        )
        .await;
        api.post(
            "experiments/update",
            json!({ "experiment_id": e, "new_name": "A-exp" }),
        )
        .await;
        api.post(
            "experiments/update",
            json!({ "experiment_id": e, "new_name": "b-renamed" }),
        )
        .await;
        // an experiment deleted with its run, then restored
        let other = exps[1].clone();
        let r = api
            .post(
                "runs/create",
                json!({ "experiment_id": other, "run_name": "lonely", "start_time": 1 }),
            )
            .await;
        let lonely = r["run"]["info"]["run_id"].as_str().expect("id").to_owned();
        api.runs.push(lonely.clone());
        api.post("experiments/delete", json!({ "experiment_id": other }))
            .await;
        api.get(&format!("runs/get?run_id={lonely}")).await;
        api.post(
            "runs/create",
            json!({ "experiment_id": other, "run_name": "refused" }),
        )
        .await;
        api.post(
            "experiments/search",
            json!({ "view_type": "ALL", "order_by": ["name"] }),
        )
        .await;
        api.post("experiments/restore", json!({ "experiment_id": other }))
            .await;
        api.get(&format!("runs/get?run_id={lonely}")).await;
        api.post("experiments/delete", json!({ "experiment_id": "0" }))
            .await;

        // fusionprot's own routes
        let manifest = json!({ "dataset_schema_version": 1, "tables": { "residues": { "rows": 10 } },
                               "splits": { "definition": "family", "max_identity": 0.3 } });
        let ds = api
            .call(
                "POST",
                "/api/fusionprot/datasets/register",
                Some(json!({ "name": "ec-tiny", "manifest": manifest })),
            )
            .await;
        api.call(
            "POST",
            "/api/fusionprot/datasets/register",
            Some(json!({ "name": "ec-tiny-again", "manifest": manifest })),
        )
        .await;
        api.call("GET", "/api/fusionprot/datasets/list", None).await;
        let ds_id = ds["dataset_id"].as_str().expect("dataset id").to_owned();
        for context in ["train", "valid", "train"] {
            api.call(
                "POST",
                "/api/fusionprot/runs/link-dataset",
                Some(json!({ "run_id": r0, "dataset_id": ds_id, "context": context })),
            )
            .await;
        }
        for (step, best) in [(10, true), (20, false), (30, true)] {
            api.call(
                "POST",
                "/api/fusionprot/checkpoints/log",
                Some(json!({ "run_id": r0, "step": step, "path": format!("/ck/{step}.ot"),
                             "sha256": "AB".repeat(32), "metrics": { "fmax": 0.5 }, "is_best": best })),
            )
            .await;
        }
        api.call(
            "GET",
            &format!("/api/fusionprot/checkpoints/list?run_id={r0}"),
            None,
        )
        .await;
        for sql in [
            "SELECT r.run_name, m.key, m.value, m.is_nan, m.step FROM runs r JOIN latest_metrics m USING (run_uuid) ORDER BY 1, 2",
            "SELECT key, count(*) AS n, min(value) AS lo, max(value) AS hi FROM metrics GROUP BY key ORDER BY key",
            "SELECT e.name, count(r.run_uuid) AS runs FROM experiments e LEFT JOIN runs r USING (experiment_id) GROUP BY e.name ORDER BY e.name",
            "SELECT step, is_best FROM checkpoints ORDER BY step",
            "SELECT context FROM run_datasets ORDER BY context",
            "DELETE FROM runs",
        ] {
            api.call("POST", "/api/sql", Some(json!({ "query": sql })))
                .await;
        }
        // the dashboard's reads
        for body in [
            json!({ "experiment_ids": [e], "columns": ["metrics.acc:best", "metrics.acc:min", "metrics.loss:best", "metrics.loss", "params.lr", "tags.t"],
                    "order_by": ["tags.t"], "offset": 1, "limit": 4 }),
            json!({ "experiment_ids": [e], "filter": "params.model = 'm0' OR (tags.seed = '2' AND params.lr LIKE '0.%')", "columns": ["metrics.acc"] }),
        ] {
            api.call("POST", "/api/fusionprot/dashboard/runs", Some(body))
                .await;
        }
        for group_by in ["all-but:seed", "params.model,tags.seed", "dataset"] {
            api.call(
                "POST",
                "/api/fusionprot/dashboard/groups",
                Some(json!({ "experiment_ids": [e], "group_by": group_by, "columns": ["metrics.acc", "metrics.loss:min"] })),
            )
            .await;
        }
        api.call(
            "GET",
            &format!("/api/fusionprot/dashboard/keys?experiment_ids={e},{other}"),
            None,
        )
        .await;
        api.call(
            "GET",
            &format!("/api/fusionprot/dashboard/series?run_id={r0}&key=loss&points=6&select=acc"),
            None,
        )
        .await;
        api.get(&format!("runs/get?run_id={r0}")).await;
        // the round-2 reads: a long curve through the cache (first read, extended by an append,
        // read whole again after a point before its last), groups against a baseline with both
        // tests, MLflow's bulk reads
        for lo in (0..25_000i64).step_by(1000) {
            let pts: Vec<Value> = (lo..lo + 1000)
                .map(|s| json!({ "key": "long", "value": ((s * 37) % 101) as f64 / 7.0, "step": s, "timestamp": s }))
                .collect();
            api.post("runs/log-batch", json!({ "run_id": r0, "metrics": pts }))
                .await;
        }
        let series = format!("/api/fusionprot/dashboard/series?run_id={r0}&key=long&points=50");
        api.call("GET", &series, None).await;
        api.post(
            "runs/log-batch",
            json!({ "run_id": r0, "metrics": [{ "key": "long", "value": 99.0, "step": 25_000, "timestamp": 25_000 }] }),
        )
        .await;
        api.call("GET", &series, None).await;
        api.post(
            "runs/log-metric",
            json!({ "run_id": r0, "key": "long", "value": -99.0, "step": 7, "timestamp": 1 }),
        )
        .await;
        api.call("GET", &series, None).await;
        // the warm-up `serve` runs at start, on this database (the curve is cached here already)
        let fresh = api.store.clone();
        let warmed = fresh.warm_curves(1_000_000).await.expect("warm");
        api.log
            .push(json!({ "call": "warm_curves", "status": 200, "body": [warmed.0, warmed.1] }));
        for test in ["welch", "paired"] {
            api.call(
                "POST",
                "/api/fusionprot/dashboard/groups",
                Some(json!({ "experiment_ids": [e], "group_by": "params.model", "columns": ["metrics.acc"],
                             "baseline": [["params.model", "m0"]], "test": test })),
            )
            .await;
        }
        api.call(
            "GET",
            &format!("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids={r0}&run_ids={r1}&metric_key=long&max_results=9"),
            None,
        )
        .await;
        api.call(
            "GET",
            &format!("/ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id={r0}&run_id={r1}&metric_key=acc"),
            None,
        )
        .await;
        api.call(
            "POST",
            "/ajax-api/2.0/mlflow/experiments/search-datasets",
            Some(json!({ "experiment_ids": [e] })),
        )
        .await;
    }

    /// The log with run ids numbered by creation and server clocks blanked.
    fn normalised(api: &Api) -> Vec<Value> {
        let mut text = serde_json::to_string(&api.log).expect("json");
        for (i, id) in api.runs.iter().enumerate() {
            text = text.replace(id.as_str(), &format!("RUN{i}"));
        }
        let mut log: Vec<Value> = serde_json::from_str(&text).expect("json");
        fn blank(v: &mut Value) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m.iter_mut() {
                        if [
                            "creation_time",
                            "last_update_time",
                            "created_time",
                            "deleted_time",
                        ]
                        .contains(&k.as_str())
                            && x.is_number()
                        {
                            *x = json!("T");
                        } else {
                            blank(x);
                        }
                    }
                }
                Value::Array(a) => a.iter_mut().for_each(blank),
                _ => {}
            }
        }
        log.iter_mut().for_each(blank);
        // MLflow's bulk reads list runs in the order of their ids, which are random and differ
        // between the two databases: compare each run's points in the order of its number (the
        // order by id itself is checked against MLflow in cli/tests/peer/mlflow_bulk.py).
        for entry in &mut log {
            if entry["call"]
                .as_str()
                .is_some_and(|c| c.contains("get-history-bulk"))
                && let Some(points) = entry["body"]["metrics"].as_array_mut()
            {
                points.sort_by_key(|p| p["run_id"].as_str().unwrap_or_default().to_owned());
            }
        }
        log
    }

    #[test]
    fn the_same_script_gets_the_same_answers_from_sqlite_and_postgres() {
        let Some(pg) =
            super::Pg::start("the_same_script_gets_the_same_answers_from_sqlite_and_postgres")
        else {
            return;
        };
        // a database whose default collation sorts "a" before "B" (ICU, en-US): the store must
        // still order text by code point, as SQLite does
        let icu = pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_collation WHERE collprovider = 'i' AND collname = 'en-US-x-icu'",
        );
        if icu == "1" {
            pg.psql(
                "postgres",
                "CREATE DATABASE same TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'",
            );
        } else {
            eprintln!(
                "no ICU collations in this PostgreSQL: the database sorts by code point anyway"
            );
            pg.psql("postgres", "CREATE DATABASE same");
        }
        let url = pg.url("same");
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = super::runtime();
        let (lite, post) = rt.block_on(async {
            let mut lite = Api::new(
                Store::open(
                    &dir.path().join("s.db").display().to_string(),
                    Durability::Normal,
                )
                .await
                .expect("sqlite"),
                &dir.path().join("s"),
            );
            script(&mut lite).await;
            let mut post = Api::new(
                Store::open(&url, Durability::Normal)
                    .await
                    .expect("postgres"),
                &dir.path().join("p"),
            );
            script(&mut post).await;
            (normalised(&lite), normalised(&post))
        });
        assert_eq!(lite.len(), post.len());
        let mut errors = 0;
        for (a, b) in lite.iter().zip(&post) {
            assert_eq!(a["call"], b["call"]);
            if a != b {
                eprintln!("{}\n  sqlite:   {a}\n  postgres: {b}", a["call"]);
                errors += 1;
            }
        }
        assert_eq!(errors, 0, "answers that differ (above)");
        // the script exercised what it claims: errors, NaN, ordering, SQL, pages
        let text = serde_json::to_string(&lite).expect("json");
        for needle in [
            "RESOURCE_ALREADY_EXISTS",
            "INVALID_PARAMETER_VALUE",
            "RESOURCE_DOES_NOT_EXIST",
            "\"NaN\"",
            "next_page_token",
            "query refused",
            "ec-tiny-again",
        ] {
            assert!(text.contains(needle), "the script never produced {needle}");
        }
        let statuses: Vec<u64> = lite.iter().filter_map(|c| c["status"].as_u64()).collect();
        assert!(
            statuses.iter().filter(|s| **s == 200).count() > 60,
            "{statuses:?}"
        );
    }
}

#[test]
fn the_readers_cannot_write_on_either_database() {
    let Some(pg) = Pg::start("the_readers_cannot_write_on_either_database") else {
        return;
    };
    let url = pg.database("readonly");
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = dir.path().join("r.db").display().to_string();
    runtime().block_on(async {
        for location in [sqlite.as_str(), url.as_str()] {
            let store = Store::open(location, Durability::Normal)
                .await
                .expect("store");
            for sql in [
                "DELETE FROM experiments",
                "UPDATE experiments SET name = 'x'",
                "INSERT INTO experiments (name, artifact_location, creation_time, last_update_time) VALUES ('w', '', 1, 1)",
                "CREATE TABLE intruder (x INTEGER)",
            ] {
                let r = sqlx::query(sql).execute(store.reader()).await;
                assert!(r.is_err(), "{location}: the reader ran {sql}");
            }
            let names: Vec<String> = sqlx::query_scalar("SELECT name FROM experiments")
                .fetch_all(store.reader())
                .await
                .expect("read");
            assert_eq!(names, ["Default"], "{location}");
        }
    });
}

#[test]
fn a_newer_postgres_database_is_refused_and_left_untouched() {
    let Some(pg) = Pg::start("a_newer_postgres_database_is_refused_and_left_untouched") else {
        return;
    };
    let url = pg.database("newer");
    let rt = runtime();
    rt.block_on(async {
        Store::open(&url, Durability::Normal).await.expect("store");
    });
    pg.psql(
        "newer",
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'from the future', true, '\\x00', 1)",
    );
    let before = pg.psql("newer", "SELECT count(*) FROM experiments");
    let e = rt
        .block_on(Store::open(&url, Durability::Normal))
        .expect_err("a newer database");
    assert!(e.to_string().contains("schema version 99"), "{e}");
    assert_eq!(pg.psql("newer", "SELECT count(*) FROM experiments"), before);
    assert_eq!(
        pg.psql("newer", "SELECT max(version) FROM _sqlx_migrations"),
        "99"
    );
}
