//! Shared helpers for the trainer's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

pub mod graphs;

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::Tensor;

/// The venv's python (scripts/setup installs torch, transformers and fair-esm into it).
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

/// Runs `tests/peer/<script>` with `args`, failing the test with its stderr.
#[track_caller]
pub fn peer(script: &str, args: &[&Path]) {
    let path =
        PathBuf::from(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("tests/peer")
            .join(script);
    let out = Command::new(python())
        .arg(&path)
        .args(args)
        .env("OMP_NUM_THREADS", "2")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Named tensors of a safetensors file.
#[track_caller]
pub fn read(path: &Path) -> std::collections::HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// Largest |a − b| / (1 + |b|) over all elements.
pub fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    let a = a.to_kind(tch::Kind::Double);
    let b = b.to_kind(tch::Kind::Double);
    ((&a - &b).abs() / (b.abs() + 1.0)).max().double_value(&[])
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    (a.to_kind(tch::Kind::Double) - b.to_kind(tch::Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

pub fn sample_dir() -> PathBuf {
    PathBuf::from(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../data/sample")
}
