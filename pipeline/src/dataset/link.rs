//! Linked datasets (`fusionprot merge --link`): a manifest over the shards' own parts, nothing
//! copied, for sets too large to rewrite. The manifest's `tables` list the shards' parts by paths
//! relative to the linked folder (`../shard-1/residues/part-00000.parquet`), shard after shard in
//! index order, and a `link` section names each shard with the sha256 of its manifest.
//!
//! Every reader finds a table's parts through [`crate::dataset::read::parts`], which falls back to the
//! manifest's list where the dataset has no table folder: training, embedding, `show`, `split`
//! and SQL read a linked dataset as they read a copied one. A table written later into the linked
//! folder (`split` writes `splits/`) is a normal folder there.
//!
//! What a link cannot do without rewriting rows is refused before anything is written: a protein
//! id that is duplicated across shards (the single run drops the later one) or whose id or entry
//! changes under the whole run's path-derived naming. Rows are in shard order, each shard sorted
//! by `protein_id`, not sorted across shards: the same proteins with the same rows as the copying
//! merge, in another order, so not byte-identical to one `prepare` (no link can be).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::dataset::part::PartInfo;
use crate::dataset::part::TableEntry;
use crate::dataset::schema::Table;

/// The key of the manifest section of a linked dataset.
pub const SECTION: &str = "link";

/// A table of a shard as its manifest lists it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ShardTable {
    pub parts: Vec<PartInfo>,
}

/// `to` relative to the folder `from` (both absolute and canonical).
pub(crate) fn relative(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

/// One shard as the link section records it.
pub(crate) struct LinkedShard<'a> {
    pub index: usize,
    /// Canonical path of the shard folder.
    pub dir: PathBuf,
    pub tables: &'a BTreeMap<String, ShardTable>,
}

/// The linked dataset's `tables` (the shards' parts, paths relative to `out`) and its `link`
/// section. `out` and the shards are canonical paths; `shards` in index order.
///
/// # Errors
/// An unreadable shard manifest, or a shard without one of the prepared tables.
pub(crate) fn tables(
    out: &Path,
    shards: &[LinkedShard<'_>],
) -> Result<(BTreeMap<&'static str, TableEntry>, Value), String> {
    let mut tables = BTreeMap::new();
    for t in Table::PREPARED {
        let mut parts = Vec::new();
        for s in shards {
            let entry = s.tables.get(t.name()).ok_or_else(|| {
                format!(
                    "{}: its manifest lists no {} table",
                    s.dir.display(),
                    t.name()
                )
            })?;
            let base = relative(out, &s.dir);
            for p in &entry.parts {
                let mut linked = p.clone();
                linked.path = base.join(&p.path).to_string_lossy().replace('\\', "/");
                parts.push(linked);
            }
        }
        tables.insert(t.name(), TableEntry::new(t, parts));
    }
    let mut listed = Vec::new();
    for s in shards {
        let manifest = s.dir.join("manifest.json");
        let (_, sha256) = crate::dataset::write::sha256_file(&manifest)
            .map_err(|e| format!("{}: {e}", manifest.display()))?;
        listed.push(json!({
            "index": s.index,
            "path": relative(out, &s.dir).to_string_lossy(),
            "manifest_sha256": sha256,
        }));
    }
    let section = json!({
        "shards": listed,
        "row_order": "shard by shard, each sorted by protein_id",
    });
    Ok((tables, section))
}

/// A linked dataset whose shards are not the ones it linked.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the link section lists no shards")]
    NoShards,
    #[error("linked shard {shard}: {source}")]
    Unreadable {
        shard: String,
        source: crate::dataset::write::WriteError,
    },
    #[error(
        "linked shard {shard} was changed after the link (its manifest's sha256 is {found}, the link recorded {recorded}): merge --link again"
    )]
    Changed {
        shard: String,
        found: String,
        recorded: String,
    },
}

/// Checks that the shards a linked dataset lists still hold the manifests it linked (a shard
/// prepared again would change what the link's parts mean). None for a dataset that is not
/// linked; the shards checked otherwise.
///
/// # Errors
/// A shard whose manifest is gone or changed, named.
pub fn verify_shards(dataset: &Path, manifest: &Value) -> Result<Option<usize>, LinkError> {
    let Some(section) = manifest.get(SECTION) else {
        return Ok(None);
    };
    let shards = section
        .get("shards")
        .and_then(Value::as_array)
        .ok_or(LinkError::NoShards)?;
    for s in shards {
        let rel = s.get("path").and_then(Value::as_str).unwrap_or_default();
        let want = s
            .get("manifest_sha256")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let path = dataset.join(rel).join("manifest.json");
        let (_, found) =
            crate::dataset::write::sha256_file(&path).map_err(|source| LinkError::Unreadable {
                shard: rel.to_owned(),
                source,
            })?;
        if found != want {
            return Err(LinkError::Changed {
                shard: rel.to_owned(),
                found,
                recorded: want.to_owned(),
            });
        }
    }
    Ok(Some(shards.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_to_the_common_folder() {
        assert_eq!(
            relative(Path::new("/w/ds/all"), Path::new("/w/ds/shard-1")),
            PathBuf::from("../shard-1")
        );
        assert_eq!(
            relative(Path::new("/w/all"), Path::new("/x/s")),
            PathBuf::from("../../x/s")
        );
        assert_eq!(
            relative(Path::new("/w"), Path::new("/w/s")),
            PathBuf::from("s")
        );
    }
}
