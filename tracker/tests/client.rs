//! The Rust tracking client: embedded `sqlite:///` logging, and offline spooling replayed exactly
//! once into a server that comes up later.

use std::path::Path;
use std::time::Duration;

use fusionprot_tracker::client::{Client, ReplayError, replay, replay_with};
use fusionprot_tracker::model::KeyValue;
use fusionprot_tracker::{Durability, ServeConfig, Store};

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
    }
}

fn check_run(db: &Path, run_id: &str, points: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let store = Store::open(&db.display().to_string(), Durability::Normal)
            .await
            .expect("open");
        let run = store.get_run(run_id).await.expect("run");
        assert_eq!(run.info.status, "FINISHED");
        assert!(
            run.data.params.contains(&kv("lr", "0.001")),
            "{:?}",
            run.data.params
        );
        let (hist, _) = store
            .metric_history(run_id, "loss", None, None)
            .await
            .expect("history");
        assert_eq!(hist.len(), points, "every point exactly once");
        let steps: Vec<i64> = hist.iter().map(|m| m.step).collect();
        assert_eq!(steps, (0..points as i64).collect::<Vec<_>>());
    });
}

#[test]
fn embedded_sqlite_logging_needs_no_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("fp.db");
    let mut c = Client::connect(
        &format!("sqlite://{}", db.display()),
        None,
        dir.path().join("spool.jsonl"),
    )
    .expect("connect");
    let run = c
        .create_run("ec", "local-run", &[kv("stage", "test")])
        .expect("run");
    c.log_params(&run, &[kv("lr", "0.001")], &[])
        .expect("params");
    for step in 0..2500 {
        c.log_metric(&run, "loss", 1.0 / (step as f64 + 1.0), step)
            .expect("metric");
    }
    c.end_run(&run, "FINISHED").expect("end");
    assert!(!dir.path().join("spool.jsonl").exists());
    check_run(&db, &run, 2500);
}

fn start_server(db: &Path, artifacts: &Path, port: u16) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let cfg = ServeConfig {
        db: fusionprot_tracker::store::DbLocation::Sqlite(db.to_path_buf()),
        addr: format!("127.0.0.1:{port}"),
        artifacts: artifacts.to_path_buf(),
        token: None,
        insecure: false,
        durability: Durability::Normal,
        max_artifact_bytes: 1 << 20,
        data_root: None,
        default_artifact_root: None,
    };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("rt");
        let _ = rt.block_on(fusionprot_tracker::serve(cfg, move |addr| {
            let _ = tx.send(addr.to_string());
        }));
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("server up")
}

#[test]
fn offline_logging_is_spooled_and_replayed_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let spool = dir.path().join("spool.jsonl");
    let mut c =
        Client::connect(&format!("http://127.0.0.1:{port}"), None, spool.clone()).expect("connect");
    c.retries = 1;
    c.backoff = Duration::from_millis(1);
    let run = c
        .create_run("ec", "offline-run", &[])
        .expect("run (local id)");
    assert!(run.starts_with("local-"), "{run}");
    c.log_params(&run, &[kv("lr", "0.001")], &[kv("note", "spooled")])
        .expect("params");
    for step in 0..1500 {
        c.log_metric(&run, "loss", step as f64, step)
            .expect("metric");
    }
    c.end_run(&run, "FINISHED").expect("end");
    let lines = std::fs::read_to_string(&spool)
        .expect("spool")
        .lines()
        .count();
    assert!(lines >= 5, "{lines} spooled operations");

    // The server comes up on that port; replaying twice (or after an interruption) sends once.
    let db = dir.path().join("fp.db");
    let addr = start_server(&db, &dir.path().join("artifacts"), port);
    let copy = dir.path().join("copy.jsonl");
    std::fs::copy(&spool, &copy).expect("copy");
    let mut online = Client::connect(&format!("http://{addr}"), None, dir.path().join("s2.jsonl"))
        .expect("connect");
    let sent = replay(&mut online, &spool).expect("replay");
    assert_eq!(sent, lines);
    assert!(!spool.exists(), "a fully replayed spool is removed");
    // the same operations again: the run is found by its local id, points are idempotent
    let again = replay(&mut online, &copy).expect("replay copy");
    assert_eq!(again, lines);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let runs = rt.block_on(async {
        let store = Store::open(&db.display().to_string(), Durability::Normal)
            .await
            .expect("open");
        let exp = store
            .get_experiment_by_name("ec")
            .await
            .expect("experiment");
        store
            .search_runs(&[exp.experiment_id], None, Some("ALL"), None, &[], None)
            .await
            .expect("search")
            .0
    });
    assert_eq!(runs.len(), 1, "one run, not one per replay");
    check_run(&db, &runs[0].info.run_id, 1500);
}

fn spool_line(id: &str, run: &str, key: &str, value: &str) -> String {
    serde_json::json!({"op": "log-batch", "id": id, "body": {"run_id": run, "params": [{"key": key, "value": value}]}})
        .to_string()
}

/// An operation the server refuses for good (here: a changed param) used to make every later
/// operation queue behind it in the spool forever, silently. It is now an error naming the line,
/// and `replay_with(…, rejects)` sets it aside and replays the rest.
#[test]
fn a_refused_spooled_operation_is_an_error_naming_its_line_and_can_be_set_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("fp.db");
    let uri = format!("sqlite://{}", db.display());
    let mut c = Client::connect(&uri, None, dir.path().join("unused.jsonl")).expect("connect");
    let run = c.create_run("ec", "r", &[]).expect("run");
    c.log_params(&run, &[kv("lr", "0.001")], &[])
        .expect("param");
    let spool = dir.path().join("spool.jsonl");
    std::fs::write(
        &spool,
        [
            spool_line("a", &run, "seed", "1"),
            spool_line("b", &run, "lr", "0.5"),
            spool_line("c", &run, "epochs", "3"),
        ]
        .join("\n")
            + "\n",
    )
    .expect("spool");
    // A client whose spool holds the refused line reports it instead of spooling behind it.
    let mut blocked = Client::connect(&uri, None, spool.clone()).expect("connect");
    let e = blocked
        .log_params(&run, &[kv("batch", "8")], &[])
        .expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("spool.jsonl:2") && text.contains("Changing param values is not allowed"),
        "{text}"
    );
    assert!(text.contains("--skip-refused"), "{text}");
    match replay(&mut c, &spool) {
        Err(ReplayError::Refused { line: 2, op, .. }) => assert_eq!(op, "log-batch"),
        other => panic!("expected a refusal at line 2, got {other:?}"),
    }
    let rejects = dir.path().join("spool.jsonl.rejected");
    let summary = replay_with(&mut c, &spool, Some(&rejects)).expect("replay");
    assert_eq!(
        (summary.sent, summary.set_aside),
        (1, 1),
        "line 1 was applied before; line 3 now"
    );
    let rejected = std::fs::read_to_string(&rejects).expect("rejects");
    let v: serde_json::Value = serde_json::from_str(rejected.trim()).expect("json");
    assert_eq!(v["id"], "b");
    assert!(
        v["refused"]
            .as_str()
            .unwrap_or("")
            .contains("Changing param"),
        "{v}"
    );
    assert!(!spool.exists(), "the replayed spool is removed");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let params = rt.block_on(async {
        let store = Store::open(&db.display().to_string(), Durability::Normal)
            .await
            .expect("open");
        store.get_run(&run).await.expect("run").data.params
    });
    for p in [kv("lr", "0.001"), kv("seed", "1"), kv("epochs", "3")] {
        assert!(params.contains(&p), "{p:?} in {params:?}");
    }
}

/// A spool line that is not a tracking operation used to become an empty batch (a silent
/// success); it is now an error naming the line, before anything of it is sent.
#[test]
fn a_malformed_spool_line_is_an_error_not_an_empty_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("fp.db");
    let mut c = Client::connect(
        &format!("sqlite://{}", db.display()),
        None,
        dir.path().join("unused.jsonl"),
    )
    .expect("connect");
    let run = c.create_run("ec", "r", &[]).expect("run");
    for (bad, why) in [
        (
            serde_json::json!({"op": "log-batch", "id": "x", "body": {"run_id": run, "metrics": "garbage"}})
                .to_string(),
            "not a list of metrics",
        ),
        (
            serde_json::json!({"op": "log-batch", "id": "x", "body": {"run_id": run}}).to_string(),
            "empty log-batch",
        ),
        ("{not json".to_owned(), "key must be a string"),
        (
            serde_json::json!({"op": "delete-everything", "id": "x", "body": {}}).to_string(),
            "unknown operation",
        ),
    ] {
        let spool = dir.path().join("bad.jsonl");
        std::fs::write(&spool, format!("{}\n{bad}\n", spool_line("ok", &run, "a", "1")))
            .expect("spool");
        let _ = std::fs::remove_file(dir.path().join("bad.jsonl.done"));
        let e = replay(&mut c, &spool).expect_err("bad line");
        let text = e.to_string();
        assert!(
            matches!(e, ReplayError::BadLine { line: 2, .. }) && text.contains(why),
            "{bad}: {text}"
        );
        assert!(text.contains("bad.jsonl:2"), "{text}");
    }
}
