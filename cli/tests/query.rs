//! End-to-end: `fusionprot register` and `fusionprot query` (local database and `--tracker`),
//! joining run results with dataset tables, every output format, and the sandbox refusing
//! escapes (files, ATTACH, COPY … TO, INSTALL / LOAD, SET, PRAGMA), the time limit and the row
//! limit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn fusionprot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(args)
        .output()
        .expect("run fusionprot")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Server {
    child: Child,
    addr: String,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn post(addr: &str, path: &str, body: &str) -> serde_json::Value {
    let mut s = TcpStream::connect(addr).expect("connect");
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn setup(dir: &Path) -> (Server, String, String) {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sample");
    let ds = dir.join("ec-sample").display().to_string();
    let o = fusionprot(&["prepare", &sample.display().to_string(), "--out", &ds]);
    assert!(o.status.success(), "{}", text(&o));
    // MMseqs2's identity with its coverage rule: the sample's peptides link unrelated families by
    // the default shorter-sequence identity (see ARCHITECTURE.md, Splits).
    let o = fusionprot(&["split", &ds, "--seed", "7", "--identity", "aligned"]);
    assert!(o.status.success(), "{}", text(&o));
    let db = dir.join("fp.db").display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db", &db, "--artifacts"])
        .arg(dir.join("artifacts"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("addr")
        .to_owned();
    let server = Server {
        child,
        addr,
        _stdout: stdout,
    };
    // two runs with an fmax each, linked to the dataset
    let url = format!("http://{}", server.addr);
    let o = fusionprot(&["register", &ds, "--tracker", &url]);
    assert!(
        o.status.success() && text(&o).contains("ec_sample_proteins"),
        "{}",
        text(&o)
    );
    for (name, fmax) in [("fusionprot", 0.61), ("esm2", 0.55)] {
        let run = post(
            &server.addr,
            "/api/2.0/mlflow/runs/create",
            &format!(r#"{{"experiment_id":"0","run_name":"{name}"}}"#),
        );
        let id = run["run"]["info"]["run_id"]
            .as_str()
            .expect("id")
            .to_owned();
        post(
            &server.addr,
            "/api/2.0/mlflow/runs/log-batch",
            &format!(
                r#"{{"run_id":"{id}","metrics":[{{"key":"fmax","value":{fmax},"timestamp":1,"step":10}}],"params":[{{"key":"model","value":"{name}"}}]}}"#
            ),
        );
        let linked = post(
            &server.addr,
            "/api/fusionprot/runs/link-dataset",
            &format!(r#"{{"run_id":"{id}","dataset_id":"1","context":"train"}}"#),
        );
        assert_eq!(linked, serde_json::json!({}));
        let ck = post(
            &server.addr,
            "/api/fusionprot/checkpoints/log",
            &format!(
                r#"{{"run_id":"{id}","step":10,"path":"/ckpt/{name}.safetensors","size_bytes":123,"sha256":"{}","metrics":{{"fmax":{fmax}}},"is_best":true}}"#,
                "ab".repeat(32)
            ),
        );
        assert!(ck["checkpoint_id"].is_string(), "{ck}");
    }
    (server, db, url)
}

const JOIN: &str = "SELECT r.run_name, m.value AS fmax, s.split, count(*) AS proteins \
    FROM runs r JOIN latest_metrics m ON m.run_uuid = r.run_uuid AND m.key = 'fmax' \
    JOIN run_datasets rd ON rd.run_uuid = r.run_uuid JOIN datasets d USING (dataset_id) \
    CROSS JOIN ec_sample_splits s GROUP BY ALL ORDER BY fmax DESC, s.split";

#[test]
fn results_join_dataset_tables_locally_and_remotely_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, db, url) = setup(dir.path());
    for target in [vec!["--db", db.as_str()], vec!["--tracker", url.as_str()]] {
        let mut args = vec!["query", JOIN, "--format", "csv"];
        args.extend(&target);
        let o = fusionprot(&args);
        assert!(o.status.success(), "{}", text(&o));
        let csv = String::from_utf8_lossy(&o.stdout).into_owned();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0], "run_name,fmax,split,proteins",
            "{target:?}\n{csv}"
        );
        assert_eq!(lines.len(), 1 + 2 * 3, "{csv}");
        assert!(lines[1].starts_with("fusionprot,0.61,test,"), "{csv}");
    }
    // table, JSON lines, Parquet
    let o = fusionprot(&[
        "query",
        "SELECT count(*) AS n FROM ec_sample_residues",
        "--db",
        &db,
    ]);
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("6317"),
        "{}",
        text(&o)
    );
    let o = fusionprot(&[
        "query",
        "SELECT run_name FROM runs ORDER BY run_name",
        "--db",
        &db,
        "--format",
        "json",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "{\"run_name\":\"esm2\"}\n{\"run_name\":\"fusionprot\"}\n",
        "{}",
        text(&o)
    );
    let pq = dir.path().join("out.parquet");
    let o = fusionprot(&[
        "query",
        "SELECT * FROM checkpoints",
        "--db",
        &db,
        "--format",
        "parquet",
        "--out",
        pq.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(&std::fs::read(&pq).expect("parquet")[..4], b"PAR1");
    let o = fusionprot(&[
        "query",
        "SELECT count(*) FILTER (WHERE is_best = 1) AS best FROM checkpoints",
        "--db",
        &db,
        "--format",
        "csv",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "best\n2\n",
        "one best per run"
    );
}

#[test]
fn the_sandbox_refuses_escapes_and_enforces_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, db, url) = setup(dir.path());
    let manifest = dir
        .path()
        .join("ec-sample/manifest.json")
        .display()
        .to_string();
    let escapes = [
        ("SELECT * FROM read_csv('/etc/passwd')", "Permission Error"),
        (
            "SELECT * FROM read_text('/etc/hostname')",
            "Permission Error",
        ),
        (
            &format!("SELECT * FROM read_json('{manifest}')") as &str,
            "Permission Error",
        ),
        (&format!("ATTACH '{db}' AS x"), "Permission Error"),
        (
            "COPY (SELECT 1) TO '/tmp/fp-escape.csv'",
            "Permission Error",
        ),
        ("INSTALL sqlite", ""),
        ("LOAD httpfs", ""),
        ("SET enable_external_access = true", "locked"),
        ("PRAGMA enable_external_access", ""),
        ("SELECT 1; SELECT 2", ""),
    ];
    for (q, why) in escapes {
        for target in [vec!["--db", db.as_str()], vec!["--tracker", url.as_str()]] {
            let mut args = vec!["query", q];
            args.extend(&target);
            let o = fusionprot(&args);
            let t = text(&o);
            assert!(
                !o.status.success() && t.contains("query refused") && t.contains(why),
                "{q} via {target:?}:\n{t}"
            );
        }
    }
    assert!(!PathBuf::from("/tmp/fp-escape.csv").exists());
    let o = fusionprot(&[
        "query",
        "SELECT count(*) FROM range(100000000000) a, range(10) b",
        "--db",
        &db,
        "--timeout",
        "1",
    ]);
    assert!(
        !o.status.success() && text(&o).contains("longer than the 1 s limit"),
        "{}",
        text(&o)
    );
    let o = fusionprot(&[
        "query",
        "SELECT * FROM range(1000)",
        "--db",
        &db,
        "--max-rows",
        "10",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 11);
    assert!(text(&o).contains("stopped at --max-rows 10"));
}
