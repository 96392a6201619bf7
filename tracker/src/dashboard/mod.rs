//! What the web dashboard reads, computed on the server: pages of the runs table with only the
//! columns on screen (`query`), groups with mean ± sd over every matching run (`groups`), and
//! curves downsampled to what a chart can show while keeping what matters (`series`).

pub mod breakdown;
pub mod compare;
pub mod curve;
pub mod groups;
pub mod query;
pub mod series;
pub mod stats;

pub use query::{Against, Column, Selection, Summary, lower_is_better};
