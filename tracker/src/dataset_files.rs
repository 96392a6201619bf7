//! The table files a registered dataset exposes to SQL, resolved and confined. A dataset's SQL
//! views read exactly these files, and DuckDB's `allowed_directories` are exactly their folders,
//! so a manifest can never point a view (or a later `read_text`) at a file elsewhere on the disk.
//!
//! A prepared dataset exposes the `*.parquet` files of its table folders (`proteins/`, …): each
//! folder must resolve to itself inside the dataset (not a symlink out) and each file must be a
//! regular file in it (not a symlink). A linked dataset (`merge --link`) exposes the parts its
//! manifest lists, and only when each is a part its shard's own manifest lists, in that shard's
//! table folder, and each shard still holds the manifest the link recorded (a shard prepared again
//! after the link would change what the parts mean). A dataset inside the artifact store is never
//! exposed: clients upload files there.
//!
//! Checked when a dataset is registered and again at every query (files change between the two).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The dataset tables SQL exposes, in view order.
pub const DATASET_TABLES: &[&str] = &[
    "proteins", "residues", "edges", "splits", "labels", "pairs", "go_terms",
];

/// Why a dataset's tables are not exposed; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", .path.display())]
pub struct ExposeError {
    pub path: PathBuf,
    pub message: String,
    /// The dataset lies where datasets may not (outside `--data-root`, in the artifact store),
    /// rather than being malformed.
    pub denied: bool,
}

fn refuse(path: &Path, message: impl Into<String>) -> ExposeError {
    ExposeError {
        path: path.to_owned(),
        message: message.into(),
        denied: false,
    }
}

fn deny(path: &Path, message: String) -> ExposeError {
    ExposeError {
        denied: true,
        ..refuse(path, message)
    }
}

/// Where datasets may lie.
#[derive(Debug, Clone, Default)]
pub struct Confinement {
    /// Every folder a dataset reads (its own, its linked shards') must be below this one (the
    /// server's `--data-root`, for registrations over HTTP); `None`: anywhere.
    pub below: Option<PathBuf>,
    /// Folders no dataset may be in or read from (the artifact store, canonical).
    pub never: Vec<PathBuf>,
}

impl Confinement {
    fn check(&self, dir: &Path, what: &str) -> Result<(), ExposeError> {
        if let Some(root) = &self.below
            && !dir.starts_with(root)
        {
            return Err(deny(
                dir,
                format!(
                    "{what} is not below the server's --data-root {}",
                    root.display()
                ),
            ));
        }
        if let Some(store) = self.never.iter().find(|n| dir.starts_with(n)) {
            return Err(deny(
                dir,
                format!(
                    "{what} is inside the artifact store {} (files clients upload), which is never a dataset",
                    store.display()
                ),
            ));
        }
        Ok(())
    }
}

/// What a dataset exposes: each table's files (canonical paths), and the folders they lie in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposed {
    pub tables: BTreeMap<&'static str, Vec<PathBuf>>,
    /// The canonical table folders of those files: DuckDB's `allowed_directories`.
    pub folders: Vec<PathBuf>,
}

/// Resolves the table files of the dataset in `dir` under `scope`.
///
/// # Errors
/// A dataset outside its confinement, a table folder or file that leads out of it, a linked part
/// that is not its shard's, a changed shard, an unreadable manifest.
pub fn resolve(dir: &Path, scope: &Confinement) -> Result<Exposed, ExposeError> {
    let root = std::fs::canonicalize(dir).map_err(|e| refuse(dir, e.to_string()))?;
    scope.check(&root, "the dataset")?;
    let manifest_path = root.join("manifest.json");
    let manifest: Value = std::fs::read(&manifest_path)
        .map_err(|e| refuse(&manifest_path, format!("not a prepared dataset ({e})")))
        .and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| refuse(&manifest_path, format!("not JSON: {e}")))
        })?;
    let linked = manifest
        .get("link")
        .map(|l| shards(&root, l, scope))
        .transpose()?;
    let mut out = Exposed::default();
    for &table in DATASET_TABLES {
        let folder = root.join(table);
        let files = if folder.exists() {
            own_parts(&folder)?
        } else if let Some(shards) = &linked {
            linked_parts(&root, &manifest_path, &manifest, table, shards)?
        } else {
            continue;
        };
        if files.is_empty() {
            continue;
        }
        for f in &files {
            let parent = f.parent().expect("a part lies in a folder").to_owned();
            if !out.folders.contains(&parent) {
                out.folders.push(parent);
            }
        }
        out.tables.insert(table, files);
    }
    Ok(out)
}

/// The `*.parquet` files of a table folder of the dataset, which must be the folder itself (no
/// symlink out) holding regular files (no symlinks), in name order.
fn own_parts(folder: &Path) -> Result<Vec<PathBuf>, ExposeError> {
    let canonical = std::fs::canonicalize(folder).map_err(|e| refuse(folder, e.to_string()))?;
    if canonical != folder || !std::fs::symlink_metadata(folder).is_ok_and(|m| m.is_dir()) {
        return Err(refuse(
            folder,
            format!(
                "the table folder leads out of the dataset (to {})",
                canonical.display()
            ),
        ));
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(|e| refuse(folder, e.to_string()))? {
        let entry = entry.map_err(|e| refuse(folder, e.to_string()))?;
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(|e| refuse(&path, e.to_string()))?;
        if !meta.is_file() {
            return Err(refuse(
                &path,
                "not a regular file (a symlink or a folder); a table part must be the file itself",
            ));
        }
        files.push(path);
    }
    files.sort();
    Ok(files)
}

/// A linked shard: its canonical folder and the parts its own manifest lists, per table.
struct Shard {
    dir: PathBuf,
    parts: BTreeMap<String, Vec<String>>,
}

/// The shards of a link section, each checked: a relative path, a folder within the confinement,
/// its manifest the one the link recorded (sha256).
fn shards(root: &Path, section: &Value, scope: &Confinement) -> Result<Vec<Shard>, ExposeError> {
    let manifest = root.join("manifest.json");
    let list = section
        .get("shards")
        .and_then(Value::as_array)
        .ok_or_else(|| refuse(&manifest, "the link section lists no shards"))?;
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        let rel = s.get("path").and_then(Value::as_str).unwrap_or_default();
        let want = s
            .get("manifest_sha256")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if rel.is_empty() || Path::new(rel).is_absolute() {
            return Err(refuse(
                &manifest,
                format!("linked shard {rel:?}: not a path relative to the dataset"),
            ));
        }
        let dir = std::fs::canonicalize(root.join(rel))
            .map_err(|e| refuse(&root.join(rel), format!("linked shard: {e}")))?;
        scope.check(&dir, "a linked shard")?;
        let shard_manifest = dir.join("manifest.json");
        let bytes = std::fs::read(&shard_manifest)
            .map_err(|e| refuse(&shard_manifest, format!("linked shard {rel}: {e}")))?;
        let found: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if found != want {
            return Err(refuse(
                &shard_manifest,
                format!(
                    "linked shard {rel} was changed after the link (its manifest's sha256 is {found}, the link recorded {want}): merge --link again"
                ),
            ));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| refuse(&shard_manifest, format!("not JSON: {e}")))?;
        let mut parts = BTreeMap::new();
        if let Some(tables) = value.get("tables").and_then(Value::as_object) {
            for (name, t) in tables {
                let listed = t
                    .get("parts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.get("path").and_then(Value::as_str).map(str::to_owned))
                    .collect();
                parts.insert(name.clone(), listed);
            }
        }
        out.push(Shard { dir, parts });
    }
    Ok(out)
}

/// The parts a linked dataset's manifest lists for `table`, each of which must resolve to a part
/// its shard's own manifest lists, as a regular file in that shard's table folder.
fn linked_parts(
    root: &Path,
    manifest_path: &Path,
    manifest: &Value,
    table: &str,
    shards: &[Shard],
) -> Result<Vec<PathBuf>, ExposeError> {
    let Some(listed) = manifest
        .get("tables")
        .and_then(|t| t.get(table))
        .and_then(|t| t.get("parts"))
        .and_then(Value::as_array)
    else {
        return Ok(Vec::new());
    };
    let mut files = Vec::with_capacity(listed.len());
    for p in listed {
        let rel = p.get("path").and_then(Value::as_str).unwrap_or_default();
        let bad = |why: &str| {
            refuse(
                manifest_path,
                format!("tables.{table}: linked part {rel:?} {why}"),
            )
        };
        if rel.is_empty() || Path::new(rel).is_absolute() {
            return Err(bad("is not a path relative to the dataset"));
        }
        let lexical = normalize(&root.join(rel)).ok_or_else(|| bad("climbs above the root"))?;
        let shard = shards
            .iter()
            .find(|s| {
                lexical
                    .strip_prefix(&s.dir)
                    .ok()
                    .and_then(|inside| inside.to_str())
                    .is_some_and(|inside| {
                        s.parts
                            .get(table)
                            .is_some_and(|own| own.iter().any(|o| o == inside))
                    })
            })
            .ok_or_else(|| {
                bad("is not a part of the table that a linked shard's own manifest lists")
            })?;
        let meta = std::fs::symlink_metadata(&lexical)
            .map_err(|e| refuse(&lexical, format!("linked part: {e}")))?;
        let canonical =
            std::fs::canonicalize(&lexical).map_err(|e| refuse(&lexical, e.to_string()))?;
        if !meta.is_file()
            || canonical != lexical
            || canonical.parent() != Some(&shard.dir.join(table))
        {
            return Err(refuse(
                &lexical,
                format!(
                    "linked part is not a regular file in the shard's {table} folder {}",
                    shard.dir.join(table).display()
                ),
            ));
        }
        files.push(canonical);
    }
    Ok(files)
}

/// `path` with `.` and `..` resolved lexically (None when `..` climbs above the root).
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }

    fn sha(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A shard with one residues part, and a linked dataset over it listing `part`.
    fn linked(dir: &Path, part: &str) -> PathBuf {
        let shard_manifest =
            br#"{"tables":{"residues":{"parts":[{"path":"residues/part-00000.parquet"}]}}}"#;
        write(&dir.join("shard-0/manifest.json"), shard_manifest);
        write(&dir.join("shard-0/residues/part-00000.parquet"), b"PAR1");
        let ds = dir.join("all");
        let manifest = serde_json::json!({
            "tables": {"residues": {"parts": [{"path": part}]}},
            "link": {"shards": [{"path": "../shard-0", "manifest_sha256": sha(shard_manifest)}]},
        });
        write(&ds.join("manifest.json"), manifest.to_string().as_bytes());
        ds
    }

    #[test]
    fn a_linked_part_must_be_one_its_shard_lists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ds = linked(dir.path(), "../shard-0/residues/part-00000.parquet");
        let ok = resolve(&ds, &Confinement::default()).expect("a proper link");
        let shard = std::fs::canonicalize(dir.path().join("shard-0")).expect("canonical");
        assert_eq!(
            ok.tables["residues"],
            [shard.join("residues/part-00000.parquet")]
        );
        assert_eq!(ok.folders, [shard.join("residues")]);

        let dir = tempfile::tempdir().expect("tempdir");
        let ds = linked(dir.path(), "../../../../../../../../etc/passwd");
        let e = resolve(&ds, &Confinement::default()).expect_err("escape");
        assert!(e.to_string().contains("linked part"), "{e}");
        let ds = linked(dir.path(), "../shard-0/manifest.json");
        let e = resolve(&ds, &Confinement::default()).expect_err("not a part");
        assert!(e.to_string().contains("not a part of the table"), "{e}");
    }

    #[test]
    fn a_shard_changed_after_the_link_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ds = linked(dir.path(), "../shard-0/residues/part-00000.parquet");
        write(
            &dir.path().join("shard-0/manifest.json"),
            br#"{"tables":{}}"#,
        );
        let e = resolve(&ds, &Confinement::default()).expect_err("changed");
        assert!(
            e.to_string()
                .contains("linked shard ../shard-0 was changed after the link"),
            "{e}"
        );
    }

    #[test]
    fn symlinks_out_of_a_table_folder_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ds = dir.path().join("ds");
        write(&ds.join("manifest.json"), b"{}");
        write(&ds.join("proteins/part-00000.parquet"), b"PAR1");
        std::fs::create_dir_all(ds.join("residues")).expect("mkdir");
        std::os::unix::fs::symlink("/etc/passwd", ds.join("residues/part-00000.parquet"))
            .expect("symlink");
        let e = resolve(&ds, &Confinement::default()).expect_err("symlink");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        std::fs::remove_file(ds.join("residues/part-00000.parquet")).expect("rm");
        std::fs::remove_dir(ds.join("residues")).expect("rmdir");
        std::os::unix::fs::symlink("/etc", ds.join("residues")).expect("symlink");
        let e = resolve(&ds, &Confinement::default()).expect_err("folder symlink");
        assert!(e.to_string().contains("leads out of the dataset"), "{e}");
    }

    #[test]
    fn the_artifact_store_and_folders_outside_the_data_root_are_never_datasets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        let ds = root.join("artifacts/1/run/artifacts/ds");
        write(&ds.join("manifest.json"), b"{}");
        let scope = Confinement {
            below: Some(root.clone()),
            never: vec![root.join("artifacts")],
        };
        let e = resolve(&ds, &scope).expect_err("artifact store");
        assert!(e.to_string().contains("inside the artifact store"), "{e}");
        let other = tempfile::tempdir().expect("tempdir");
        write(&other.path().join("manifest.json"), b"{}");
        let e = resolve(other.path(), &scope).expect_err("outside");
        assert!(
            e.to_string().contains("not below the server's --data-root"),
            "{e}"
        );
    }
}
