//! End-to-end: `fusionprot serve` driven by the real `mlflow` client from PyPI (pinned in
//! scripts/setup), plus start-up refusals and a clean shutdown on SIGTERM.

mod common;
#[path = "../../tracker/tests/pg/mod.rs"]
mod pg;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Server;

/// `fusionprot serve` on a free port with its database and artifacts in `dir`.
fn start(dir: &Path, extra: &[&str]) -> Server {
    common::serve(dir, dir.join("fp.db").to_str().expect("utf8"), extra)
}

/// One raw HTTP/1.1 request; returns (status, body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The real mlflow client's suite against a server on `db` (a file or a postgres:// URL).
fn mlflow_suite(dir: &Path, db: &str) {
    let artifacts = dir.join("artifacts");
    mlflow_peer(
        "mlflow_client.py",
        dir,
        db,
        &[artifacts.to_str().expect("utf8")],
    );
}

/// Runs `tests/peer/SCRIPT URL DB ARGS…` with the real mlflow client against a server on `db`;
/// the script prints "ok" last when every check held.
fn mlflow_peer(script: &str, dir: &Path, db: &str, args: &[&str]) {
    let server = common::serve(dir, db, &[]);
    let script =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("tests/peer")
            .join(script);
    let out = Command::new(common::python())
        .arg(&script)
        .arg(format!("http://{}", server.addr))
        .arg(db)
        .args(args)
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .env("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim().lines().last(),
        Some("ok")
    );
}

/// The second round's routes and validation with the real mlflow client on `db`.
fn mlflow_round2(dir: &Path, db: &str) {
    mlflow_peer("mlflow_round2.py", dir, db, &[]);
}

/// `--default-artifact-root file://…`: file locations under it, the UI's upload / get-artifact
/// routes writing and reading there, and nothing written for a location elsewhere.
#[test]
fn a_file_artifact_root_is_used_as_mlflow_uses_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("mlruns");
    std::fs::create_dir_all(&root).expect("mkdir");
    let root = root.canonicalize().expect("canonical");
    let root_uri = format!("file://{}", root.display());
    let server = common::serve(
        dir.path(),
        dir.path().join("fp.db").to_str().expect("utf8"),
        &["--default-artifact-root", &root_uri],
    );
    let script =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("tests/peer/mlflow_file_root.py");
    let out = Command::new(common::python())
        .arg(&script)
        .arg(format!("http://{}", server.addr))
        .arg("-")
        .arg(&root)
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .output()
        .expect("python");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim().ends_with("ok"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // a relative folder is refused at the command line, naming what to give
    let db = dir.path().join("other.db");
    let o = common::fusionprot(&[
        "serve",
        "--db",
        db.to_str().expect("utf8"),
        "--addr",
        "127.0.0.1:0",
        "--default-artifact-root",
        "mlruns",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("an absolute folder"),
        "{}",
        common::text(&o)
    );
}

/// MLflow's bulk history reads and dataset summaries against MLflow's own store on the same data.
#[test]
fn bulk_history_and_dataset_summaries_match_mlflows_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    mlflow_peer(
        "mlflow_bulk.py",
        dir.path(),
        dir.path().join("fp.db").to_str().expect("utf8"),
        &[],
    );
}

#[test]
fn bulk_history_and_dataset_summaries_match_mlflows_store_on_postgres() {
    let Some(pg) =
        pg::Pg::start("bulk_history_and_dataset_summaries_match_mlflows_store_on_postgres")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    mlflow_peer("mlflow_bulk.py", dir.path(), &pg.database("bulk"), &[]);
}

/// Baseline Δ, bootstrap intervals and t-tests of the groups route against scipy / numpy.
#[test]
fn comparison_statistics_match_scipy_and_numpy() {
    let dir = tempfile::tempdir().expect("tempdir");
    mlflow_peer(
        "stats_check.py",
        dir.path(),
        dir.path().join("fp.db").to_str().expect("utf8"),
        &[],
    );
}

#[test]
fn inputs_routes_and_validation_match_mlflow_with_its_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    mlflow_round2(dir.path(), dir.path().join("fp.db").to_str().expect("utf8"));
}

#[test]
fn inputs_routes_and_validation_match_mlflow_on_postgres_too() {
    let Some(pg) = pg::Pg::start("inputs_routes_and_validation_match_mlflow_on_postgres_too")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    mlflow_round2(dir.path(), &pg.database("round2"));
}

#[test]
fn the_mlflow_client_logs_searches_and_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    mlflow_suite(dir.path(), dir.path().join("fp.db").to_str().expect("utf8"));
}

#[test]
fn the_mlflow_client_suite_passes_on_postgres_too() {
    let Some(pg) = pg::Pg::start("the_mlflow_client_suite_passes_on_postgres_too") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    mlflow_suite(dir.path(), &pg.database("suite"));
}

#[test]
fn errors_come_in_mlflow_form_with_matching_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[]);
    let json = [("Content-Type", "application/json")];
    let (code, body) = http(
        &s.addr,
        "GET",
        "/api/2.0/mlflow/runs/get?run_id=0123",
        &[],
        "",
    );
    assert_eq!(code, 404, "{body}");
    assert!(
        body.contains(r#""error_code":"RESOURCE_DOES_NOT_EXIST""#),
        "{body}"
    );
    let (code, body) = http(
        &s.addr,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        &json,
        "{not json",
    );
    assert_eq!(code, 400);
    assert!(
        body.contains("INVALID_PARAMETER_VALUE") && body.contains("malformed request body"),
        "{body}"
    );
    let (code, body) = http(
        &s.addr,
        "POST",
        "/api/2.0/mlflow/runs/search",
        &json,
        r#"{"experiment_ids":["0"],"filter":"metrics.a > 1 or metrics.b < 2"}"#,
    );
    assert_eq!(code, 400);
    assert!(body.contains("OR is not supported"), "{body}");
    let (code, body) = http(
        &s.addr,
        "POST",
        "/api/2.0/mlflow/experiments/delete",
        &json,
        r#"{"experiment_id":"0"}"#,
    );
    assert_eq!(code, 400, "{body}");
}

#[test]
fn artifact_paths_cannot_escape_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(dir.path(), &[]);
    let base = "/api/2.0/mlflow-artifacts/artifacts";
    let octet = [("Content-Type", "application/octet-stream")];
    for bad in [
        "../../escaped.txt",
        "a/../../escaped.txt",
        "%2e%2e/%2e%2e/escaped.txt",
        "%2E%2E%2Fescaped.txt",
        "%252e%252e/escaped.txt",
        "..%5c..%5cescaped.txt",
        "a%5c..%5c..%5cescaped.txt",
        "a%23/../../escaped.txt",
        "a;/../escaped.txt",
        "file:%2Fetc%2Fescaped.txt",
        "%2Fetc%2Fescaped.txt",
    ] {
        let (code, body) = http(&s.addr, "PUT", &format!("{base}/{bad}"), &octet, "pwned");
        assert!(code == 400 || code == 404, "PUT {bad}: {code} {body}");
        let (code, body) = http(&s.addr, "GET", &format!("{base}/{bad}"), &[], "");
        assert!(code == 400 || code == 404, "GET {bad}: {code} {body}");
    }
    let (code, body) = http(
        &s.addr,
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts?path=..%2F..",
        &[],
        "",
    );
    assert_eq!(code, 400, "list ..: {body}");
    // a symlink planted inside the root leads nowhere
    let root = dir.path().join("artifacts");
    std::os::unix::fs::symlink("/etc", root.join("link")).expect("symlink");
    let (code, body) = http(&s.addr, "GET", &format!("{base}/link/hostname"), &[], "");
    assert_eq!(code, 400, "{body}");
    let (code, _) = http(&s.addr, "PUT", &format!("{base}/link/planted"), &octet, "x");
    assert_eq!(code, 400);
    // nothing was written outside the root; a good path works
    for p in [
        dir.path().join("escaped.txt"),
        PathBuf::from("/etc/escaped.txt"),
        PathBuf::from("/etc/planted"),
    ] {
        assert!(!p.exists(), "{} was written", p.display());
    }
    let (code, body) = http(
        &s.addr,
        "PUT",
        &format!("{base}/1/r/artifacts/ok.txt"),
        &octet,
        "fine",
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        std::fs::read_to_string(root.join("1/r/artifacts/ok.txt")).expect("stored"),
        "fine"
    );
    let (code, body) = http(
        &s.addr,
        "GET",
        &format!("{base}/1/r/artifacts/ok.txt"),
        &[],
        "",
    );
    assert_eq!((code, body.as_str()), (200, "fine"));
}

#[test]
fn exposure_without_a_token_and_newer_databases_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(["serve", "--addr", "0.0.0.0:0", "--db"])
        .arg(dir.path().join("fp.db"))
        .env_remove("FUSIONPROT_TOKEN")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("without a token"),
        "{err}"
    );
    assert!(
        !dir.path().join("fp.db").exists(),
        "nothing opened before the refusal"
    );

    // A database migrated by a newer fusionprot is left untouched.
    drop(start(dir.path(), &[]));
    let db = dir.path().join("fp.db");
    let bump = Command::new(common::python())
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'future', 1, x'00', 0)\"); c.commit()"])
        .arg(&db)
        .output()
        .expect("python");
    assert!(
        bump.status.success(),
        "{}",
        String::from_utf8_lossy(&bump.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("schema version 99, newer than this fusionprot knows"),
        "{err}"
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path(), &[]);
    let (code, _) = http(&server.addr, "GET", "/health", &[], "");
    assert_eq!(code, 200);
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = server.child.wait().expect("wait");
    assert!(status.success(), "exit status {status:?} after SIGTERM");
}

/// Issue 20, case 11: with an event stream open (every dashboard tab holds one) the server never
/// exited on SIGTERM. Now the streams end at the signal, a request in flight finishes, and the
/// process exits 0 well within the grace period.
#[test]
fn issue_20_sigterm_exits_with_event_streams_open_and_finishes_requests_in_flight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path(), &[]);
    let mut streams: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(&server.addr).expect("connect");
            write!(
                s,
                "GET /api/fusionprot/events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
                server.addr
            )
            .expect("send");
            let mut head = [0u8; 12];
            s.read_exact(&mut head).expect("stream answers");
            assert_eq!(&head, b"HTTP/1.1 200");
            s
        })
        .collect();
    // A query that takes a couple of seconds, in flight when the signal comes.
    let addr = server.addr.clone();
    let slow = std::thread::spawn(move || {
        http(
            &addr,
            "POST",
            "/api/sql",
            &[("Content-Type", "application/json")],
            r#"{"query": "SELECT count(*) AS n FROM range(300000000) t(i) WHERE i % 7 = 3"}"#,
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let t0 = std::time::Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &server.child.id().to_string()])
            .status()
            .expect("kill")
            .success()
    );
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the server did not exit within 20 s of SIGTERM with event streams open"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?} after SIGTERM");
    let (code, body) = slow.join().expect("query thread");
    assert_eq!(code, 200, "the query in flight did not finish: {body}");
    assert!(body.contains("\"rows\":[[42857143]]"), "{body}");
    for s in &mut streams {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
}

fn load(addr: &str, clients: u32, points: u32) -> Child {
    let script =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("tests/peer/load.py");
    Command::new(common::python())
        .arg(&script)
        .args([addr, &clients.to_string(), &points.to_string(), "100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start load")
}

fn finish(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().expect("load output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// (points of metric `m`, distinct run × step of them) as stored in `db` (a file or a URL).
fn stored_points(db: &str) -> (i64, i64) {
    let out = Command::new(common::python())
        .args([
            "-c",
            "import sys\n\
             q = \"SELECT count(*), count(DISTINCT run_uuid || ':' || step) FROM metrics WHERE key='m'\"\n\
             if sys.argv[1].startswith('postgres'):\n\
             \timport psycopg2; c = psycopg2.connect(sys.argv[1]).cursor(); c.execute(q); print(c.fetchone())\n\
             else:\n\
             \timport sqlite3; print(sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True).execute(q).fetchone())",
        ])
        .arg(db)
        .output()
        .expect("python");
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<i64> = text
        .trim()
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    assert_eq!(
        nums.len(),
        2,
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (nums[0], nums[1])
}

/// 32 clients × 10,000 points, in log-batch requests of 100, all at once; then the same with
/// the server killed (-9) mid-way and restarted on the same port. `db()` gives a fresh database.
fn concurrent_clients(mut db: impl FnMut() -> String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = db();
    let server = common::serve(dir.path(), &first, &[]);
    let summary = finish(load(&server.addr, 32, 10_000));
    assert_eq!(summary["points"], 320_000, "{summary}");
    assert_eq!(stored_points(&first), (320_000, 320_000));
    eprintln!("32 × 10,000 points: {summary}");
    drop(server);

    let dir = tempfile::tempdir().expect("tempdir");
    let db = db();
    let mut server = common::serve(dir.path(), &db, &[]);
    let addr = server.addr.clone();
    let child = load(&addr, 32, 10_000);
    // Kill once a part of the load is stored, so the kill lands mid-load (checked below).
    let waited = std::time::Instant::now();
    while stored_points(&db).0 < 20_000 {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the load never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let _ = server.child.wait();
    let (before_kill, _) = stored_points(&db);
    assert!(
        (20_000..320_000).contains(&before_kill),
        "the kill must land mid-load: {before_kill} of 320,000 points stored before it"
    );
    let mut restarted = None;
    for _ in 0..50 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fusionprot"))
            .args(["serve", "--addr", &addr, "--db", &db])
            .arg("--artifacts")
            .arg(dir.path().join("artifacts"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("restart");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let _ = stdout.read_line(&mut line);
        if line.contains("http://") {
            restarted = Some(Server::from_parts(child, addr.clone(), stdout));
            break;
        }
        let _ = child.wait();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(restarted.is_some(), "server did not restart on {addr}");
    let summary = finish(child);
    eprintln!("with kill -9 and restart: {summary}; {before_kill} points stored before the kill");
    assert_eq!(summary["points"], 320_000, "{summary}");
    assert!(
        summary["retries"].as_u64().is_some_and(|r| r > 0),
        "clients must have retried across the outage: {summary}"
    );
    assert_eq!(stored_points(&db), (320_000, 320_000));
}

#[test]
fn concurrent_clients_lose_and_duplicate_nothing_even_across_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    concurrent_clients(|| {
        n += 1;
        dir.path().join(format!("fp{n}.db")).display().to_string()
    });
}

#[test]
fn concurrent_clients_lose_and_duplicate_nothing_on_postgres_either() {
    let Some(pg) =
        pg::Pg::start("concurrent_clients_lose_and_duplicate_nothing_on_postgres_either")
    else {
        return;
    };
    let mut n = 0;
    concurrent_clients(|| {
        n += 1;
        pg.database(&format!("load{n}"))
    });
}
