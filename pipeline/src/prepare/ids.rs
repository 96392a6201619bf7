//! Entry ids for files that are named only by their file stem (no PDB id inside, not an
//! AlphaFold DB model). When such files in different places share a stem — AlphaFold2's
//! `t1/ranked_0.pdb` and `t2/ranked_0.pdb`, ColabFold job folders — each distinct file is named
//! after the end of its path instead, so none is dropped as a duplicate.
//!
//! The rule, per group of sources with the same stem-derived entry id:
//! - files with identical bytes (sha256) are one structure: the first in input order names them
//!   all, so the later ones stay duplicates of it;
//! - each file's path is the input as given, then the path below it, archive members appended
//!   (`runs/t1/ranked_0.pdb`, `set.zip/jobA/x.pdb`), split at `/`, empty and `.` parts dropped,
//!   the structure extensions (`.pdb`, `.cif`, …, `.gz`) removed from the last part;
//! - when at least two distinct files have different paths, every file of the group takes as
//!   entry id the last `k` parts of its path joined by `/`, with the smallest `k ≥ 2` that gives
//!   different ids to any two distinct files whose paths differ (`t1/ranked_0`, `t2/ranked_0`).
//!   Files whose whole paths are equal (`x/m.pdb` and `x/m.cif`) keep one id: duplicates.
//!
//! Nothing here depends on how many workers parsed the files: only on the inputs and their order.

use std::collections::{HashMap, HashSet};

use crate::protein::file_stem;

/// A source whose entry id is its file stem.
#[derive(Debug, Clone)]
pub(crate) struct StemNamed {
    /// Input order: the tie-break for which file names a group of identical ones.
    pub seq: usize,
    /// The stem-derived entry id the file's proteins got.
    pub entry: String,
    /// The input as given, then the path below it (`input::Source::path`).
    pub path: String,
    pub sha256: String,
}

/// A changed entry id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rename {
    pub from: String,
    pub to: String,
}

impl Rename {
    /// The protein id under the new entry id: `<entry>` or `<entry>_<chain>` keeps its suffix.
    pub fn protein_id(&self, protein_id: &str) -> String {
        match protein_id.strip_prefix(self.from.as_str()) {
            Some(rest) => format!("{}{rest}", self.to),
            None => protein_id.to_owned(),
        }
    }
}

/// New entry ids by source (input order `seq`), for the groups the rule renames.
pub(crate) fn disambiguate(mut named: Vec<StemNamed>) -> HashMap<usize, Rename> {
    named.sort_by(|a, b| (&a.entry, a.seq).cmp(&(&b.entry, b.seq)));
    let mut out = HashMap::new();
    for group in named.chunk_by(|a, b| a.entry == b.entry) {
        // One representative per distinct content, the first in input order.
        let mut reps: Vec<&StemNamed> = Vec::new();
        let mut rep_of = Vec::with_capacity(group.len());
        for m in group {
            let i = reps
                .iter()
                .position(|r| r.sha256 == m.sha256)
                .unwrap_or_else(|| {
                    reps.push(m);
                    reps.len() - 1
                });
            rep_of.push(i);
        }
        let parts: Vec<Vec<&str>> = reps.iter().map(|r| path_parts(&r.path)).collect();
        let distinct: HashSet<&Vec<&str>> = parts.iter().collect();
        if distinct.len() < 2 {
            continue;
        }
        let longest = parts.iter().map(Vec::len).max().unwrap_or(1);
        let k = (2..=longest)
            .find(|&k| tells_apart(&parts, k))
            .unwrap_or(longest);
        for (m, r) in group.iter().zip(rep_of) {
            out.insert(
                m.seq,
                Rename {
                    from: m.entry.clone(),
                    to: suffix(&parts[r], k),
                },
            );
        }
    }
    out
}

fn path_parts(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if let Some(last) = parts.last_mut() {
        *last = file_stem(last);
    }
    parts
}

fn suffix(parts: &[&str], k: usize) -> String {
    parts[parts.len().saturating_sub(k)..].join("/")
}

/// Whether the last `k` parts differ for every two paths that differ.
fn tells_apart(parts: &[Vec<&str>], k: usize) -> bool {
    let mut seen: HashMap<String, &Vec<&str>> = HashMap::new();
    parts.iter().all(|p| match seen.get(&suffix(p, k)) {
        Some(q) => *q == p,
        None => {
            seen.insert(suffix(p, k), p);
            true
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(seq: usize, path: &str, sha: &str) -> StemNamed {
        StemNamed {
            seq,
            entry: file_stem(path).to_owned(),
            path: path.to_owned(),
            sha256: sha.to_owned(),
        }
    }

    fn ids(v: Vec<StemNamed>) -> Vec<(usize, String)> {
        let mut got: Vec<(usize, String)> = disambiguate(v)
            .into_iter()
            .map(|(s, r)| (s, r.to))
            .collect();
        got.sort();
        got
    }

    #[test]
    fn alphafold2_job_folders_are_told_apart_by_their_folder() {
        let got = ids(vec![
            named(0, "out/t1/ranked_0.pdb", "a"),
            named(1, "out/t1/unrelaxed_model_1.pdb", "b"),
            named(2, "out/t2/ranked_0.pdb", "c"),
            named(3, "out/t2/unrelaxed_model_1.pdb", "d"),
        ]);
        assert_eq!(
            got,
            [
                (0, "t1/ranked_0".into()),
                (1, "t1/unrelaxed_model_1".into()),
                (2, "t2/ranked_0".into()),
                (3, "t2/unrelaxed_model_1".into())
            ]
        );
    }

    #[test]
    fn the_same_folders_given_separately_or_as_archive_members_get_the_same_ids() {
        let separately = ids(vec![
            named(0, "t1/ranked_0.pdb", "a"),
            named(1, "./t2/ranked_0.pdb", "b"),
        ]);
        let archived = ids(vec![
            named(0, "/data/runs.tar/t1/ranked_0.pdb.gz", "a"),
            named(1, "/data/runs.tar/t2/ranked_0.pdb.gz", "b"),
        ]);
        assert_eq!(separately, archived);
        assert_eq!(separately[0].1, "t1/ranked_0");
    }

    #[test]
    fn a_longer_suffix_is_taken_only_when_needed() {
        let got = ids(vec![
            named(0, "a/x/m.pdb", "1"),
            named(1, "b/x/m.pdb", "2"),
            named(2, "c/m.pdb", "3"),
        ]);
        assert_eq!(
            got,
            [(0, "a/x/m".into()), (1, "b/x/m".into()), (2, "c/m".into())]
        );
    }

    #[test]
    fn identical_files_keep_one_id_so_they_stay_duplicates() {
        let got = ids(vec![
            named(0, "t1/ranked_0.pdb", "same"),
            named(1, "t2/ranked_0.pdb", "other"),
            named(2, "t3/ranked_0.pdb", "same"),
        ]);
        assert_eq!(
            got,
            [
                (0, "t1/ranked_0".into()),
                (1, "t2/ranked_0".into()),
                (2, "t1/ranked_0".into())
            ]
        );
        // Identical bytes only, or one path in two formats: nothing to tell apart.
        assert!(ids(vec![named(0, "a/m.pdb", "s"), named(1, "b/m.pdb", "s")]).is_empty());
        assert!(ids(vec![named(0, "x/m.pdb", "1"), named(1, "x/m.cif", "2")]).is_empty());
        assert!(ids(vec![named(0, "x/m.pdb", "1")]).is_empty());
    }

    #[test]
    fn protein_ids_keep_their_chain_suffix() {
        let r = Rename {
            from: "ranked_0".into(),
            to: "t1/ranked_0".into(),
        };
        assert_eq!(r.protein_id("ranked_0_B"), "t1/ranked_0_B");
        assert_eq!(r.protein_id("ranked_0"), "t1/ranked_0");
    }

    #[test]
    fn the_result_does_not_depend_on_the_order_groups_arrive_in() {
        let v = vec![
            named(3, "q/t2/ranked_0.pdb", "c"),
            named(0, "q/t1/ranked_0.pdb", "a"),
            named(2, "q/t1/ranked_0.pdb", "a"),
        ];
        let mut w = v.clone();
        w.reverse();
        assert_eq!(ids(v), ids(w));
    }
}
