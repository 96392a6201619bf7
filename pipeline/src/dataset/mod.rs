//! A prepared dataset's files and how they are read and written: the table schemas (`schema`),
//! one part's description (`part`), the prepared tables' row buffers (`batches`), the Parquet
//! writers (`write`), the readers and their checks (`read`), column access for the trainer and
//! SQL (`access`), `manifest.json` (`manifest`), linked datasets over shards (`link`), the
//! journaled swap that replaces tables (`swap`) and the `splits` table (`splits`). Nothing here parses a structure file or runs a split.
//!
//! Dependencies point one way: `schema` ← `batches`, `part` ← `write` ← `link` ← `read`, `manifest`.

pub mod access;
pub(crate) mod batches;
pub mod link;
pub mod manifest;
pub mod part;
pub mod read;
pub mod schema;
pub mod splits;
pub mod swap;
pub mod terms;
pub(crate) mod write;
