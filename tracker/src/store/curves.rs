//! Whole metric histories for the dashboard's curves, through the cache (`cache.rs`).

use std::sync::Arc;

use sqlx::Row;

use super::Store;
use super::cache::{CacheUse, CurveCache, Stored};
use crate::error::TrackerError;

impl Store {
    /// The stored points of one metric after `after` (all when `None`), in key order.
    async fn history_rows(
        &self,
        run_id: &str,
        key: &str,
        after: Option<Stored>,
    ) -> Result<Vec<Stored>, TrackerError> {
        let sql = match after {
            None => {
                "SELECT step, timestamp, value, is_nan FROM metrics WHERE run_uuid = ? AND key = ? ORDER BY step, timestamp, value, is_nan"
            }
            Some(_) => {
                "SELECT step, timestamp, value, is_nan FROM metrics WHERE run_uuid = ? AND key = ? AND (step, timestamp, value, is_nan) > (?, ?, ?, ?) ORDER BY step, timestamp, value, is_nan"
            }
        };
        if let Some(pool) = self.sqlite_reader() {
            let mut q = sqlx::query_as::<_, Stored>(sql).bind(run_id).bind(key);
            if let Some((s, t, v, n)) = after {
                q = q.bind(s).bind(t).bind(v).bind(n);
            }
            return Ok(q.fetch_all(pool).await?);
        }
        let mut q = self.query(sql).bind(run_id.to_owned()).bind(key.to_owned());
        if let Some((s, t, v, n)) = after {
            q = q.bind(s).bind(t).bind(v).bind(n);
        }
        let rows = q.fetch_all(self.reader()).await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<Result<Vec<Stored>, sqlx::Error>>()?)
    }

    /// One metric's whole history as stored, in key order (step, timestamp, value, is_nan);
    /// through the cache when long: validated by the point count (`latest_metrics.points`, one row), and
    /// extended by the rows past the cached last point when more were logged — so a live run's
    /// curve reads only its new points, and a write from another process or server is seen as
    /// surely as one of ours.
    pub async fn metric_points(
        &self,
        run_id: &str,
        key: &str,
    ) -> Result<(Arc<Vec<Stored>>, CacheUse), TrackerError> {
        let count: Option<i64> = self
            .query_scalar("SELECT points FROM latest_metrics WHERE run_uuid = ? AND key = ?")
            .bind(run_id.to_owned())
            .bind(key.to_owned())
            .fetch_optional(self.reader())
            .await?;
        let count = usize::try_from(count.unwrap_or(0)).unwrap_or(0);
        let cached = if count >= CurveCache::MIN_POINTS {
            self.curves()
                .lock()
                .ok()
                .and_then(|mut c| c.get(run_id, key))
        } else {
            None
        };
        if let Some((points, last)) = cached {
            if points.len() == count {
                return Ok((points, CacheUse::Hit));
            }
            if points.len() < count {
                let more = self.history_rows(run_id, key, Some(last)).await?;
                // Only appends extend: a point logged before the cached last one (or a
                // concurrent write between the count and this read) makes the counts differ,
                // and the whole history is read again.
                if points.len() + more.len() == count {
                    let mut all = Vec::with_capacity(count);
                    all.extend_from_slice(&points);
                    all.extend_from_slice(&more);
                    let all = Arc::new(all);
                    let last = *more.last().unwrap_or(&last);
                    if let Ok(mut c) = self.curves().lock() {
                        c.put(run_id, key, all.clone(), last);
                    }
                    return Ok((all, CacheUse::Extended));
                }
            }
        }
        if count < CurveCache::MIN_POINTS {
            return Ok((
                Arc::new(self.history_rows(run_id, key, None).await?),
                CacheUse::Miss,
            ));
        }
        // One whole read of a long history at a time: a reader that waited here finds what the
        // one before it loaded (the warm-up's, or another request's) when it is still current.
        let _loading = self.loads.lock().await;
        let loaded = self
            .curves()
            .lock()
            .ok()
            .and_then(|mut c| c.get(run_id, key));
        if let Some((points, _)) = loaded.filter(|(p, _)| p.len() == count) {
            return Ok((points, CacheUse::Hit));
        }
        let points = Arc::new(self.history_rows(run_id, key, None).await?);
        if let (Some(&last), Ok(mut c)) = (points.last(), self.curves().lock()) {
            c.put(run_id, key, points.clone(), last);
        }
        Ok((points, CacheUse::Miss))
    }

    /// Reads the long histories of the most recently updated metrics into the cache, up to
    /// `budget` points, one at a time (what `serve` does in the background at start, so the
    /// dashboard's first look at a long curve is a cache hit). Returns the histories and points
    /// read.
    ///
    /// # Errors
    /// Database errors.
    pub async fn warm_curves(&self, budget: usize) -> Result<(usize, usize), TrackerError> {
        let rows: Vec<(String, String, i64)> = self
            .query(
                "SELECT run_uuid, key, points FROM latest_metrics WHERE points >= ? \
                 ORDER BY timestamp DESC, run_uuid, key LIMIT 64",
            )
            .bind(CurveCache::MIN_POINTS as i64)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let (mut curves, mut points) = (0, 0);
        for (run, key, n) in rows {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if points + n > budget {
                continue;
            }
            self.metric_points(&run, &key).await?;
            curves += 1;
            points += n;
        }
        Ok((curves, points))
    }
}
