//! The `--jobs` convention shared by subcommands: at least 1, all cores when not given.

use anyhow::bail;

/// Threads to use for `--jobs`.
pub fn resolve(jobs: Option<usize>) -> anyhow::Result<usize> {
    match jobs {
        Some(0) => bail!("--jobs must be at least 1"),
        Some(j) => Ok(j),
        None => Ok(std::thread::available_parallelism().map_or(1, usize::from)),
    }
}
