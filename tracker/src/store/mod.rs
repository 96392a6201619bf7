//! The system of record: SQLite (a file, the default) or PostgreSQL (a team's server), one
//! writer connection (every write goes through it, in its own transaction that holds the
//! database's write lock, so concurrent clients never meet "database is locked") and a pool of
//! read-only readers. One file per resource; `registry.rs` (crate level) adds datasets and
//! checkpoints; `dialect.rs` holds what differs between the two databases.
//!
//! Durability on SQLite: `synchronous = NORMAL` with WAL. A commit has reached the WAL file (in
//! the OS page cache) when the call returns, so an acknowledged write survives `kill -9` of the
//! server; only an OS crash or power loss could drop the last transactions before the next
//! checkpoint. Use `Durability::Full` (`--sync full`) to fsync every commit and survive those too.
//! On PostgreSQL every commit is flushed to the server's WAL before it is acknowledged
//! (`synchronous_commit = on`, set on the writer connection), which survives all of those.

mod cache;
mod curves;
mod dialect;
mod experiments;
mod inputs;
mod location;
mod metrics;
mod open;
mod runs;
mod search;
mod validate;

pub use cache::{CacheUse, CurveCache, Stored};
pub use dialect::{Dialect, redacted};
pub use location::{DbLocation, LocationError};
pub use metrics::Batch;
pub use open::{Durability, Store};
pub(crate) use runs::require_active;
pub(crate) use search::bind_all;
pub(crate) use validate::{
    check_max_results, page_token, parse_experiment_id, parse_page_token, valid_key,
    valid_metric_time, valid_tag,
};
pub use validate::{limits, now_ms};
