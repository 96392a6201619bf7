//! Promises under concurrency and misuse: a check-then-write cannot be overtaken by a concurrent
//! delete, `runs/create` validates like every other route, and concurrent SQL is bounded.

#[path = "pg/mod.rs"]
mod pg;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use fusionprot_tracker::api::{AppState, SqlGate, router};
use fusionprot_tracker::{Durability, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn store(dir: &std::path::Path) -> Store {
    Store::open(&dir.join("t.db").display().to_string(), Durability::Normal)
        .await
        .expect("store")
}

fn app(store: Store, dir: &std::path::Path, gate: SqlGate) -> axum::Router {
    let guard =
        fusionprot_tracker::server::guard_for("127.0.0.1:5000".parse().expect("addr"), None);
    router(AppState {
        store,
        guard: Arc::new(guard),
        artifacts: dir.join("artifacts"),
        max_artifact_bytes: 1 << 20,
        data_root: None,
        sql_gate: gate,
        shutdown: Default::default(),
    })
}

async fn post(app: &axum::Router, path: &str, body: Value) -> (u16, Value) {
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header("host", "127.0.0.1:5000")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Deleting an experiment marks its runs deleted. A run created concurrently used to check the
/// experiment on a reader, then insert on the writer: a delete in between left an active run in
/// a deleted experiment. The check now happens inside the write transaction, which holds the
/// database's write lock — across servers too: `other` is a second store on the same database
/// (another server process), and it does the deleting.
async fn no_active_run_in_a_deleted_experiment(store: Store, other: Store) {
    for round in 0..40 {
        let exp = store
            .create_experiment(&format!("e{round}"), None, &[])
            .await
            .expect("experiment");
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (s, exp) = (store.clone(), exp.clone());
            tasks.push(tokio::spawn(async move {
                let _ = s.create_run(&exp, "", &format!("r{i}"), None, &[]).await;
            }));
        }
        let (s, e) = (other.clone(), exp.clone());
        tasks.push(tokio::spawn(async move {
            tokio::task::yield_now().await;
            s.set_experiment_lifecycle(&e, true).await.expect("delete");
        }));
        for t in tasks {
            t.await.expect("task");
        }
        let (runs, _) = store
            .search_runs(
                std::slice::from_ref(&exp),
                None,
                Some("ACTIVE_ONLY"),
                None,
                &[],
                None,
            )
            .await
            .expect("search");
        assert!(
            runs.is_empty(),
            "round {round}: {} active runs in a deleted experiment",
            runs.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_active_run_survives_in_a_deleted_experiment() {
    let dir = tempfile::tempdir().expect("tempdir");
    no_active_run_in_a_deleted_experiment(store(dir.path()).await, store(dir.path()).await).await;
}

/// A run deleted while a tag is deleted, a run updated, or a checkpoint logged: either the write
/// came first, or it is refused; never a write to a run already deleted.
async fn deleted_run_refuses_writes(store: Store) {
    let run = store
        .create_run("0", "", "r", None, &[])
        .await
        .expect("run")
        .info
        .run_id;
    store.set_run_lifecycle(&run, true).await.expect("delete");
    let e = store
        .update_run(&run, Some("FINISHED"), None, None)
        .await
        .expect_err("update of a deleted run");
    assert!(e.to_string().contains("'active' state"), "{e}");
    let e = store
        .delete_tag(&run, "mlflow.runName")
        .await
        .expect_err("delete-tag of a deleted run");
    assert!(e.to_string().contains("'active' state"), "{e}");
    let ck: fusionprot_tracker::registry::CheckpointIn = serde_json::from_value(json!({
        "run_id": run, "step": 1, "path": "/c.safetensors"
    }))
    .expect("checkpoint");
    let e = store
        .log_checkpoint(&ck)
        .await
        .expect_err("checkpoint of a deleted run");
    assert!(e.to_string().contains("'active' state"), "{e}");
    let info = store.get_run(&run).await.expect("run").info;
    assert_eq!(info.status, "RUNNING", "the refused update changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_to_a_deleted_run_are_refused_not_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    deleted_run_refuses_writes(store(dir.path()).await).await;
}

/// The same two promises on PostgreSQL, where the write lock is an advisory lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_promises_hold_on_postgres() {
    let Some(pg) = pg::Pg::start("the_same_promises_hold_on_postgres") else {
        return;
    };
    let open = |url: String| async move {
        Store::open(&url, Durability::Normal)
            .await
            .expect("store on PostgreSQL")
    };
    let race = pg.database("race");
    no_active_run_in_a_deleted_experiment(open(race.clone()).await, open(race).await).await;
    deleted_run_refuses_writes(open(pg.database("deleted")).await).await;
}

#[tokio::test]
async fn create_run_validates_names_and_tags_like_every_other_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(store(dir.path()).await, dir.path(), SqlGate::default());
    let create = "/api/2.0/mlflow/runs/create";
    for (body, why) in [
        (
            json!({"experiment_id": "0", "run_name": "x".repeat(600)}),
            "at most 500",
        ),
        (
            json!({"experiment_id": "0", "tags": [{"key": "../up", "value": "v"}]}),
            "Invalid tag name",
        ),
        (
            json!({"experiment_id": "0", "tags": [{"key": "k", "value": "v".repeat(9000)}]}),
            "the limit is 8000",
        ),
        (
            json!({"experiment_id": "0", "tags": (0..101).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect::<Vec<_>>()}),
            "at most 100 tags",
        ),
    ] {
        let (status, v) = post(&app, create, body).await;
        assert_eq!(status, 400, "{v}");
        assert!(v["message"].as_str().unwrap_or("").contains(why), "{v}");
    }
    let (status, v) = post(
        &app,
        create,
        json!({"experiment_id": "0", "run_name": "ok", "tags": [{"key": "k", "value": "v"}]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

/// At most `slots` queries run at once; one more waits `wait`, then gets 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sql_queries_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(
        store(dir.path()).await,
        dir.path(),
        SqlGate::new(1, Duration::from_millis(200)),
    );
    let slow = app.clone();
    let first = tokio::spawn(async move {
        post(
            &slow,
            "/api/sql",
            json!({"query": "SELECT count(*) FROM range(100000000000) a, range(10) b", "timeout_s": 3}),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, v) = post(&app, "/api/sql", json!({"query": "SELECT 1 AS x"})).await;
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["error_code"], "REQUEST_LIMIT_EXCEEDED", "{v}");
    let (status, v) = first.await.expect("first");
    assert_eq!(status, 400, "the slow query hits its own time limit: {v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("3 s limit"),
        "{v}"
    );
    let (status, v) = post(&app, "/api/sql", json!({"query": "SELECT 1 AS x"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"], json!([[1]]));
}
