//! Test-only failpoints, read from one place: the `FUSIONPROT_FAILPOINT` environment variable.
//! End-to-end tests use them to crash `prepare` at a chosen step of the table swap, or to give its
//! workers a spill file that fails, so recovery and error paths run in the real binary.
//!
//! Values:
//! - `swap:<step>`: abort the process (no clean-up, as a crash) when the swap reaches `<step>`
//!   (the names are [`crate::dataset::swap`]'s: `journal-written`, `old-moved:proteins`, …).
//! - `swap:<step>=pause`: print `failpoint swap:<step> reached` on stderr and wait there forever,
//!   so a test can `kill -9` the process at a known point.
//! - `spill-file:<path>`: every worker spills to `<path>` instead of its file in the staging
//!   folder (`/dev/full` is a full disk; a path below a regular file cannot be created).
//!
//! Unset (always, outside tests), every check is one comparison against `None`.

use std::path::PathBuf;
use std::sync::OnceLock;

const VAR: &str = "FUSIONPROT_FAILPOINT";

fn value() -> Option<&'static str> {
    static VALUE: OnceLock<Option<String>> = OnceLock::new();
    VALUE
        .get_or_init(|| std::env::var(VAR).ok().filter(|v| !v.is_empty()))
        .as_deref()
}

/// Crashes (or pauses) the process if the failpoint `name` is armed; otherwise does nothing.
pub(crate) fn hit(name: &str) {
    let Some(v) = value() else { return };
    let (point, action) = v.split_once('=').unwrap_or((v, "abort"));
    if point != name {
        return;
    }
    if action == "pause" {
        eprintln!("failpoint {name} reached");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    eprintln!("failpoint {name}: aborting");
    std::process::abort();
}

/// The spill file every worker writes instead of its own, when `spill-file:<path>` is armed.
pub(crate) fn spill_file() -> Option<PathBuf> {
    value()?.strip_prefix("spill-file:").map(PathBuf::from)
}
