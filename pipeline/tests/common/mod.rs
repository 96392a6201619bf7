//! Shared helpers for the pipeline's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use fusionprot_pipeline::protein::ProteinOptions;
use fusionprot_pipeline::{PrepareConfig, Summary, prepare};

#[track_caller]
pub fn real_dir() -> PathBuf {
    let dir =
        PathBuf::from(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../shared/data/real");
    assert!(
        dir.join("expected.tsv").is_file(),
        "{} not found: these tests read the shared real structure files",
        dir.display()
    );
    dir
}

pub fn sample_dir() -> PathBuf {
    PathBuf::from(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../data/sample")
}

#[track_caller]
pub fn run(inputs: &[PathBuf], out: &Path, proteins: ProteinOptions, jobs: usize) -> Summary {
    try_run(inputs, out, proteins, jobs, false).expect("prepare succeeds")
}

pub fn try_run(
    inputs: &[PathBuf],
    out: &Path,
    proteins: ProteinOptions,
    jobs: usize,
    strict: bool,
) -> Result<Summary, fusionprot_pipeline::PrepareError> {
    let cfg = PrepareConfig {
        inputs: inputs.to_vec(),
        out: out.to_owned(),
        proteins,
        jobs,
        strict,
        only_ids: None,
        shard: None,
    };
    prepare(&cfg, &indicatif::ProgressBar::hidden())
}

#[track_caller]
pub fn manifest(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).expect("manifest is JSON")
}

/// The venv's python (scripts/env sets FUSIONPROT_VENV; scripts/setup installs numpy, scipy and
/// pyarrow into it for the peers).
#[track_caller]
pub fn python() -> PathBuf {
    let venv = std::env::var_os("FUSIONPROT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME");
            PathBuf::from(home).join(".cache/fusionprot/venv")
        });
    let py = venv.join("bin/python");
    assert!(
        py.is_file(),
        "{} not found: run the tests through scripts/test (it sets up the venv)",
        py.display()
    );
    py
}

/// `prepare` with explicit safeguards (size cap, `allow_empty`), not strict.
pub fn try_run_with(
    inputs: &[PathBuf],
    out: &Path,
    jobs: usize,
    guards: &fusionprot_pipeline::Safeguards,
) -> Result<Summary, fusionprot_pipeline::PrepareError> {
    let cfg = PrepareConfig {
        inputs: inputs.to_vec(),
        out: out.to_owned(),
        proteins: ProteinOptions::default(),
        jobs,
        strict: false,
        only_ids: None,
        shard: None,
    };
    fusionprot_pipeline::prepare_with(&cfg, guards, &indicatif::ProgressBar::hidden())
}

/// Every file below `dir` (relative path → bytes), sorted, the hidden lock file excluded.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != ".lock") {
                let rel = p.strip_prefix(dir).expect("below").to_string_lossy();
                out.push((rel.into_owned(), std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}
