//! End-to-end: `fusionprot doctor` as a user runs it.

use std::process::Command;

fn doctor(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .arg("doctor")
        .args(args)
        .output()
        .expect("run fusionprot doctor");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn doctor_reports_every_part_with_versions_as_json() {
    let (ok, stdout, stderr) = doctor(&["--json"]);
    assert!(ok, "doctor failed on a set-up machine:\n{stdout}\n{stderr}");
    let checks: Vec<serde_json::Value> =
        serde_json::from_str(&stdout).expect("doctor --json is JSON");
    let part = |name: &str| {
        checks
            .iter()
            .find(|c| c["part"] == name)
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
    };
    let ok_text = |name: &str| part(name)["ok"].as_str().map(str::to_owned);

    let libtorch = ok_text("libtorch").expect("libtorch line");
    assert!(libtorch.starts_with("2.11.0"), "{libtorch}");
    let cpu = ok_text("CPU forward").expect("CPU forward works");
    assert!(cpu.contains("[8, 32]"), "{cpu}");
    assert_eq!(ok_text("DuckDB").as_deref(), Some("v1.5.6"));
    assert!(ok_text("SQLite").expect("SQLite").starts_with("3."));
    let mmseqs = ok_text("MMseqs2").expect("scripts/setup installs MMseqs2");
    assert!(mmseqs.contains("mmseqs"), "{mmseqs}");
    assert_eq!(part("CUDA")["required"], false);
}

#[test]
fn doctor_fails_naming_mmseqs_when_it_is_missing() {
    let out = Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(["doctor"])
        .env("FUSIONPROT_MMSEQS", "/nonexistent/mmseqs")
        .output()
        .expect("run fusionprot doctor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a missing required part must fail:\n{stdout}"
    );
    assert!(stdout.contains("FAIL MMseqs2"), "{stdout}");
    assert!(
        stdout.contains("scripts/setup"),
        "install hint missing:\n{stdout}"
    );
    assert!(stderr.contains("MMseqs2"), "{stderr}");
}

#[test]
fn doctor_require_cuda_fails_on_a_cpu_only_machine() {
    let (ok, stdout, _) = doctor(&["--require-cuda"]);
    // This test runs on CPU machines (CI); on a GPU machine run the CUDA check through the device tool.
    if stdout.contains("ok   CUDA") {
        assert!(ok, "{stdout}");
    } else {
        assert!(!ok, "--require-cuda without CUDA must fail:\n{stdout}");
        assert!(stdout.contains("FAIL CUDA"), "{stdout}");
    }
}

/// The `dataset` line of `doctor DATASET --json`: (ok text, problem text).
fn dataset_line(ds: &std::path::Path) -> (Option<String>, Option<String>) {
    let (_, stdout, stderr) = doctor(&[ds.to_str().expect("utf-8"), "--json"]);
    let checks: Vec<serde_json::Value> =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    let c = checks
        .iter()
        .find(|c| c["part"] == "dataset")
        .unwrap_or_else(|| panic!("no dataset line in {stdout}"));
    assert_eq!(c["required"], true);
    (
        c["ok"].as_str().map(str::to_owned),
        c["problem"].as_str().map(str::to_owned),
    )
}

#[test]
fn issue_10_doctor_checks_a_dataset_against_its_manifest_and_leaves_other_folders_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, problem) = dataset_line(dir.path());
    assert_eq!(ok, None);
    assert!(
        problem
            .as_deref()
            .is_some_and(|p| p.ends_with("is not a prepared dataset: no manifest.json")),
        "{problem:?}"
    );
    assert!(
        !dir.path().join(".lock").exists(),
        "doctor must not write into a folder that is not a dataset"
    );

    let ds = dir.path().join("ds");
    let sample = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../data/sample");
    let out = Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(["prepare", sample.to_str().expect("utf-8"), "--out"])
        .arg(&ds)
        .output()
        .expect("prepare");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, _) = dataset_line(&ds);
    let ok = ok.expect("a fresh dataset is whole");
    assert!(
        ok.ends_with("34 proteins, 3 parts as manifest.json lists them"),
        "{ok}"
    );

    let part = ds.join("edges/part-00000.parquet");
    let len = std::fs::metadata(&part).expect("part").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&part)
        .and_then(|f| f.set_len(len - 100))
        .expect("truncate");
    let (ok, problem) = dataset_line(&ds);
    assert_eq!(ok, None);
    assert_eq!(
        problem.as_deref(),
        Some(
            format!(
                "edges/part-00000.parquet has {} bytes, manifest.json lists {len}",
                len - 100
            )
            .as_str()
        )
    );
}
