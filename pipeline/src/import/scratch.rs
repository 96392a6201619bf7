//! The import's scratch folder and its caps. Archives unpack what they must (a TorchDrug zip's
//! inner zips, Atom3D's `data.mdb` files) into `.fusionprot-import-XXXX/` beside the output. The
//! folder holds `owner.lock`, an OS lock the importing process keeps until it ends: a folder whose
//! lock is free belongs to a process that died (Ctrl-C, kill -9, a crash) and is removed by the
//! next import there. Every member read into memory or copied out is capped at
//! `--max-file-mib`, checked against the size the archive claims before anything is allocated and
//! again while the bytes arrive (a claim can lie).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::ImportError;
use super::io;

const PREFIX: &str = ".fusionprot-import-";
const LOCK: &str = "owner.lock";

/// A scratch folder owned by this process, removed when dropped.
#[derive(Debug)]
pub(crate) struct Scratch {
    dir: tempfile::TempDir,
    _lock: File,
}

impl Scratch {
    /// Removes stale scratch folders in `parent`, then creates this process's.
    ///
    /// # Errors
    /// `parent` cannot be listed or written.
    pub(crate) fn create(parent: &Path) -> Result<Scratch, ImportError> {
        remove_stale(parent);
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(parent)
            .map_err(io(parent))?;
        // Locked under a temporary name, then renamed: another import never sees an `owner.lock`
        // that is not locked yet (it would take the folder for a dead process's).
        let tmp = dir.path().join(".owner.lock.tmp");
        let lock = File::create(&tmp).map_err(io(&tmp))?;
        lock.try_lock().map_err(|e| ImportError::Io {
            path: tmp.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let path = dir.path().join(LOCK);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(Scratch { dir, _lock: lock })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the scratch folders in `parent` whose owner is gone (their lock is free). Folders
/// without `owner.lock` are left alone: they are being created, or from before the lock.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(PREFIX)
            || !entry.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let dir = entry.path();
        let Ok(lock) = File::open(dir.join(LOCK)) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    tracing::info!(folder = %dir.display(), "removed the scratch folder of an import that did not finish")
                }
                Err(e) => {
                    tracing::warn!(folder = %dir.display(), error = %e, "cannot remove a stale scratch folder")
                }
            }
        }
    }
}

fn over(label: &str, cap: u64, size: impl std::fmt::Display) -> ImportError {
    ImportError::File {
        file: label.to_owned(),
        line: None,
        message: format!(
            "{size} bytes, over --max-file-mib {} (raise it if the file is genuine)",
            cap >> 20
        ),
    }
}

/// Reads `reader` whole, refusing more than `cap` bytes (`claimed`: what the archive's header
/// says, checked first).
///
/// # Errors
/// Over the cap, or a read error; both name `label`.
pub(crate) fn read_capped(
    reader: impl Read,
    claimed: Option<u64>,
    cap: u64,
    label: &str,
) -> Result<Vec<u8>, ImportError> {
    if let Some(size) = claimed.filter(|&s| s > cap) {
        return Err(over(label, cap, size));
    }
    let mut bytes = Vec::with_capacity(claimed.unwrap_or(0).min(64 << 20) as usize);
    reader
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ImportError::File {
            file: label.to_owned(),
            line: None,
            message: format!("broken member: {e}"),
        })?;
    if bytes.len() as u64 > cap {
        return Err(over(label, cap, format!("more than {cap}")));
    }
    Ok(bytes)
}

/// Copies `reader` into a new file at `path`, refusing more than `cap` bytes.
///
/// # Errors
/// Over the cap (the partial file is removed), a read or write error; named.
pub(crate) fn copy_capped(
    reader: impl Read,
    claimed: Option<u64>,
    cap: u64,
    label: &str,
    path: &PathBuf,
) -> Result<u64, ImportError> {
    if let Some(size) = claimed.filter(|&s| s > cap) {
        return Err(over(label, cap, size));
    }
    let mut out = File::create(path).map_err(io(path))?;
    let n = std::io::copy(&mut reader.take(cap + 1), &mut out).map_err(|e| ImportError::File {
        file: label.to_owned(),
        line: None,
        message: format!("cannot unpack it: {e}"),
    })?;
    out.flush().map_err(io(path))?;
    if n > cap {
        drop(out);
        let _ = std::fs::remove_file(path);
        return Err(over(label, cap, format!("more than {cap}")));
    }
    Ok(n)
}

/// Reads a file of a folder-form archive whole, refusing one over `cap` before reading it.
///
/// # Errors
/// Over the cap, or unreadable; named.
pub(crate) fn read_file_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ImportError> {
    let file = File::open(path).map_err(io(path))?;
    let size = file.metadata().map_err(io(path))?.len();
    read_capped(file, Some(size), cap, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_importers_folder_is_removed_and_a_live_ones_kept() {
        let parent = tempfile::tempdir().expect("tempdir");
        let live = Scratch::create(parent.path()).expect("live");
        let dead = parent.path().join(".fusionprot-import-dead");
        std::fs::create_dir_all(&dead).expect("mkdir");
        std::fs::write(dead.join(LOCK), b"").expect("lock file");
        std::fs::write(dead.join("train.zip"), b"unpacked").expect("file");
        let unknown = parent.path().join(".fusionprot-import-nolock");
        std::fs::create_dir_all(&unknown).expect("mkdir");
        let second = Scratch::create(parent.path()).expect("second");
        assert!(!dead.exists(), "the dead importer's folder is still there");
        assert!(live.path().is_dir() && second.path().is_dir() && unknown.is_dir());
        let path = live.path().to_owned();
        drop(live);
        assert!(!path.exists());
    }

    #[test]
    fn reads_and_copies_stop_at_the_cap_even_when_the_claim_lies() {
        let data = vec![7u8; 3000];
        assert_eq!(
            read_capped(&data[..], Some(3000), 3000, "m").expect("at the cap"),
            data
        );
        let e = read_capped(&data[..], Some(10), 2048, "inner/m.tsv").expect_err("lie");
        assert!(e.to_string().contains("inner/m.tsv"), "{e}");
        let e = read_capped(&data[..], Some(3000), 2048, "m").expect_err("claim");
        assert!(
            e.to_string().contains("3000 bytes, over --max-file-mib"),
            "{e}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x");
        let e = copy_capped(&data[..], None, 1000, "big.zip", &path).expect_err("over");
        assert!(e.to_string().contains("big.zip"), "{e}");
        assert!(!path.exists(), "the partial copy is left");
        assert_eq!(
            copy_capped(&data[..], None, 4000, "ok", &path).expect("copy"),
            3000
        );
    }
}
