//! The dashboard's reads against what SQL says of the same runs: a page of the runs table with
//! chosen summaries per column, the filter and order of `runs/search`, groups of "all but the
//! seed" with mean ± sd (n − 1) and n checked against DuckDB's `avg` / `stddev_samp`, downsampled
//! curves that keep the ends, the extremes and the best-valid step, ETag (304) and gzip.

use std::io::Read;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use fusionprot_tracker::api::{AppState, SqlGate, router};
use fusionprot_tracker::{Durability, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Resp {
    status: u16,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:5000")
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 26)
        .await
        .expect("body")
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

async fn post(app: &axum::Router, path: &str, body: Value) -> Value {
    let r = call(app, "POST", path, Some(body), &[]).await;
    assert_eq!(
        r.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// Rows of a SQL query, as JSON arrays.
async fn sql(app: &axum::Router, query: &str) -> Vec<Value> {
    let r = post(app, "/api/sql", json!({ "query": query })).await;
    r["rows"].as_array().expect("rows").clone()
}

/// 2 models × 2 learning rates × 3 seeds; valid/test fmax per epoch, a 3,000-step train loss.
async fn fill(app: &axum::Router) -> (String, Vec<String>) {
    let exp = post(
        app,
        "/api/2.0/mlflow/experiments/create",
        json!({ "name": "ec" }),
    )
    .await["experiment_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut runs = Vec::new();
    let mut k = 0u32;
    for model in ["fusionprot", "esm2"] {
        for lr in ["1e-4", "5e-5"] {
            for seed in 1..=3 {
                k += 1;
                let r = post(
                    app,
                    "/api/2.0/mlflow/runs/create",
                    json!({ "experiment_id": exp, "run_name": format!("{model}-{lr}-{seed}"), "start_time": 1000 + k }),
                )
                .await;
                let id = r["run"]["info"]["run_id"].as_str().expect("run").to_owned();
                let base = if model == "fusionprot" { 0.6 } else { 0.5 }
                    + f64::from(seed) * 0.01
                    + if lr == "1e-4" { 0.02 } else { 0.0 };
                let mut metrics = Vec::new();
                for epoch in 0..10i64 {
                    // valid peaks at epoch 6 + seed % 3; test follows with noise
                    let peak = 6 + i64::from(seed % 3);
                    let v = base - 0.01 * ((epoch - peak) as f64).abs();
                    metrics.push(json!({ "key": "valid/fmax", "value": v, "step": epoch, "timestamp": epoch }));
                    metrics.push(json!({ "key": "test/fmax", "value": v - 0.02 + 0.001 * epoch as f64, "step": epoch, "timestamp": epoch }));
                }
                post(
                    app,
                    "/api/2.0/mlflow/runs/log-batch",
                    json!({ "run_id": id, "metrics": metrics,
                            "params": [{ "key": "model", "value": model }, { "key": "lr", "value": lr }, { "key": "seed", "value": seed.to_string() }] }),
                )
                .await;
                for chunk in 0..3i64 {
                    let pts: Vec<Value> = (0..1000i64)
                        .map(|i| {
                            let step = chunk * 1000 + i;
                            let spike = if step == 1234 { 50.0 } else { 0.0 };
                            json!({ "key": "train/loss", "value": 2.0 / (1.0 + step as f64 / 100.0) + spike + f64::from(k) * 1e-3, "step": step, "timestamp": step })
                        })
                        .collect();
                    post(
                        app,
                        "/api/2.0/mlflow/runs/log-batch",
                        json!({ "run_id": id, "metrics": pts }),
                    )
                    .await;
                }
                runs.push(id);
            }
        }
    }
    (exp, runs)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_reads_agree_with_sql() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        &dir.path().join("d.db").display().to_string(),
        Durability::Normal,
    )
    .await
    .expect("store");
    let guard =
        fusionprot_tracker::server::guard_for("127.0.0.1:5000".parse().expect("addr"), None);
    let app = router(AppState {
        store,
        guard: Arc::new(guard),
        artifacts: dir.path().join("artifacts"),
        max_artifact_bytes: 1 << 20,
        data_root: None,
        sql_gate: SqlGate::default(),
        shutdown: Default::default(),
    });
    let (exp, runs) = fill(&app).await;
    assert_eq!(runs.len(), 12);

    // A page of the table: the order and filter of runs/search, summaries as SQL computes them.
    let columns = [
        "metrics.valid/fmax:best",
        "metrics.train/loss:best",
        "metrics.train/loss:max",
        "metrics.test/fmax",
        "params.model",
        "tags.mlflow.runName",
    ];
    let page = post(
        &app,
        "/api/fusionprot/dashboard/runs",
        json!({ "experiment_ids": [exp], "filter": "params.lr = '1e-4'", "order_by": ["metrics.test/fmax DESC"],
                "columns": columns, "offset": 2, "limit": 3 }),
    )
    .await;
    assert_eq!(page["total"], 6, "{page}");
    let search = post(
        &app,
        "/api/2.0/mlflow/runs/search",
        json!({ "experiment_ids": [exp], "filter": "params.lr = '1e-4'", "order_by": ["metrics.test/fmax DESC"] }),
    )
    .await;
    let order: Vec<&str> = search["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["info"]["run_id"].as_str().expect("id"))
        .collect();
    let got: Vec<&str> = page["run_id"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id"))
        .collect();
    assert_eq!(got, order[2..5]);
    for (i, id) in got.iter().enumerate() {
        let want = sql(
            &app,
            &format!(
                "SELECT (SELECT max(value) FROM metrics WHERE run_uuid = '{id}' AND key = 'valid/fmax'),
                        (SELECT min(value) FROM metrics WHERE run_uuid = '{id}' AND key = 'train/loss'),
                        (SELECT max(value) FROM metrics WHERE run_uuid = '{id}' AND key = 'train/loss'),
                        (SELECT value FROM latest_metrics WHERE run_uuid = '{id}' AND key = 'test/fmax'),
                        (SELECT value FROM params WHERE run_uuid = '{id}' AND key = 'model'),
                        (SELECT run_name FROM runs WHERE run_uuid = '{id}')"
            ),
        )
        .await;
        for (c, name) in columns.iter().enumerate() {
            assert_eq!(page["columns"][name][i], want[0][c], "{name} of {id}");
        }
    }
    assert!(
        f(&page["columns"]["metrics.train/loss:max"][0]) > 50.0,
        "the spike"
    );

    // The dashboard's filter also takes OR and parentheses (runs/search keeps MLflow's AND only).
    let either = post(
        &app,
        "/api/fusionprot/dashboard/runs",
        json!({ "experiment_ids": [exp], "filter": "(params.model = 'esm2' AND params.seed = '1') OR params.lr = '5e-5'",
                "columns": ["params.model"], "limit": 100 }),
    )
    .await;
    let want = sql(
        &app,
        "SELECT count(*) FROM runs r WHERE (EXISTS (SELECT 1 FROM params p WHERE p.run_uuid = r.run_uuid AND p.key = 'model' AND p.value = 'esm2')
           AND EXISTS (SELECT 1 FROM params p WHERE p.run_uuid = r.run_uuid AND p.key = 'seed' AND p.value = '1'))
           OR EXISTS (SELECT 1 FROM params p WHERE p.run_uuid = r.run_uuid AND p.key = 'lr' AND p.value = '5e-5')",
    )
    .await;
    assert_eq!(either["total"], want[0][0]);
    assert_eq!(either["total"], 7);
    let refused = call(
        &app,
        "POST",
        "/api/2.0/mlflow/runs/search",
        Some(
            json!({ "experiment_ids": [exp], "filter": "params.lr = '5e-5' OR params.seed = '1'" }),
        ),
        &[],
    )
    .await;
    assert_eq!(refused.status, 400, "MLflow's API keeps MLflow's grammar");

    // Groups of all but the seed: mean, sd (n − 1) and n as DuckDB computes them.
    let groups = post(
        &app,
        "/api/fusionprot/dashboard/groups",
        json!({ "experiment_ids": [exp], "group_by": "all-but:seed", "columns": ["metrics.test/fmax", "metrics.valid/fmax:best"] }),
    )
    .await;
    assert_eq!(groups["runs_total"], 12);
    let keys = groups["key"].as_array().expect("keys");
    assert_eq!(keys.len(), 4, "{groups}");
    let want = sql(
        &app,
        "SELECT m.value AS model, l.value AS lr, avg(t.value), stddev_samp(t.value), count(*)
         FROM runs r JOIN params m ON m.run_uuid = r.run_uuid AND m.key = 'model'
         JOIN params l ON l.run_uuid = r.run_uuid AND l.key = 'lr'
         JOIN latest_metrics t ON t.run_uuid = r.run_uuid AND t.key = 'test/fmax'
         GROUP BY 1, 2 ORDER BY 2, 1",
    )
    .await;
    assert_eq!(want.len(), 4);
    for w in &want {
        let g = keys
            .iter()
            .position(|k| {
                k.as_array()
                    .expect("key")
                    .contains(&json!(["params.model", w[0]]))
                    && k.as_array()
                        .expect("key")
                        .contains(&json!(["params.lr", w[1]]))
            })
            .unwrap_or_else(|| panic!("no group {w:?} in {groups}"));
        let col = &groups["columns"]["metrics.test/fmax"];
        assert!((f(&col["mean"][g]) - f(&w[2])).abs() < 1e-12, "mean {w:?}");
        assert!((f(&col["sd"][g]) - f(&w[3])).abs() < 1e-12, "sd {w:?}");
        assert_eq!(col["n"][g], w[4]);
        assert_eq!(groups["runs"][g].as_array().map(Vec::len), Some(3));
    }

    // A curve cut to 100 points keeps the ends, the spike and the minimum; test/fmax keeps the
    // step where valid/fmax is best.
    let id = &runs[0];
    let s = call(
        &app,
        "GET",
        &format!("/api/fusionprot/dashboard/series?run_id={id}&key=train/loss&points=100"),
        None,
        &[],
    )
    .await;
    assert_eq!(s.status, 200);
    let v = s.json();
    assert_eq!(v["total_points"], 3000);
    let steps: Vec<i64> = v["step"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|x| x.as_i64().expect("step"))
        .collect();
    assert!(steps.len() <= 103 && steps.len() >= 90, "{}", steps.len());
    for must in [0, 1234, 2999] {
        assert!(steps.contains(&must), "{must} missing");
    }
    assert!(steps.windows(2).all(|w| w[0] < w[1]));
    let t = call(
        &app,
        "GET",
        &format!(
            "/api/fusionprot/dashboard/series?run_id={id}&key=test/fmax&points=4&select=valid/fmax"
        ),
        None,
        &[],
    )
    .await
    .json();
    let best = sql(
        &app,
        &format!("SELECT step FROM metrics WHERE run_uuid = '{id}' AND key = 'valid/fmax' ORDER BY value DESC, step LIMIT 1"),
    )
    .await;
    assert_eq!(t["best_step"], best[0][0]);
    assert!(
        t["step"].as_array().expect("steps").contains(&best[0][0]),
        "{t}"
    );

    // ETag: the same read again is 304 with no body; gzip when accepted, the same JSON inside.
    let etag = s.headers["etag"].to_str().expect("etag").to_owned();
    let again = call(
        &app,
        "GET",
        &format!("/api/fusionprot/dashboard/series?run_id={id}&key=train/loss&points=100"),
        None,
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let zipped = call(
        &app,
        "GET",
        &format!("/api/fusionprot/dashboard/series?run_id={id}&key=train/loss&points=100"),
        None,
        &[("accept-encoding", "gzip, br")],
    )
    .await;
    assert_eq!(zipped.headers["content-encoding"], "gzip");
    assert!(zipped.body.len() < s.body.len());
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&zipped.body[..])
        .read_to_end(&mut plain)
        .expect("gunzip");
    assert_eq!(plain, s.body);

    // Keys for the column picker; refusals name what is wrong.
    let k = call(
        &app,
        "GET",
        &format!("/api/fusionprot/dashboard/keys?experiment_ids={exp}"),
        None,
        &[],
    )
    .await
    .json();
    assert_eq!(
        k["metrics"],
        json!(["test/fmax", "train/loss", "valid/fmax"])
    );
    assert_eq!(k["params"], json!(["lr", "model", "seed"]));
    let bad = call(
        &app,
        "POST",
        "/api/fusionprot/dashboard/runs",
        Some(json!({ "experiment_ids": [exp], "columns": ["metrics.x:median"] })),
        &[],
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(String::from_utf8_lossy(&bad.body).contains("metrics.x:median"));
    let bad = call(
        &app,
        "POST",
        "/api/fusionprot/dashboard/groups",
        Some(json!({ "experiment_ids": [exp], "group_by": "metrics.x" })),
        &[],
    )
    .await;
    assert_eq!(bad.status, 400);
    let bad = call(
        &app,
        "POST",
        "/api/fusionprot/dashboard/runs",
        Some(json!({ "experiment_ids": [exp], "limit": 100000 })),
        &[],
    )
    .await;
    assert_eq!(bad.status, 400);
}

/// Live views: a write that commits reaches `/api/fusionprot/events` as a notification naming the
/// run, and a burst of writes comes as a few coalesced notifications, not one per write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_writes_are_announced_on_the_event_stream_coalesced() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        &dir.path().join("e.db").display().to_string(),
        Durability::Normal,
    )
    .await
    .expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let guard = fusionprot_tracker::server::guard_for(addr, None);
    let app = router(AppState {
        store: store.clone(),
        guard: Arc::new(guard),
        artifacts: dir.path().join("artifacts"),
        max_artifact_bytes: 1 << 20,
        data_root: None,
        sql_gate: SqlGate::default(),
        shutdown: Default::default(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET /api/fusionprot/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("request");
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    // the response head first
    while !seen.contains("\r\n\r\n") {
        let n = s.read(&mut buf).await.expect("read");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("text/event-stream"), "{seen}");
    let run = store
        .create_run("0", "", "live", None, &[])
        .await
        .expect("run")
        .info
        .run_id;
    for k in 0..50 {
        let batch = fusionprot_tracker::store::Batch {
            metrics: vec![fusionprot_tracker::model::Metric {
                key: "loss".into(),
                value: f64::from(k),
                timestamp: i64::from(k),
                step: i64::from(k),
            }],
            ..Default::default()
        };
        store.log_batch(&run, &batch).await.expect("log");
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut events = String::new();
    while !events.contains(&run) {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .expect("an event within 5 s")
            .expect("read");
        events.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(events.contains("event: runs"), "{events}");
    assert!(events.contains("\"lagged\":false"), "{events}");
    // 51 writes (the run and 50 batches) in well under a second: at most a couple of events
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    if let Ok(Ok(n)) =
        tokio::time::timeout(std::time::Duration::from_millis(200), s.read(&mut buf)).await
    {
        events.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let count = events.matches("event: runs").count();
    assert!(
        (1..=3).contains(&count),
        "{count} events for 51 writes: {events}"
    );
}

/// A run in the default experiment; its id.
async fn new_run(app: &axum::Router) -> String {
    post(
        app,
        "/api/2.0/mlflow/runs/create",
        json!({ "experiment_id": "0" }),
    )
    .await["run"]["info"]["run_id"]
        .as_str()
        .expect("run")
        .to_owned()
}

fn app_on(store: &Store, dir: &std::path::Path) -> axum::Router {
    let guard =
        fusionprot_tracker::server::guard_for("127.0.0.1:5000".parse().expect("addr"), None);
    router(AppState {
        store: store.clone(),
        guard: Arc::new(guard),
        artifacts: dir.join("artifacts"),
        max_artifact_bytes: 1 << 20,
        data_root: None,
        sql_gate: SqlGate::default(),
        shutdown: Default::default(),
    })
}

/// Long curves come from the store's cache of histories: a repeated read is a hit with the same
/// body; points logged after the last are appended; a point logged before it, and a write by
/// another server on the same database, are seen too (the whole history is read again) — always
/// the same answer as a fresh server with no cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_curves_are_cached_and_never_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("c.db").display().to_string();
    let store = Store::open(&db, Durability::Normal).await.expect("store");
    let app = app_on(&store, dir.path());
    let other = app_on(
        &Store::open(&db, Durability::Normal).await.expect("second"),
        dir.path(),
    );
    let run = new_run(&app).await;
    let log = |app: axum::Router, from: i64, to: i64| {
        let run = run.clone();
        async move {
            for lo in (from..to).step_by(1000) {
                let pts: Vec<Value> = (lo..to.min(lo + 1000))
                    .map(|s| json!({ "key": "loss", "value": ((s * 7919) % 1000) as f64, "step": s, "timestamp": s }))
                    .collect();
                post(
                    &app,
                    "/api/2.0/mlflow/runs/log-batch",
                    json!({ "run_id": run, "metrics": pts }),
                )
                .await;
            }
        }
    };
    log(app.clone(), 0, 30_000).await;
    let path = format!("/api/fusionprot/dashboard/series?run_id={run}&key=loss&points=200");
    let read = |app: axum::Router| {
        let path = path.clone();
        async move {
            let r = call(&app, "GET", &path, None, &[]).await;
            assert_eq!(r.status, 200);
            let cache = r.headers["x-fusionprot-cache"]
                .to_str()
                .expect("header")
                .to_owned();
            (r.body, cache)
        }
    };
    // what a server with an empty cache answers
    let fresh = |n: u32| {
        let db = db.clone();
        let dir = dir.path().to_owned();
        let path = path.clone();
        async move {
            let s = Store::open(&db, Durability::Normal).await.expect("fresh");
            let r = call(&app_on(&s, &dir), "GET", &path, None, &[]).await;
            assert_eq!(r.headers["x-fusionprot-cache"], "miss", "read {n}");
            r.body
        }
    };
    let (first, how) = read(app.clone()).await;
    assert_eq!(how, "miss");
    let (again, how) = read(app.clone()).await;
    assert_eq!((how.as_str(), &again), ("hit", &first));
    // the same points again are stored once: nothing changed, still a hit
    log(app.clone(), 0, 2_000).await;
    let (same, how) = read(app.clone()).await;
    assert_eq!((how.as_str(), &same), ("hit", &first));
    log(app.clone(), 30_000, 30_500).await;
    let (more, how) = read(app.clone()).await;
    assert_eq!(how, "extended");
    assert_eq!(more, fresh(1).await);
    assert_eq!(
        serde_json::from_slice::<Value>(&more).expect("json")["total_points"],
        30_500
    );
    // a point before the cached last one, logged by another server on the same database
    post(
        &other,
        "/api/2.0/mlflow/runs/log-metric",
        json!({ "run_id": run, "key": "loss", "value": 1e6, "step": 15_000, "timestamp": 1 }),
    )
    .await;
    let (after, how) = read(app.clone()).await;
    assert_eq!(how, "miss", "the count differs and only appends extend");
    assert_eq!(after, fresh(2).await);
    let v: Value = serde_json::from_slice(&after).expect("json");
    assert_eq!(v["total_points"], 30_501);
    assert!(
        v["value"].as_array().expect("values").contains(&json!(1e6)),
        "the new spike is drawn"
    );
    // an append by the other server is an extension here
    log(other.clone(), 30_500, 31_000).await;
    let (tail, how) = read(app.clone()).await;
    assert_eq!(how, "extended");
    assert_eq!(tail, fresh(3).await);
    // the count the cache trusts is the table's, for batches of one key and of several (with a
    // point sent twice, stored once)
    let mixed: Vec<Value> = ["x", "y", "x", "loss"]
        .iter()
        .map(|k| json!({ "key": k, "value": 1.0, "step": 7, "timestamp": 7 }))
        .collect();
    post(
        &app,
        "/api/2.0/mlflow/runs/log-batch",
        json!({ "run_id": run, "metrics": mixed }),
    )
    .await;
    let counts = sql(
        &app,
        &format!("SELECT l.points, (SELECT count(*) FROM metrics m WHERE m.run_uuid = l.run_uuid AND m.key = l.key) FROM latest_metrics l WHERE l.run_uuid = '{run}' ORDER BY l.key"),
    )
    .await;
    assert_eq!(
        counts,
        vec![json!([31_002, 31_002]), json!([1, 1]), json!([1, 1])]
    );
}

/// What `serve` does at start: the long histories of the latest runs are read into the cache, so
/// the dashboard's first look at one is a hit with a fresh server's answer; a request racing the
/// warm-up gets the same answer; short histories and the budget are respected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_warm_up_reads_long_curves_into_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("w.db").display().to_string();
    let store = Store::open(&db, Durability::Normal).await.expect("store");
    let app = app_on(&store, dir.path());
    let run = new_run(&app).await;
    for lo in (0..25_000).step_by(500) {
        let pts: Vec<Value> = (lo..lo + 500)
            .flat_map(|s| {
                [
                    json!({ "key": "loss", "value": (s % 97) as f64, "step": s, "timestamp": s }),
                    json!({ "key": "short", "value": 1.0, "step": s % 10, "timestamp": 1 }),
                ]
            })
            .collect();
        post(
            &app,
            "/api/2.0/mlflow/runs/log-batch",
            json!({ "run_id": run, "metrics": pts }),
        )
        .await;
    }
    let path = format!("/api/fusionprot/dashboard/series?run_id={run}&key=loss&points=300");
    let cold = {
        let s = Store::open(&db, Durability::Normal).await.expect("cold");
        let r = call(&app_on(&s, dir.path()), "GET", &path, None, &[]).await;
        assert_eq!(r.headers["x-fusionprot-cache"], "miss");
        r.body
    };
    let fresh = Store::open(&db, Durability::Normal).await.expect("fresh");
    assert_eq!(
        fresh.warm_curves(10_000).await.expect("warm"),
        (0, 0),
        "over budget"
    );
    assert_eq!(
        fresh.warm_curves(1_000_000).await.expect("warm"),
        (1, 25_000)
    );
    let r = call(&app_on(&fresh, dir.path()), "GET", &path, None, &[]).await;
    assert_eq!(r.headers["x-fusionprot-cache"], "hit");
    assert_eq!(r.body, cold);
    // a request while the warm-up loads: one whole read, the same answer
    let racing = Store::open(&db, Durability::Normal).await.expect("racing");
    let warm = {
        let s = racing.clone();
        tokio::spawn(async move { s.warm_curves(1_000_000).await })
    };
    let r = call(&app_on(&racing, dir.path()), "GET", &path, None, &[]).await;
    assert_eq!(r.body, cold);
    assert_eq!(warm.await.expect("join").expect("warm"), (1, 25_000));
    let r = call(&app_on(&racing, dir.path()), "GET", &path, None, &[]).await;
    assert_eq!(
        (
            r.headers["x-fusionprot-cache"].to_str().expect("h"),
            &r.body
        ),
        ("hit", &cold)
    );
}
