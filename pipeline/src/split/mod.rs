//! `split`: family-level train / valid / test splits with a certificate. Proteins linked by any pair
//! at or above the identity threshold (all-vs-all MMseqs2 search, then exact re-alignment of every
//! cross-split pair it reports) end up in one connected component, and whole components go to one
//! split; a seeded random audit of cross-split pairs, aligned exactly without any prefilter, checks
//! what the search could have missed. Nothing is written unless the guarantee holds. The identity is
//! GraphPart's by default (identical residues / length of the shorter sequence, no coverage rule),
//! or MMseqs2's with a coverage rule on request ([`Identity`]).

mod align;
mod assign;
mod audit;
mod chunks;
mod config;
mod groups;
mod identity;
mod nearest;
mod output;
mod proteins;
mod report;
mod rng;
mod run;
mod search;
mod separate;
mod significance;
mod striped;
pub mod synthetic;

pub use align::{PairAlignment, align};
pub use chunks::{ChunkSummary, search_chunk};
pub use config::{REMOVED, SPLIT_NAMES, SplitBy, SplitConfig, SplitError};
pub use identity::Identity;
pub use output::sequences_dataset;
pub use report::{AuditRound, IdentityStatement, MaxPair, SplitReport};
pub use run::split;
pub use search::SearchParams;
pub use significance::Significance;
pub use striped::score;
