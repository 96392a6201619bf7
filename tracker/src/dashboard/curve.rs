//! One metric's curve for the dashboard: its whole history (through the store's cache of long
//! histories), downsampled by `series`.

use serde_json::{Value, json};

use super::query::{lower_is_better, number};
use super::series::{self, Point};
use crate::error::TrackerError;
use crate::model::loaded;
use crate::store::{CacheUse, Store};

impl Store {
    /// One metric of one run, downsampled to about `points` points keeping the first, last,
    /// every bucket's extremes and the point at the step where `select` (another metric, such as
    /// the valid one of this test metric) is best.
    ///
    /// Also says how the store's cache of long histories served the read (the route sends it as
    /// the `x-fusionprot-cache` header, outside the body so the ETag stays the data's).
    ///
    /// # Errors
    /// An unknown run, a budget out of range.
    pub async fn dashboard_series(
        &self,
        run_id: &str,
        key: &str,
        points: usize,
        select: Option<&str>,
    ) -> Result<(Value, CacheUse), TrackerError> {
        if !(4..=100_000).contains(&points) {
            return Err(TrackerError::invalid("points must be 4 to 100000"));
        }
        // the run must exist (its row only: not every metric, param and tag of it)
        self.run_info(run_id).await?;
        let points_of = |rows: &[(i64, i64, f64, i64)]| {
            rows.iter()
                .map(|&(step, timestamp, value, nan)| Point {
                    step,
                    timestamp,
                    value: loaded(value, nan != 0),
                })
                .collect::<Vec<_>>()
        };
        let (rows, cache) = self.metric_points(run_id, key).await?;
        let pts = points_of(&rows);
        let select = select.filter(|s| !s.is_empty()).unwrap_or(key);
        let other;
        let chooser = if select == key {
            &pts
        } else {
            other = points_of(&self.metric_points(run_id, select).await?.0);
            &other
        };
        let maximize = !lower_is_better(select);
        let best_step = series::best(chooser, maximize).map(|i| chooser[i].step);
        let keep = best_step.and_then(|s| pts.iter().rposition(|p| p.step == s));
        let idx = series::downsample(&pts, points, keep);
        let v = json!({
            "run_id": run_id,
            "key": key,
            "total_points": pts.len(),
            "step": idx.iter().map(|&i| pts[i].step).collect::<Vec<_>>(),
            "timestamp": idx.iter().map(|&i| pts[i].timestamp).collect::<Vec<_>>(),
            "value": idx.iter().map(|&i| number(pts[i].value)).collect::<Vec<_>>(),
            "select": select,
            "maximize": maximize,
            "best_step": best_step,
        });
        Ok((v, cache))
    }
}
