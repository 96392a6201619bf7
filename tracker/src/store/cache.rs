//! Long metric histories held in memory, by (run, key), for the dashboard's curves: reading a
//! 10⁶-point history costs far more than downsampling it (each row crosses sqlx), so
//! `Store::metric_points` (`curves.rs`) keeps long ones here, validates them against the database
//! on every read and extends them by what was logged since. At most `CurveCache::BUDGET` points
//! are held (least recently read first out), and only histories of at least
//! `CurveCache::MIN_POINTS` points (shorter ones read fast enough).

use std::collections::HashMap;
use std::sync::Arc;

/// A point as stored, in the table's key order: step, timestamp, value, is_nan.
pub type Stored = (i64, i64, f64, i64);

#[derive(Debug)]
struct Entry {
    points: Arc<Vec<Stored>>,
    last: Stored,
    used: u64,
}

/// Long metric histories held in memory, by (run, key).
#[derive(Debug, Default)]
pub struct CurveCache {
    entries: HashMap<(String, String), Entry>,
    points: usize,
    tick: u64,
}

/// How a read found the cache (reported by the series route as `cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Not cached (short, or first read): the whole history was read.
    Miss,
    /// Cached and current.
    Hit,
    /// Cached, and the points logged since were read and appended.
    Extended,
}

impl CacheUse {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheUse::Miss => "miss",
            CacheUse::Hit => "hit",
            CacheUse::Extended => "extended",
        }
    }
}

impl CurveCache {
    /// Points held at most, over all cached histories (32 bytes each: 128 MB).
    pub const BUDGET: usize = 4_000_000;
    /// Histories shorter than this are read each time.
    pub const MIN_POINTS: usize = 20_000;

    pub(super) fn get(&mut self, run: &str, key: &str) -> Option<(Arc<Vec<Stored>>, Stored)> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.entries.get_mut(&(run.to_owned(), key.to_owned()))?;
        e.used = tick;
        Some((e.points.clone(), e.last))
    }

    pub(super) fn put(&mut self, run: &str, key: &str, points: Arc<Vec<Stored>>, last: Stored) {
        let k = (run.to_owned(), key.to_owned());
        if let Some(old) = self.entries.remove(&k) {
            self.points -= old.points.len();
        }
        if points.len() < Self::MIN_POINTS || points.len() > Self::BUDGET {
            return;
        }
        while self.points + points.len() > Self::BUDGET {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.points -= e.points.len();
            }
        }
        self.tick += 1;
        self.points += points.len();
        self.entries.insert(
            k,
            Entry {
                points,
                last,
                used: self.tick,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(n: usize) -> Arc<Vec<Stored>> {
        Arc::new((0..n).map(|i| (i as i64, 0, i as f64, 0)).collect())
    }

    #[test]
    fn the_cache_keeps_long_histories_within_its_budget_dropping_the_least_recently_read() {
        let mut c = CurveCache::default();
        let n = CurveCache::BUDGET / 2;
        c.put("a", "k", pts(n), (0, 0, 0.0, 0));
        c.put("b", "k", pts(n), (0, 0, 0.0, 0));
        assert!(c.get("a", "k").is_some()); // a is now the more recent
        c.put("c", "k", pts(n), (0, 0, 0.0, 0));
        assert!(c.get("b", "k").is_none(), "b, least recently read, went");
        assert!(c.get("a", "k").is_some() && c.get("c", "k").is_some());
        assert!(c.points <= CurveCache::BUDGET);
        c.put(
            "short",
            "k",
            pts(CurveCache::MIN_POINTS - 1),
            (0, 0, 0.0, 0),
        );
        assert!(
            c.get("short", "k").is_none(),
            "short histories are not held"
        );
        c.put("huge", "k", pts(CurveCache::BUDGET + 1), (0, 0, 0.0, 0));
        assert!(c.get("huge", "k").is_none());
        assert!(
            c.get("a", "k").is_some(),
            "an unholdable one evicts nothing"
        );
        // replacing an entry counts its points once
        c.put("a", "k", pts(n), (0, 0, 0.0, 0));
        assert_eq!(c.points, 2 * n);
    }
}
