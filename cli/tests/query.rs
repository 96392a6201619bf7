//! End-to-end: `fusionprot register` and `fusionprot query` (local database and `--tracker`),
//! joining run results with dataset tables, every output format identical either way, the
//! sandbox refusing escapes (files, ATTACH, COPY … TO, INSTALL / LOAD, SET, PRAGMA) and every
//! write, even inside a registered dataset's folder, the time limit, the row limit, and dataset
//! registration over HTTP limited to `serve --data-root`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{Server, fusionprot, serve, text};

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
    let sample =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../data/sample");
    let ds = dir.join("ec-sample").display().to_string();
    let o = fusionprot(&["prepare", &sample.display().to_string(), "--out", &ds]);
    assert!(o.status.success(), "{}", text(&o));
    let o = fusionprot(&["split", &ds, "--seed", "7"]);
    assert!(o.status.success(), "{}", text(&o));
    let db = dir.join("fp.db").display().to_string();
    let server = serve(dir, &db, &["--data-root", &dir.display().to_string()]);
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
        "{\"columns\":[{\"name\":\"run_name\",\"type\":\"Utf8\"}],\"rows\":[[\"esm2\"],[\"fusionprot\"]],\"truncated\":false}\n",
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
        ("SELECT * FROM nowhere", "nowhere"),
        (
            "SELECT * FROM read_text('/etc/hostname')",
            "Permission Error",
        ),
        (
            &format!("SELECT * FROM read_json('{manifest}')") as &str,
            "Permission Error",
        ),
        (&format!("ATTACH '{db}' AS x"), "run here, not ATTACH"),
        (
            "COPY (SELECT 1) TO '/tmp/fp-escape.csv'",
            "run here, not COPY",
        ),
        ("INSTALL sqlite", "run here, not INSTALL"),
        ("LOAD httpfs", "run here, not LOAD"),
        ("SET enable_external_access = true", "run here, not SET"),
        ("PRAGMA enable_external_access", "run here, not PRAGMA"),
        ("SELECT 1; SELECT 2", "one statement per query (found 2)"),
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

/// Case 1 of issue 10: COPY … TO into the dataset's own table folder (allowed for reading)
/// succeeded and overwrote a part. Every writing statement is now refused before it runs, over
/// the CLI and over HTTP, and the dataset stays byte-identical and readable.
#[test]
fn issue_10_sql_cannot_write_even_inside_a_registered_dataset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, db, url) = setup(dir.path());
    let ds = dir.path().join("ec-sample");
    let part = ds.join("proteins/part-00000.parquet");
    let before = std::fs::read(&part).expect("part");
    let inside = ds.join("proteins").display().to_string();
    let p = part.display().to_string();
    let writes = [
        format!("COPY (SELECT 1 AS x) TO '{p}' (FORMAT parquet)"),
        format!("COPY (SELECT 1 AS x) TO '{inside}/new.csv'"),
        format!("EXPORT DATABASE '{inside}/export'"),
        format!("CREATE TABLE t AS SELECT * FROM read_parquet('{p}')"),
        format!("CREATE TABLE '{inside}/t.parquet' AS SELECT 1"),
        format!("ATTACH '{inside}/x.duckdb' AS x"),
        "INSERT INTO runs SELECT * FROM runs".to_owned(),
        "CREATE MACRO m() AS 1".to_owned(),
        "CALL checkpoint()".to_owned(),
        format!("SELECT * FROM query('COPY (SELECT 1) TO ''{inside}/q.csv''')"),
        format!("EXPLAIN ANALYZE COPY (SELECT 1) TO '{inside}/e.csv'"),
    ];
    for q in &writes {
        for target in [vec!["--db", db.as_str()], vec!["--tracker", url.as_str()]] {
            let mut args = vec!["query", q.as_str()];
            args.extend(&target);
            let o = fusionprot(&args);
            assert!(
                !o.status.success() && text(&o).contains("query refused"),
                "{q} via {target:?} was not refused:\n{}",
                text(&o)
            );
        }
    }
    assert_eq!(
        std::fs::read(&part).expect("part"),
        before,
        "the part was changed"
    );
    let mut left: Vec<String> = std::fs::read_dir(ds.join("proteins"))
        .expect("folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["part-00000.parquet"],
        "a file was written beside the part"
    );
    let o = fusionprot(&["show", &ds.display().to_string(), "--limit", "1"]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Case 4 of issue 10: `--tracker` printed one column (`a` = 2) where `--db` printed three.
/// Now both give the same bytes in every format, duplicates, order, types and nulls included,
/// and so does an empty result (its header).
#[test]
fn issue_10_results_are_identical_locally_and_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, db, url) = setup(dir.path());
    let queries = [
        "SELECT 1 AS a, 2 AS a, NULL AS c",
        "SELECT 1 AS a, 'x' AS b WHERE false",
        "SELECT [1, NULL, 3] AS l, {'k': 1.5} AS s, DATE '2026-01-02' AS d, 'runs' AS in_a_string",
        "SELECT run_name, count(*) AS n FROM runs JOIN params USING (run_uuid) GROUP BY 1 ORDER BY 1",
    ];
    for q in queries {
        // CSV has no nested types: arrow-csv refuses them, the same way for both paths.
        let formats: &[&str] = if q.contains('[') {
            &["table", "json"]
        } else {
            &["table", "csv", "json"]
        };
        for &format in formats {
            let get = |target: [&str; 2]| {
                let o = fusionprot(&["query", q, "--format", format, target[0], target[1]]);
                assert!(o.status.success(), "{q} {target:?}: {}", text(&o));
                o.stdout
            };
            let local = get(["--db", &db]);
            let remote = get(["--tracker", &url]);
            assert_eq!(
                String::from_utf8_lossy(&local),
                String::from_utf8_lossy(&remote),
                "{q} as {format}"
            );
        }
        let pq = |target: [&str; 2], name: &str| {
            let out = dir.path().join(name);
            let o = fusionprot(&[
                "query",
                q,
                "--format",
                "parquet",
                "--out",
                out.to_str().expect("utf-8"),
                target[0],
                target[1],
            ]);
            assert!(o.status.success(), "{q}: {}", text(&o));
            std::fs::read(out).expect("parquet")
        };
        assert_eq!(
            pq(["--db", &db], "l.parquet"),
            pq(["--tracker", &url], "r.parquet"),
            "{q} as parquet"
        );
    }
    let o = fusionprot(&[
        "query",
        "SELECT 1 AS a, 2 AS a, NULL AS c",
        "--format",
        "json",
        "--tracker",
        &url,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        v,
        serde_json::json!({
            "columns": [
                {"name": "a", "type": "Int32"},
                {"name": "a", "type": "Int32"},
                {"name": "c", "type": "Int32"}
            ],
            "rows": [[1, 2, null]],
            "truncated": false
        })
    );
    // The HTTP answer itself lists the columns explicitly too.
    let v = post(
        &server.addr,
        "/api/sql",
        r#"{"query": "SELECT 1 AS a, 2 AS a, NULL AS c"}"#,
    );
    assert_eq!(v["columns"].as_array().map(Vec::len), Some(3), "{v}");
    assert_eq!(v["rows"], serde_json::json!([[1, 2, null]]), "{v}");
}

/// `datasets/register` over HTTP opened any server path a client named. Now only folders below
/// `serve --data-root` may be named, and a server started without it refuses.
#[test]
fn registering_over_http_is_limited_to_the_data_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, _db, url) = setup(dir.path());
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let ds = dir.path().join("ec-sample");
    let outside = elsewhere.path().join("ds");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&ds)
        .arg(&outside)
        .status()
        .expect("cp");
    assert!(copied.success());
    let o = fusionprot(&[
        "register",
        outside.to_str().expect("utf-8"),
        "--tracker",
        &url,
    ]);
    assert!(
        !o.status.success() && text(&o).contains("not below the server's --data-root"),
        "{}",
        text(&o)
    );
    let v = post(
        &server.addr,
        "/api/fusionprot/datasets/register",
        r#"{"name": "etc", "path": "/etc"}"#,
    );
    assert_eq!(v["error_code"], "PERMISSION_DENIED", "{v}");
    drop(server);
    // Without --data-root: refused, with the way out in the message.
    let db = dir.path().join("other.db").display().to_string();
    let plain = serve(dir.path(), &db, &[]);
    let addr = plain.addr.clone();
    let o = fusionprot(&[
        "register",
        ds.to_str().expect("utf-8"),
        "--tracker",
        &format!("http://{addr}"),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("--data-root"),
        "{}",
        text(&o)
    );
    // The local CLI registers as before.
    let o = fusionprot(&["register", ds.to_str().expect("utf-8"), "--db", &db]);
    assert!(o.status.success(), "{}", text(&o));
}
