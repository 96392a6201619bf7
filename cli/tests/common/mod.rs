//! Shared helpers for the CLI's end-to-end tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

/// The venv's python (scripts/setup installs the test peers into it).
pub fn python() -> PathBuf {
    let venv = std::env::var_os("FUSIONPROT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/fusionprot/venv")
        });
    venv.join("bin/python")
}
