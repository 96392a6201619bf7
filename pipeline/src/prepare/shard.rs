//! `prepare --shard I/N`: which input units a shard takes, and what it records so that
//! `fusionprot merge` ([`crate::prepare::merge`]) can rebuild exactly what one `prepare` over all inputs
//! writes.
//!
//! - A unit is what [`crate::prepare::input::plan`] lists: a structure file or one archive. Unit `u` goes to
//!   shard `sha256(name)[..8] as u64 mod N`, `name` being its path below its input root, so every
//!   node computes the same assignment wherever the data is mounted, and appending inputs does not
//!   move the others.
//! - Sources are ordered by (unit index in the whole plan, place in the unit): the order a single
//!   run reads them in, so duplicate ids and path-derived names resolve the same way.
//! - A shard is a complete dataset; its manifest's `shard` section records its units, every
//!   protein it saw (id before and after its own renames, order key, kept or not), its
//!   path-named sources, and the order keys of its inputs and failures. `merge` redoes the global
//!   steps from these.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::prepare::ids::StemNamed;
use crate::prepare::input::Item;

/// One shard of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// A `--shard` value that is not `I/N` with `0 ≤ I < N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard {0:?}: expected I/N with 0 <= I < N, e.g. 0/8")]
pub struct BadShard(pub String);

impl Shard {
    /// `I/N` with `0 ≤ I < N`.
    ///
    /// # Errors
    /// Anything else, named.
    pub fn parse(text: &str) -> Result<Self, BadShard> {
        let bad = || BadShard(text.to_owned());
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The shard a unit named `name` goes to.
    pub fn of(name: &str, count: usize) -> usize {
        let d = Sha256::digest(name.as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        (u64::from_be_bytes(b) % count as u64) as usize
    }
}

/// How sources are spread: the selector's description, as the manifest records it.
pub const SELECTOR: &str = "sha256(unit name) first 8 bytes big-endian mod count";

/// The units one run reads.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Indices into the whole plan, ascending.
    pub units: Vec<usize>,
    pub shard: Option<Shard>,
    /// Units in the whole plan.
    pub total: usize,
    /// sha256 of the whole plan's unit names, one per line: shards of other inputs differ.
    pub digest: String,
}

impl Plan {
    pub fn new(all: &[Item], shard: Option<Shard>) -> Self {
        let mut h = Sha256::new();
        for item in all {
            h.update(item.name.as_bytes());
            h.update(b"\n");
        }
        let units = (0..all.len())
            .filter(|&u| shard.is_none_or(|s| Shard::of(&all[u].name, s.count) == s.index))
            .collect();
        Plan {
            units,
            shard,
            total: all.len(),
            digest: format!("{:x}", h.finalize()),
        }
    }
}

/// The order key of the `member`-th source of unit `unit` (in the whole plan).
pub fn order_key(unit: usize, member: usize) -> usize {
    (unit << 32) | member
}

/// One protein a shard saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub original_id: String,
    /// Its id in the shard's tables (after the shard's own path-derived renames).
    pub local_id: String,
    pub seq: usize,
    pub sub: usize,
    /// Kept by the shard (else a duplicate there).
    pub kept: bool,
    /// The entry id before the shard renamed it, if it did.
    pub original_entry: Option<String>,
}

/// A path-named source, as [`crate::prepare::ids`] needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Named {
    pub seq: usize,
    pub entry: String,
    pub path: String,
    pub sha256: String,
}

impl From<&StemNamed> for Named {
    fn from(n: &StemNamed) -> Self {
        Named {
            seq: n.seq,
            entry: n.entry.clone(),
            path: n.path.clone(),
            sha256: n.sha256.clone(),
        }
    }
}

impl From<&Named> for StemNamed {
    fn from(n: &Named) -> Self {
        StemNamed {
            seq: n.seq,
            entry: n.entry.clone(),
            path: n.path.clone(),
            sha256: n.sha256.clone(),
        }
    }
}

/// The manifest's `shard` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Section {
    pub index: usize,
    pub count: usize,
    pub selector: String,
    pub units_total: usize,
    pub units_digest: String,
    pub units: Vec<usize>,
    pub entries: Vec<Entry>,
    pub named: Vec<Named>,
    /// Order keys of the manifest's `inputs`, then of its `failures`, in their order.
    pub inputs_seq: Vec<usize>,
    pub failures_seq: Vec<usize>,
}

pub(crate) fn section(
    shard: Shard,
    plan: &Plan,
    entries: &[Entry],
    named: &[StemNamed],
    inputs_seq: &[usize],
    failures_seq: &[usize],
) -> serde_json::Value {
    serde_json::to_value(Section {
        index: shard.index,
        count: shard.count,
        selector: SELECTOR.into(),
        units_total: plan.total,
        units_digest: plan.digest.clone(),
        units: plan.units.clone(),
        entries: entries.to_vec(),
        named: named.iter().map(Named::from).collect(),
        inputs_seq: inputs_seq.to_vec(),
        failures_seq: failures_seq.to_vec(),
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_spread_units_stably() {
        assert_eq!(Shard::parse("2/8"), Ok(Shard { index: 2, count: 8 }));
        for bad in ["8/8", "1", "a/2", "0/0", "-1/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        // Fixed by the name alone: a known value, and every shard gets some of 1,000 names.
        assert_eq!(Shard::of("1abc.pdb", 1), 0);
        let mut seen = [0usize; 8];
        for i in 0..1000 {
            seen[Shard::of(&format!("AF-P{i:05}-F1-model_v4.cif.gz"), 8)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 80), "{seen:?}");
        assert!(order_key(1, 0) > order_key(0, 5_000_000));
    }
}
