//! The run folder's guards: one process at a time writes it (an OS file lock on `RUN/.lock`,
//! held for the life of the process, released by the OS when it dies), and a folder that cannot
//! be written is refused before any work, not at the first checkpoint epochs later.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::ModelError;

/// Holds `RUN/.lock` until dropped (or the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the run folder's lock without waiting; `out` must exist.
///
/// # Errors
/// Another process holds it (two `train` into one `--out` would mix their configs, checkpoints
/// and predictions), or the lock file cannot be created.
pub fn lock(out: &Path) -> Result<RunLock, ModelError> {
    let path = out.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
    if file.try_lock().is_err() {
        return Err(ModelError::Input(format!(
            "another process is training in {} (lock held on {}): wait for it to end, or choose another --out",
            out.display(),
            path.display()
        )));
    }
    Ok(RunLock { _file: file, path })
}

/// Creates and removes a file in the run folder and in `checkpoints/` (created if missing).
///
/// # Errors
/// A folder that cannot be written (read-only, immutable, no space for one empty file), named.
pub fn check_writable(out: &Path) -> Result<(), ModelError> {
    for dir in [out.to_owned(), out.join("checkpoints")] {
        let probe = dir.join(format!(".write-check-{}", std::process::id()));
        let refused = |source: std::io::Error| {
            ModelError::Input(format!(
                "cannot write in {} ({source}): a run folder must be writable for its checkpoints; copy the run elsewhere or fix its permissions",
                dir.display()
            ))
        };
        std::fs::create_dir_all(&dir).map_err(refused)?;
        std::fs::write(&probe, b"").map_err(refused)?;
        std::fs::remove_file(&probe).map_err(refused)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_run_folder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = lock(dir.path()).expect("first");
        let e = lock(dir.path()).expect_err("second").to_string();
        assert!(e.contains("another process is training"), "{e}");
        drop(first);
        lock(dir.path()).expect("after release");
    }
}
