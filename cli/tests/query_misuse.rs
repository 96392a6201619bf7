//! Issue 20, cases 1 and 10: SQL reads no file a registered dataset does not own, and one broken
//! registered dataset does not stop every query. Both over HTTP (`/api/sql`, the server's
//! registration) and through the CLI (`register`, `query --db`).

use std::path::Path;
use std::process::Command;

mod common;
use common::{fusionprot, python, serve, text};

/// One raw HTTP/1.1 request; returns the status and the body as JSON (Null if not JSON).
fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let (status, _, body) = common::http_with_body(addr, method, path, body);
    (status, serde_json::from_str(&body).unwrap_or_default())
}

fn sql(addr: &str, query: &str) -> (u16, serde_json::Value) {
    request(
        addr,
        "POST",
        "/api/sql",
        serde_json::json!({ "query": query }).to_string().as_bytes(),
    )
}

/// A prepared dataset of the sample structures in `dir/name` (`extra`: prepare's options, so
/// that datasets differ in content: registration is idempotent by content hash).
fn prepared(dir: &Path, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let sample =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../data/sample");
    let ds = dir.join(name);
    let mut args = vec![
        "prepare".to_owned(),
        sample.display().to_string(),
        "--out".to_owned(),
        ds.display().to_string(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = fusionprot(&args);
    assert!(o.status.success(), "{}", text(&o));
    ds
}

/// The exploit's manifest: a linked dataset whose residues "part" is `/etc/passwd`, reached by
/// climbing from `dataset` (where the manifest will lie) to the root.
fn hostile_manifest(dataset: &Path) -> String {
    let climb = "../".repeat(dataset.components().count() + 2);
    serde_json::json!({
        "dataset_schema_version": 2,
        "tables": {
            "proteins": {"parts": [{"path": "proteins/part-00000.parquet", "rows": 1, "bytes": 1, "sha256": "0"}]},
            "residues": {"parts": [{"path": format!("{climb}etc/passwd"), "rows": 1, "bytes": 1, "sha256": "0"}]},
        },
        "link": {"shards": []},
    })
    .to_string()
}

const PASSWD: &str = "SELECT content FROM read_text('/etc/passwd')";

/// Case 1: a client uploads a Parquet part and a hostile manifest as run artifacts, registers
/// that artifact folder as a dataset and reads `/etc/passwd` through `/api/sql` (on main: 200
/// with the file's content). Now the registration is refused (the artifact store is never a
/// dataset), a registration made before the fix is skipped at query time, and the read is
/// refused; locally, a hostile dataset outside the artifact store is refused by its part.
#[test]
fn issue_20_no_file_outside_a_dataset_is_read_through_sql() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(dir.path()).expect("canonical");
    let ds = prepared(&root, "ds", &[]);
    let db = root.join("fp.db").display().to_string();
    let server = serve(&root, &db, &["--data-root", &root.display().to_string()]);
    let part = std::fs::read(ds.join("proteins/part-00000.parquet")).expect("part");
    let folder = root.join("artifacts/0/run/artifacts/evil");
    for (name, bytes) in [
        ("proteins/part-00000.parquet", part.clone()),
        ("manifest.json", hostile_manifest(&folder).into_bytes()),
    ] {
        let (status, v) = request(
            &server.addr,
            "PUT",
            &format!("/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/evil/{name}"),
            &bytes,
        );
        assert_eq!(status, 200, "upload {name}: {v}");
    }
    assert!(folder.join("manifest.json").is_file());
    let (status, v) = request(
        &server.addr,
        "POST",
        "/api/fusionprot/datasets/register",
        serde_json::json!({"name": "evil", "path": folder.display().to_string()})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("inside the artifact store")),
        "{v}"
    );
    let (status, v) = sql(&server.addr, PASSWD);
    assert!(
        status != 200 && v.to_string().contains("Permission Error"),
        "{status} {v}"
    );

    // A registration that got in before this check (written straight into the database) is
    // skipped when views are made: the query answers without it, and names it.
    let inserted = Command::new(python())
        .arg("-c")
        .arg(
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute(\"INSERT INTO datasets (name, content_hash, schema_version, path, manifest_json, created_time) VALUES ('evil', 'x', 2, ?, '{}', 0)\", (sys.argv[2],)); c.commit()",
        )
        .arg(&db)
        .arg(&folder)
        .status()
        .expect("python");
    assert!(inserted.success());
    let (status, v) = sql(&server.addr, PASSWD);
    assert!(
        status != 200 && v.to_string().contains("Permission Error"),
        "{status} {v}"
    );
    let (status, v) = sql(&server.addr, "SELECT 1 AS one");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"], serde_json::json!([[1]]));
    assert!(
        v["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("\"evil\" skipped") && w.contains("artifact store")),
        "{v}"
    );
    let url = format!("http://{}", server.addr);
    for target in [["--db", db.as_str()], ["--tracker", url.as_str()]] {
        let mut args = vec!["query", PASSWD];
        args.extend(target);
        let o = fusionprot(&args);
        assert!(
            !o.status.success() && text(&o).contains("Permission Error"),
            "{target:?}: {}",
            text(&o)
        );
        assert!(!text(&o).contains("root:x:0:0"), "{}", text(&o));
    }

    // The same manifest outside the artifact store: refused by its part, locally and over HTTP.
    let crafted = root.join("crafted");
    std::fs::create_dir_all(crafted.join("proteins")).expect("mkdir");
    std::fs::write(crafted.join("proteins/part-00000.parquet"), &part).expect("part");
    std::fs::write(crafted.join("manifest.json"), hostile_manifest(&crafted)).expect("manifest");
    let other_db = root.join("local.db").display().to_string();
    for target in [["--db", other_db.as_str()], ["--tracker", url.as_str()]] {
        let mut args = vec!["register", crafted.to_str().expect("utf-8")];
        args.extend(target);
        let o = fusionprot(&args);
        assert!(
            !o.status.success()
                && text(&o).contains("linked part")
                && text(&o).contains("etc/passwd"),
            "{target:?}: {}",
            text(&o)
        );
    }
    let o = fusionprot(&["register", &ds.display().to_string(), "--db", &other_db]);
    assert!(o.status.success(), "{}", text(&o));
    let o = fusionprot(&["query", PASSWD, "--db", &other_db]);
    assert!(
        !o.status.success() && text(&o).contains("Permission Error"),
        "{}",
        text(&o)
    );
}

/// Case 10: a registered dataset whose part was deleted (or is no Parquet) made every query fail,
/// `SELECT 1` included, on the CLI, `/api/sql` and so the dashboard's console. Now it is skipped
/// with a warning naming it and why, and the other datasets still answer.
#[test]
fn issue_20_one_broken_dataset_does_not_stop_every_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(dir.path()).expect("canonical");
    let good = prepared(&root, "ds", &[]);
    let broken = prepared(&root, "broken", &["--truncate", "50"]);
    let gone = prepared(&root, "gone", &["--truncate", "60"]);
    let db = root.join("fp.db").display().to_string();
    for d in [&good, &broken, &gone] {
        let o = fusionprot(&["register", &d.display().to_string(), "--db", &db]);
        assert!(o.status.success(), "{}", text(&o));
    }
    std::fs::write(broken.join("residues/part-00000.parquet"), b"not parquet").expect("write");
    std::fs::remove_dir_all(&gone).expect("rm");
    let server = serve(&root, &db, &[]);
    let url = format!("http://{}", server.addr);
    let q = "SELECT 1 AS one, (SELECT count(*) FROM ds_proteins) AS proteins";
    let mut answers = Vec::new();
    for target in [["--db", db.as_str()], ["--tracker", url.as_str()]] {
        let mut args = vec!["query", q, "--format", "csv"];
        args.extend(target);
        let o = fusionprot(&args);
        let t = text(&o);
        assert!(o.status.success(), "{target:?}: {t}");
        assert!(
            t.contains("warning: dataset \"broken\" skipped") && t.contains("part-00000.parquet"),
            "{t}"
        );
        assert!(t.contains("warning: dataset \"gone\" skipped"), "{t}");
        answers.push(String::from_utf8_lossy(&o.stdout).into_owned());
        // The broken dataset's views are not there, rather than half there.
        let mut args = vec!["query", "SELECT count(*) FROM broken_proteins"];
        args.extend(target);
        let o = fusionprot(&args);
        assert!(
            !o.status.success() && text(&o).contains("broken_proteins"),
            "{}",
            text(&o)
        );
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].starts_with("one,proteins\n1,"), "{}", answers[0]);
    let (status, v) = sql(&server.addr, "SELECT 1 AS one");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(2), "{v}");
}
