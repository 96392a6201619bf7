//! Shared helpers for the CLI's end-to-end tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::process::{Command, Output};

/// The venv's python (scripts/setup installs the test peers into it).
pub fn python() -> PathBuf {
    let venv = std::env::var_os("FUSIONPROT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/fusionprot/venv")
        });
    venv.join("bin/python")
}

/// Runs the `fusionprot` binary built with the tests.
pub fn fusionprot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fusionprot"))
        .args(args)
        .output()
        .expect("run fusionprot")
}

/// stdout and stderr together, for assertions and their messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The real structure files of `../shared/data/real`, sorted.
pub fn real_files() -> Vec<PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/real");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("../shared/data/real")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}
