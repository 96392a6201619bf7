//! Issue 20's smaller promises, each a few lines: SQL values of every type in every format, errors
//! that say their cause once, `show` on a wrong id or a table that comes from `import`, `help
//! serve`, and `import --only-ids` naming the ids it did not find.

mod common;

use std::path::Path;

use common::archive::import;
use common::{fusionprot, real_files, text};
use fusionprot_pipeline::import::Benchmark;
use fusionprot_pipeline::import::fixture::fixture;

/// TIMESTAMP WITH TIME ZONE answered "Invalid timezone Etc/UTC" (HTTP 500); `--format csv`
/// refused list columns. Both print in every format now, locally and over HTTP, the same bytes.
#[test]
fn issue_20_timestamps_with_a_zone_and_nested_values_print_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    std::fs::write(&db, b"").expect("an empty SQLite file");
    let db = db.to_str().expect("utf-8");
    let server = common::serve(dir.path(), db, &[]);
    let url = format!("http://{}", server.addr);
    let q = "SELECT TIMESTAMPTZ '2024-03-01 12:00:00+02' AS t, [1, 2] AS l, {'a': 1, 'b': 'x'} AS s, \
             NULL::INTEGER[] AS n";
    for format in ["table", "csv", "json"] {
        let mut answers = Vec::new();
        for target in [["--db", db], ["--tracker", url.as_str()]] {
            let mut args = vec!["query", q, "--format", format];
            args.extend(target);
            let o = fusionprot(&args);
            assert!(o.status.success(), "{format} {target:?}: {}", text(&o));
            answers.push(String::from_utf8_lossy(&o.stdout).into_owned());
        }
        assert_eq!(answers[0], answers[1], "{format}");
        assert!(
            answers[0].contains("2024-03-01"),
            "{format}: {}",
            answers[0]
        );
        if format == "csv" {
            assert!(
                answers[0].contains(r#""[1,2]","{""a"":1,""b"":""x""}","#),
                "{}",
                answers[0]
            );
        }
    }
    let out = dir.path().join("t.parquet");
    let o = fusionprot(&[
        "query",
        q,
        "--db",
        db,
        "--format",
        "parquet",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn issue_20_errors_say_their_cause_once_and_show_names_what_is_wrong() {
    let o = fusionprot(&["score", "/nonexistent/p.parquet"]);
    let t = text(&o);
    assert!(!o.status.success());
    assert_eq!(t.matches("No such file or directory").count(), 1, "{t}");
    let o = fusionprot(&["split", "/nonexistent/ds"]);
    assert!(
        !o.status.success() && text(&o).contains("not a prepared dataset"),
        "{}",
        text(&o)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let sample =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../data/sample");
    let ds = dir.path().join("ds");
    let ds_s = ds.to_str().expect("utf-8");
    let o = fusionprot(&["prepare", sample.to_str().expect("utf-8"), "--out", ds_s]);
    assert!(o.status.success(), "{}", text(&o));
    let o = fusionprot(&["show", ds_s, "--protein", "NOPE"]);
    assert!(
        !o.status.success() && text(&o).contains("no protein \"NOPE\""),
        "{}",
        text(&o)
    );
    let o = fusionprot(&["show", ds_s, "--table", "splits", "--protein", "1AFS_A"]);
    assert!(
        !o.status.success() && text(&o).contains("run `fusionprot split`"),
        "{}",
        text(&o)
    );
    for table in ["labels", "pairs"] {
        let o = fusionprot(&["show", ds_s, "--table", table]);
        assert!(
            !o.status.success() && text(&o).contains("fusionprot import"),
            "{table}: {}",
            text(&o)
        );
    }
    let o = fusionprot(&["help", "serve"]);
    let first = String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(first.contains("PostgreSQL"), "{first}");
}

/// `import --only-ids` dropped the ids it did not find without a word, and an import that kept
/// nothing suggested `--allow-empty`, which `import` does not have.
#[test]
fn issue_20_only_ids_names_the_ids_it_did_not_find() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = fixture(Benchmark::Ec, &real_files()).expect("fixture");
    let zip = dir.path().join("EnzymeCommission.zip");
    f.write_zip(&zip).expect("zip");
    let known = &f.chains[0].id;
    let list = dir.path().join("ids.txt");
    std::fs::write(&list, format!("{known}\n9XYZ-A\n9XYZ-B\n")).expect("ids");
    let out = dir.path().join("ec");
    let o = import(
        "ec",
        &zip,
        &out,
        &["--only-ids", list.to_str().expect("utf-8")],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("2 id(s) of --only-ids") && t.contains("9XYZ-A, 9XYZ-B"),
        "{t}"
    );
    std::fs::write(&list, "9XYZ-A\n").expect("ids");
    let o = import(
        "ec",
        &zip,
        &out,
        &["--only-ids", list.to_str().expect("utf-8")],
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("none of its 1 ids is a chain of the archive"),
        "{t}"
    );
    assert!(!t.contains("--allow-empty"), "{t}");
}

/// `fusionprot query … | head -1` panicked with "failed printing to stdout: Broken pipe" and a
/// backtrace. A reader that closes early now ends the command quietly, status 141 (SIGPIPE's).
#[test]
fn a_reader_that_closes_stdout_early_ends_the_command_quietly() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    std::fs::write(&db, b"").expect("an empty SQLite file");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args([
            "query",
            "SELECT range AS n FROM range(2000000)",
            "--db",
            db.to_str().expect("utf-8"),
            "--format",
            "csv",
            "--max-rows",
            "2000000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("query");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("a first line");
    assert_eq!(first.trim(), "n");
    drop(out); // the reader goes away, as `head -1` does
    let o = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert_eq!(o.status.code(), Some(141), "{err}");
}
