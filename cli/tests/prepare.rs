//! End-to-end: `fusionprot prepare` and `fusionprot show` on the bundled sample, as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fusionprot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(args)
        .output()
        .expect("run fusionprot")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sample")
}

/// Prepares the sample into `dir/ds` and returns that path as text.
#[track_caller]
fn prepared_sample(dir: &Path) -> String {
    let ds = dir.join("ds");
    let ds_str = ds.to_str().expect("utf-8 path").to_owned();
    let out = fusionprot(&[
        "prepare",
        sample().to_str().expect("utf-8"),
        "--out",
        &ds_str,
        "--jobs",
        "2",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("34 proteins, 6317 residues"), "{stdout}");
    assert!(stdout.contains("from 16 files (0 failed)"), "{stdout}");
    ds_str
}

#[test]
fn prepare_the_sample_then_show_a_protein() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = prepared_sample(dir.path());
    let ds_str = ds.as_str();

    // 1A8O starts with selenomethionine: typed GLY (0) for ESM parity, its name kept.
    let out = fusionprot(&[
        "show",
        ds_str,
        "--table",
        "residues",
        "--protein",
        "1A8O_A",
        "--limit",
        "1",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.contains("1A8O_A"))
        .expect("a 1A8O_A row");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(&cells[1..6], ["1A8O_A", "0", "MSE", "0", "A"], "{row}");
    assert!(
        stdout.contains("1 of 70 residues rows for 1A8O_A"),
        "{stdout}"
    );
}

#[test]
fn invalid_options_and_missing_inputs_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = dir.path().join("ds");
    let ds_str = ds.to_str().expect("utf-8 path");
    let out = fusionprot(&["prepare", "data/sample", "--out", ds_str, "--truncate", "0"]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("--truncate must be at least 1"),
        "{}",
        text(&out).1
    );

    let out = fusionprot(&["prepare", "/nonexistent/structures", "--out", ds_str]);
    assert!(!out.status.success());
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("input /nonexistent/structures does not exist"),
        "{stderr}"
    );
    assert!(
        !ds.join("proteins").exists(),
        "nothing is written for a failed run"
    );
}

#[test]
fn split_the_prepared_sample_and_print_the_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = prepared_sample(dir.path());
    let ds_str = ds.as_str();
    let out = fusionprot(&[
        "split",
        ds_str,
        "--min-seq-id",
        "0.3",
        "--fractions",
        "0.8,0.1,0.1",
        "--seed",
        "7",
        // By the default shorter-sequence identity the sample's peptides (4 identical residues are
        // 31% of 13) link unrelated families; GraphPart's remedy drops them.
        "--remove-to-separate",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("removed 2 proteins"), "{stdout}");
    assert!(
        stdout.contains("34 proteins (25 distinct sequences)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verified: max cross-split identity"),
        "{stdout}"
    );
    assert!(stdout.contains("< 30%"), "{stdout}");
    let out = fusionprot(&["show", ds_str, "--table", "splits", "--protein", "3PWP_A"]);
    assert!(text(&out).0.contains("train"), "{}", text(&out).0);

    let out = fusionprot(&["split", ds_str, "--fractions", "0.8,0.1"]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("--fractions needs three values"),
        "{}",
        text(&out).1
    );
}
