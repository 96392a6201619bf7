//! The Rust tracking client: embedded `sqlite:///` logging, and offline spooling replayed exactly
//! once into a server that comes up later.

use std::path::Path;
use std::time::Duration;

use fusionprot_tracker::client::{Client, replay};
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
        db: db.to_path_buf(),
        addr: format!("127.0.0.1:{port}"),
        artifacts: artifacts.to_path_buf(),
        token: None,
        insecure: false,
        durability: Durability::Normal,
        max_artifact_bytes: 1 << 20,
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
