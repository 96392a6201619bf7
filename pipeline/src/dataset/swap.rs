//! Replacing a dataset's tables so that a crash at any point loses nothing: the dataset lock, the
//! journaled swap of old for new tables, and the recovery that the next run (or `doctor`) does.
//!
//! The swap, with the new tables complete and fsynced in `.staging-<pid>/`:
//! 1. `.swap-journal.json` is written (temporary file, fsync, rename, fsync of the folder) naming
//!    the staging folder, the folder the old tables go to (`.previous-<pid>/`), the old names
//!    present and the new names, in state `swapping`;
//! 2. the old tables and manifest are renamed into `.previous-<pid>/`, then the new ones renamed
//!    in from staging, the manifest last;
//! 3. the journal is rewritten in state `committed`; only then are the old tables deleted, the
//!    staging folder removed and the journal removed.
//!
//! Recovery reads the journal. `committed`: the new set is in place, finish the clean-up.
//! `swapping` with every new name already moved in: mark committed and finish. Otherwise roll
//! back: new tables that made it in go back to staging, the old ones come back from
//! `.previous-<pid>/`, the journal is marked `rolled-back`, then staging and the (now empty)
//! previous folder go. Every step is a rename or a deletion that recovery can repeat, so a crash
//! during recovery is recovered the same way. Old tables are deleted only in state `committed`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::failpoint;

/// The journal's file name in the dataset folder.
pub const JOURNAL: &str = ".swap-journal.json";

/// Errors that stop a swap or a recovery.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: unreadable swap journal ({source}); fix or move it by hand, nothing was changed", .path.display())]
    Journal {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "cannot restore {}: {} exists too; move one of them away and run `fusionprot doctor` on the dataset again",
        .previous.display(), .current.display()
    )]
    Conflict { previous: PathBuf, current: PathBuf },
    #[error("another prepare is writing {} (lock held on {})", .out.display(), .lock.display())]
    Locked { out: PathBuf, lock: PathBuf },
    /// A test stopped the swap at a step, leaving the files as a crash there would.
    #[cfg(test)]
    #[error("halted at {0}")]
    Halted(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SwapError + '_ {
    move |source| SwapError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Holds the dataset's `.lock` (an OS file lock, released when dropped or when the process dies).
#[derive(Debug)]
pub struct DatasetLock {
    _file: File,
}

/// Takes the lock of an existing dataset folder without waiting.
///
/// # Errors
/// [`SwapError::Locked`] when another process holds it; I/O errors creating the lock file.
pub fn lock(dataset: &Path) -> Result<DatasetLock, SwapError> {
    let path = dataset.join(".lock");
    let file = File::create(&path).map_err(io(&path))?;
    if file.try_lock().is_err() {
        return Err(SwapError::Locked {
            out: dataset.to_owned(),
            lock: path,
        });
    }
    Ok(DatasetLock { _file: file })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum State {
    Swapping,
    Committed,
    RolledBack,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    state: State,
    /// Folder names inside the dataset.
    staging: String,
    previous: String,
    /// Names that existed in the dataset and are moved aside, in move order.
    old: Vec<String>,
    /// Names moved in from staging, in move order (the manifest last).
    new: Vec<String>,
}

impl Journal {
    fn read(dataset: &Path) -> Result<Option<Self>, SwapError> {
        let path = dataset.join(JOURNAL);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| SwapError::Journal { path, source })
    }

    /// Temporary file, fsync, rename, fsync of the folder: the journal on disk is always whole.
    fn write(&self, dataset: &Path) -> Result<(), SwapError> {
        let path = dataset.join(JOURNAL);
        let tmp = dataset.join(format!("{JOURNAL}.tmp"));
        let mut text = serde_json::to_vec_pretty(self).expect("the journal serialises");
        text.push(b'\n');
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&text).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&tmp))?;
        sync_dir(dataset)
    }
}

/// What recovery found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// No interrupted swap.
    Clean,
    /// An interrupted swap was undone: these old names are back in place.
    RolledBack { restored: Vec<String> },
    /// The interrupted swap had already put the whole new set in place; its clean-up was finished.
    Completed,
}

/// Where an interrupted swap is left: undone, or finished when the new set was complete. Needs the
/// dataset lock, so no swap is running. Repeatable: a crash during recovery is recovered again.
///
/// # Errors
/// An unreadable journal or an I/O error (nothing further is changed then), or
/// [`SwapError::Conflict`] when an old table cannot go back because its name is taken.
pub fn recover(dataset: &Path, _lock: &DatasetLock) -> Result<Recovery, SwapError> {
    recover_with(dataset, &mut |p| {
        failpoint::hit(p);
        Ok(())
    })
}

fn recover_with(dataset: &Path, halt: &mut Halt<'_>) -> Result<Recovery, SwapError> {
    let Some(mut journal) = Journal::read(dataset)? else {
        return Ok(Recovery::Clean);
    };
    tracing::warn!(dataset = %dataset.display(), state = ?journal.state, "recovering an interrupted prepare");
    let staging = dataset.join(&journal.staging);
    let previous = dataset.join(&journal.previous);
    if journal.state == State::Swapping {
        let all_in = journal
            .new
            .iter()
            .all(|n| !exists(&staging.join(n)) && exists(&dataset.join(n)));
        if all_in {
            journal.state = State::Committed;
        } else {
            // New tables that made it in go back to staging first, which frees their names.
            if exists(&staging) {
                for n in journal.new.iter().rev() {
                    let (here, there) = (dataset.join(n), staging.join(n));
                    if !exists(&there) && exists(&here) {
                        std::fs::rename(&here, &there).map_err(io(&here))?;
                        halt(&format!("rollback-new-returned:{n}"))?;
                    }
                }
            }
            for n in &journal.old {
                let (here, there) = (dataset.join(n), previous.join(n));
                if exists(&there) {
                    if exists(&here) {
                        return Err(SwapError::Conflict {
                            previous: there,
                            current: here,
                        });
                    }
                    std::fs::rename(&there, &here).map_err(io(&there))?;
                    halt(&format!("rollback-old-restored:{n}"))?;
                }
            }
            sync_dir(dataset)?;
            journal.state = State::RolledBack;
        }
        journal.write(dataset)?;
    }
    finish(dataset, &journal, halt)?;
    Ok(match journal.state {
        State::Committed => Recovery::Completed,
        _ => Recovery::RolledBack {
            restored: journal.old,
        },
    })
}

/// A step hook: production crashes there when a failpoint says so; tests stop there.
type Halt<'a> = dyn FnMut(&str) -> Result<(), SwapError> + 'a;

/// Swaps the complete new set in `dataset/<staging_name>/` (`new`, moved in that order) for the
/// dataset's current `replaced` names that exist. See the module docs for the protocol.
///
/// # Errors
/// I/O errors; the journal then stays, and [`recover`] undoes what was done.
pub(crate) fn swap_in(
    dataset: &Path,
    staging_name: &str,
    previous_name: &str,
    replaced: &[&str],
    new: &[&str],
) -> Result<(), SwapError> {
    swap_with(
        dataset,
        staging_name,
        previous_name,
        replaced,
        new,
        &mut |p| {
            failpoint::hit(p);
            Ok(())
        },
    )
}

fn swap_with(
    dataset: &Path,
    staging_name: &str,
    previous_name: &str,
    replaced: &[&str],
    new: &[&str],
    halt: &mut Halt<'_>,
) -> Result<(), SwapError> {
    let staging = dataset.join(staging_name);
    let previous = dataset.join(previous_name);
    // The new set must survive a power loss before anything old is touched.
    for n in new {
        sync_tree(&staging.join(n))?;
    }
    sync_dir(&staging)?;
    let mut journal = Journal {
        state: State::Swapping,
        staging: staging_name.to_owned(),
        previous: previous_name.to_owned(),
        old: replaced
            .iter()
            .filter(|n| exists(&dataset.join(n)))
            .map(|n| (*n).to_owned())
            .collect(),
        new: new.iter().map(|n| (*n).to_owned()).collect(),
    };
    journal.write(dataset)?;
    halt("swap:journal-written")?;
    if !journal.old.is_empty() {
        std::fs::create_dir(&previous).map_err(io(&previous))?;
        for n in &journal.old {
            let from = dataset.join(n);
            std::fs::rename(&from, previous.join(n)).map_err(io(&from))?;
            halt(&format!("swap:old-moved:{n}"))?;
        }
        sync_dir(&previous)?;
        sync_dir(dataset)?;
    }
    for n in &journal.new {
        let from = staging.join(n);
        std::fs::rename(&from, dataset.join(n)).map_err(io(&from))?;
        halt(&format!("swap:new-moved:{n}"))?;
    }
    sync_dir(dataset)?;
    journal.state = State::Committed;
    journal.write(dataset)?;
    halt("swap:committed")?;
    finish(dataset, &journal, halt)
}

/// Removes what a finished (committed or rolled-back) swap leaves, then the journal.
fn finish(dataset: &Path, journal: &Journal, halt: &mut Halt<'_>) -> Result<(), SwapError> {
    let previous = dataset.join(&journal.previous);
    if exists(&previous) {
        if journal.state == State::Committed {
            std::fs::remove_dir_all(&previous).map_err(io(&previous))?;
        } else {
            // Rolled back: every old table is back, so this is empty; never delete old tables.
            std::fs::remove_dir(&previous).map_err(io(&previous))?;
        }
        halt("swap:previous-removed")?;
    }
    let staging = dataset.join(&journal.staging);
    if exists(&staging) {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
        halt("swap:staging-removed")?;
    }
    let path = dataset.join(JOURNAL);
    std::fs::remove_file(&path).map_err(io(&path))?;
    sync_dir(dataset)
}

/// Removes staging folders of interrupted runs (safe once recovery ran: they only ever hold
/// uncommitted output) and names `.previous-*` folders that no journal explains (kept: they may
/// hold tables).
///
/// # Errors
/// I/O errors listing or removing.
pub fn remove_stale(dataset: &Path, _lock: &DatasetLock) -> Result<(), SwapError> {
    for entry in std::fs::read_dir(dataset).map_err(io(dataset))? {
        let entry = entry.map_err(io(dataset))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".staging-") {
            tracing::info!(path = %entry.path().display(), "removing staging folder of an interrupted run");
            std::fs::remove_dir_all(entry.path()).map_err(io(&entry.path()))?;
        } else if name == format!("{JOURNAL}.tmp") {
            // A crash before the first journal was renamed into place: nothing was swapped yet.
            std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
        } else if name.starts_with(".previous-") {
            tracing::warn!(path = %entry.path().display(), "keeping a folder of earlier tables that no swap journal names; remove it by hand when it is not needed");
        }
    }
    Ok(())
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

fn sync_dir(dir: &Path) -> Result<(), SwapError> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(io(dir))
}

/// fsyncs a file, or every file below a folder and the folders themselves.
fn sync_tree(path: &Path) -> Result<(), SwapError> {
    let meta = path.symlink_metadata().map_err(io(path))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io(path))? {
            sync_tree(&entry.map_err(io(path))?.path())?;
        }
        sync_dir(path)
    } else {
        // fsync through a read-only descriptor is allowed on Linux and flushes the file's data.
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(io(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLACED: [&str; 5] = ["proteins", "residues", "edges", "splits", "manifest.json"];
    const NEW: [&str; 4] = ["proteins", "residues", "edges", "manifest.json"];

    /// A dataset with old tables (and splits) and a staged new set; returns its folder.
    fn setup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for t in ["proteins", "residues", "edges", "splits"] {
            std::fs::create_dir_all(d.join(t)).expect("mkdir");
            std::fs::write(d.join(t).join("part-00000.parquet"), format!("old {t}")).expect("w");
            std::fs::create_dir_all(d.join(".staging-7").join(t)).expect("mkdir");
            if t != "splits" {
                std::fs::write(
                    d.join(".staging-7").join(t).join("part-00000.parquet"),
                    format!("new {t}"),
                )
                .expect("w");
            }
        }
        std::fs::remove_dir(d.join(".staging-7/splits")).expect("rmdir");
        std::fs::write(d.join("manifest.json"), "old manifest").expect("w");
        std::fs::write(d.join(".staging-7/manifest.json"), "new manifest").expect("w");
        std::fs::write(d.join("notes.txt"), "user file").expect("w");
        dir
    }

    /// Every file below `dir` with its content, hidden lock excluded.
    fn files(dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read_dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|n| n != ".lock") {
                    let rel = p.strip_prefix(dir).expect("below").to_string_lossy();
                    out.push((rel.into_owned(), std::fs::read_to_string(&p).expect("text")));
                }
            }
        }
        out.sort();
        out
    }

    fn expect_old() -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = ["edges", "proteins", "residues", "splits"]
            .iter()
            .map(|t| (format!("{t}/part-00000.parquet"), format!("old {t}")))
            .collect();
        v.push(("manifest.json".into(), "old manifest".into()));
        v.push(("notes.txt".into(), "user file".into()));
        v.sort();
        v
    }

    fn expect_new() -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = ["edges", "proteins", "residues"]
            .iter()
            .map(|t| (format!("{t}/part-00000.parquet"), format!("new {t}")))
            .collect();
        v.push(("manifest.json".into(), "new manifest".into()));
        v.push(("notes.txt".into(), "user file".into()));
        v.sort();
        v
    }

    /// Every halt point of a full swap, in order.
    fn swap_points() -> Vec<String> {
        let dir = setup();
        let mut seen = Vec::new();
        swap_with(
            dir.path(),
            ".staging-7",
            ".previous-7",
            &REPLACED,
            &NEW,
            &mut |p| {
                seen.push(p.to_owned());
                Ok(())
            },
        )
        .expect("swap");
        assert_eq!(files(dir.path()), expect_new());
        seen
    }

    #[test]
    fn a_crash_at_any_step_of_the_swap_recovers_to_the_old_or_the_whole_new_set() {
        let points = swap_points();
        assert_eq!(points.len(), 13, "{points:?}");
        for (i, point) in points.iter().enumerate() {
            let dir = setup();
            let d = dir.path();
            let err = swap_with(d, ".staging-7", ".previous-7", &REPLACED, &NEW, &mut |p| {
                if p == point {
                    Err(SwapError::Halted(p.to_owned()))
                } else {
                    Ok(())
                }
            })
            .expect_err("halted");
            assert!(matches!(err, SwapError::Halted(_)));
            let l = lock(d).expect("lock");
            let got = recover(d, &l).expect("recover");
            // The new set is complete once its manifest has been moved in.
            let new_complete = i
                >= points
                    .iter()
                    .position(|p| p == "swap:new-moved:manifest.json")
                    .expect("manifest point");
            if new_complete {
                assert_eq!(got, Recovery::Completed, "at {point}");
                assert_eq!(files(d), expect_new(), "at {point}");
            } else {
                assert_eq!(
                    got,
                    Recovery::RolledBack {
                        restored: REPLACED.iter().map(|s| (*s).to_owned()).collect()
                    },
                    "at {point}"
                );
                assert_eq!(files(d), expect_old(), "at {point}");
            }
            assert_eq!(recover(d, &l).expect("again"), Recovery::Clean);
        }
    }

    #[test]
    fn a_crash_during_recovery_is_recovered_again() {
        // Crash after the second new table went in, then crash recovery at each of its steps.
        let mut recovery_points = Vec::new();
        {
            let dir = setup();
            let d = dir.path();
            let _ = swap_with(d, ".staging-7", ".previous-7", &REPLACED, &NEW, &mut |p| {
                if p == "swap:new-moved:residues" {
                    Err(SwapError::Halted(p.into()))
                } else {
                    Ok(())
                }
            });
            recover_with(d, &mut |p| {
                recovery_points.push(p.to_owned());
                Ok(())
            })
            .expect("recover");
            assert_eq!(files(d), expect_old());
        }
        assert!(recovery_points.len() >= 7, "{recovery_points:?}");
        for point in &recovery_points {
            let dir = setup();
            let d = dir.path();
            let _ = swap_with(d, ".staging-7", ".previous-7", &REPLACED, &NEW, &mut |p| {
                if p == "swap:new-moved:residues" {
                    Err(SwapError::Halted(p.into()))
                } else {
                    Ok(())
                }
            });
            let err = recover_with(d, &mut |p| {
                if p == point {
                    Err(SwapError::Halted(p.into()))
                } else {
                    Ok(())
                }
            })
            .expect_err("halted");
            assert!(matches!(err, SwapError::Halted(_)));
            let l = lock(d).expect("lock");
            recover(d, &l).expect("second recovery");
            assert_eq!(files(d), expect_old(), "recovery crashed at {point}");
        }
    }

    #[test]
    fn a_first_swap_into_an_empty_folder_rolls_back_to_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join(".staging-7/proteins")).expect("mkdir");
        std::fs::write(d.join(".staging-7/proteins/p"), "new").expect("w");
        std::fs::write(d.join(".staging-7/manifest.json"), "new").expect("w");
        let _ = swap_with(
            d,
            ".staging-7",
            ".previous-7",
            &REPLACED,
            &["proteins", "manifest.json"],
            &mut |p| {
                if p == "swap:new-moved:proteins" {
                    Err(SwapError::Halted(p.into()))
                } else {
                    Ok(())
                }
            },
        );
        let l = lock(d).expect("lock");
        assert_eq!(
            recover(d, &l).expect("recover"),
            Recovery::RolledBack { restored: vec![] }
        );
        assert_eq!(files(d), Vec::<(String, String)>::new());
    }

    #[test]
    fn an_old_table_whose_name_is_taken_is_a_conflict_not_a_deletion() {
        let dir = setup();
        let d = dir.path();
        let _ = swap_with(d, ".staging-7", ".previous-7", &REPLACED, &NEW, &mut |p| {
            if p == "swap:old-moved:splits" {
                Err(SwapError::Halted(p.into()))
            } else {
                Ok(())
            }
        });
        std::fs::create_dir(d.join("splits")).expect("someone else's splits");
        let l = lock(d).expect("lock");
        let err = recover(d, &l).expect_err("conflict");
        assert!(
            err.to_string().contains(".previous-7/splits") && err.to_string().contains("exists"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(d.join(".previous-7/splits/part-00000.parquet"))
                .expect("old splits kept"),
            "old splits"
        );
    }

    #[test]
    fn a_broken_journal_stops_recovery_without_touching_anything() {
        let dir = setup();
        let d = dir.path();
        std::fs::write(d.join(JOURNAL), "{ not json").expect("w");
        let before = files(d);
        let l = lock(d).expect("lock");
        let err = recover(d, &l).expect_err("broken journal");
        assert!(
            err.to_string()
                .contains(".swap-journal.json: unreadable swap journal"),
            "{err}"
        );
        assert_eq!(files(d), before);
    }

    #[test]
    fn leftovers_without_a_journal_go_except_folders_of_old_tables() {
        let dir = setup();
        let d = dir.path();
        std::fs::write(d.join(format!("{JOURNAL}.tmp")), "{ half").expect("w");
        std::fs::create_dir_all(d.join(".previous-3/proteins")).expect("mkdir");
        std::fs::write(d.join(".previous-3/proteins/p"), "old").expect("w");
        let l = lock(d).expect("lock");
        assert_eq!(recover(d, &l).expect("recover"), Recovery::Clean);
        remove_stale(d, &l).expect("remove stale");
        let mut names: Vec<String> = std::fs::read_dir(d)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        names.sort();
        assert_eq!(names, [".lock", ".previous-3"]);
    }

    #[test]
    fn a_second_lock_on_the_same_dataset_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _held = lock(dir.path()).expect("first");
        let err = lock(dir.path()).expect_err("second");
        assert!(
            err.to_string().contains("another prepare is writing"),
            "{err}"
        );
    }
}
