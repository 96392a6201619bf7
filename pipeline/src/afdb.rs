//! AlphaFold DB files: which copy of a model is the protein, and which database version a dataset
//! holds.
//!
//! AFDB's proteome tars hold every model twice, `AF-<accession>-F<n>-model_v<k>.cif.gz` and
//! `….pdb.gz`; both give the same protein (the accession). One model is one protein: among copies
//! of a protein, the file of the **newest AFDB version** wins, and within a version the **mmCIF**
//! file (AFDB's primary format, with the `_ma_` metadata the PDB file lacks), whatever the order
//! of the members in the archive; other duplicates keep the first in input order, as before. The
//! versions differ (v1–v6 re-predicted models and changed fragments; the reference's v2 tarballs
//! are gone), so the manifest records how many proteins came from each (`alphafold_db`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What an AlphaFold DB file name says: `AF-<accession>-F<fragment>-model_v<version>.<ext>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfdbName {
    pub accession: String,
    pub fragment: u32,
    /// `model_vN`; `None` when the name has no version.
    pub version: Option<u32>,
    pub mmcif: bool,
}

impl AfdbName {
    /// Parses the last path component of `source` (an archive member or a file path).
    pub fn parse(source: &str) -> Option<AfdbName> {
        let name = source.rsplit('/').next().unwrap_or(source);
        let lower = name.to_ascii_lowercase();
        let base = lower.strip_suffix(".gz").unwrap_or(&lower);
        let (stem, mmcif) = if let Some(s) = base.strip_suffix(".cif") {
            (s, true)
        } else if let Some(s) = base.strip_suffix(".pdb") {
            (s, false)
        } else {
            return None;
        };
        // The original case of the accession, at the same offsets as the lower-cased stem.
        let stem = &name[..stem.len()];
        let rest = stem.strip_prefix("AF-")?;
        let mut parts = rest.split('-');
        let accession = parts.next().filter(|a| !a.is_empty())?.to_owned();
        let fragment = parts.next()?.strip_prefix('F')?.parse().ok()?;
        let version = match parts.next() {
            None => None,
            Some(m) => Some(m.strip_prefix("model_v")?.parse().ok()?),
        };
        if parts.next().is_some() {
            return None;
        }
        Some(AfdbName {
            accession,
            fragment,
            version,
            mmcif,
        })
    }
}

/// The sort key that picks among copies of one protein (smaller first, then input order): AFDB
/// files by newest version, then mmCIF before PDB; every other file after them, in input order.
pub fn preference(source: &str) -> (u32, u8) {
    match AfdbName::parse(source) {
        Some(n) => (u32::MAX - 1 - n.version.unwrap_or(0), u8::from(!n.mmcif)),
        None => (u32::MAX, 0),
    }
}

/// The `alphafold_db` section of a manifest: proteins per AFDB version (`v4`, or `unversioned`)
/// among the kept proteins whose file is an AFDB model, and the rule that chose among copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfdbSection {
    pub versions: BTreeMap<String, usize>,
    pub one_model_one_protein: String,
}

impl AfdbSection {
    /// The section for the kept proteins' source names; `None` when none is an AFDB file (the
    /// manifest then has no such section).
    pub fn of<'a>(sources: impl IntoIterator<Item = &'a str>) -> Option<AfdbSection> {
        let mut versions = BTreeMap::new();
        for s in sources {
            if let Some(n) = AfdbName::parse(s) {
                let key = n
                    .version
                    .map_or_else(|| "unversioned".to_owned(), |v| format!("v{v}"));
                *versions.entry(key).or_insert(0) += 1;
            }
        }
        (!versions.is_empty()).then(|| AfdbSection {
            versions,
            one_model_one_protein:
                "among copies of a protein: the newest AFDB version, then mmCIF over PDB, then input order"
                    .into(),
        })
    }

    /// Whether the dataset mixes AFDB versions (worth a warning: they differ).
    pub fn mixed(&self) -> bool {
        self.versions.len() > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_order_the_copies() {
        let n = AfdbName::parse("UP000005640_9606_HUMAN_v4/AF-Q5VSL9-F1-model_v4.cif.gz")
            .expect("afdb");
        assert_eq!(
            n,
            AfdbName {
                accession: "Q5VSL9".into(),
                fragment: 1,
                version: Some(4),
                mmcif: true
            }
        );
        assert_eq!(
            AfdbName::parse("AF-A0A024R1R8-F2.pdb").map(|n| (n.fragment, n.version)),
            Some((2, None))
        );
        for not in [
            "1A8O.pdb",
            "AF-Q5VSL9-F1-model_v4.json",
            "AF-Q5VSL9-X1-model_v4.pdb",
            "AF--F1.pdb",
            "AF-Q-F1-model_vx.cif",
        ] {
            assert_eq!(AfdbName::parse(not), None, "{not}");
        }
        let mut copies = [
            "AF-Q-F1-model_v3.cif.gz",
            "AF-Q-F1-model_v4.pdb.gz",
            "q.pdb",
            "AF-Q-F1-model_v4.cif.gz",
        ];
        copies.sort_by_key(|s| preference(s));
        assert_eq!(
            copies,
            [
                "AF-Q-F1-model_v4.cif.gz",
                "AF-Q-F1-model_v4.pdb.gz",
                "AF-Q-F1-model_v3.cif.gz",
                "q.pdb"
            ]
        );
    }

    #[test]
    fn the_section_counts_versions_and_is_absent_without_afdb_files() {
        assert_eq!(AfdbSection::of(["1A8O.pdb", "x/2.cif"]), None);
        let s = AfdbSection::of([
            "AF-A-F1-model_v4.cif.gz",
            "AF-B-F1-model_v4.cif.gz",
            "AF-C-F1-model_v2.pdb",
            "1A8O.pdb",
        ])
        .expect("section");
        assert_eq!(
            s.versions,
            BTreeMap::from([("v2".to_owned(), 1), ("v4".to_owned(), 2)])
        );
        assert!(s.mixed());
    }
}
