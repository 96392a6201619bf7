//! The tracking client the trainer logs through (blocking API; no tch here).
//!
//! - `http://HOST:PORT` talks to `fusionprot serve` (or any MLflow server) over the REST API;
//!   `sqlite:///path/fusionprot.db` writes straight into that database through the same store
//!   code the server uses, with no server at all.
//! - Metrics are buffered and sent as `log-batch` requests (≤ 1000 per batch); failed requests are
//!   retried with exponential backoff.
//! - When the server stays unreachable, every operation goes to an append-only spool file (JSON
//!   lines, each with a unique id, fsynced) and logging carries on; runs created meanwhile get a
//!   local id. The spool is replayed, in order, at the next successful contact or by
//!   `fusionprot sync FILE`. Replay is exactly-once: replayed ids are recorded in `FILE.done`,
//!   metric points, params and tags are idempotent on the server, and a spooled run is found
//!   again by its `fusionprot.local_run_id` tag instead of being created twice.

mod connection;
mod spool;

pub use connection::Client;
pub use spool::{ReplayError, ReplaySummary, replay, replay_with};
