//! What runs log: metrics, params and tags in atomic batches, and the history of a metric.

use sqlx::Row;

use super::runs::require_active;
use super::{
    Store, check_max_results, limits, page_token, parse_page_token, valid_key, valid_metric_time,
    valid_tag,
};
use crate::error::TrackerError;
use crate::model::{KeyValue, Metric, loaded, stored};

/// What `log_batch` writes, validated as a whole before anything is written.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub metrics: Vec<Metric>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

impl Store {
    /// Logs metrics, params and tags atomically: either all of the batch is stored or none.
    ///
    /// # Errors
    /// Limits, invalid names, a changed param value, or an inactive / unknown run; nothing is
    /// written then.
    pub async fn log_batch(&self, run_id: &str, batch: &Batch) -> Result<(), TrackerError> {
        let n = batch.metrics.len() + batch.params.len() + batch.tags.len();
        if batch.metrics.len() > limits::MAX_METRICS_PER_BATCH
            || batch.params.len() > limits::MAX_PARAMS_PER_BATCH
            || batch.tags.len() > limits::MAX_TAGS_PER_BATCH
            || n > limits::MAX_ENTITIES_PER_BATCH
        {
            return Err(TrackerError::invalid(format!(
                "A batch logging request can contain at most {} metrics, {} params, {} tags and {} items in total; got {} metrics, {} params, {} tags",
                limits::MAX_METRICS_PER_BATCH,
                limits::MAX_PARAMS_PER_BATCH,
                limits::MAX_TAGS_PER_BATCH,
                limits::MAX_ENTITIES_PER_BATCH,
                batch.metrics.len(),
                batch.params.len(),
                batch.tags.len()
            )));
        }
        for (i, m) in batch.metrics.iter().enumerate() {
            valid_key("metric", &m.key)?;
            valid_metric_time(&format!("metrics[{i}]"), m)?;
        }
        let mut seen = std::collections::HashMap::new();
        for p in &batch.params {
            valid_key("param", &p.key)?;
            if p.value.len() > limits::MAX_PARAM_VALUE_LEN {
                return Err(TrackerError::invalid(format!(
                    "Param value for key '{}' is {} characters; the limit is {}",
                    p.key,
                    p.value.len(),
                    limits::MAX_PARAM_VALUE_LEN
                )));
            }
            if let Some(prev) = seen.insert(p.key.as_str(), p.value.as_str())
                && prev != p.value
            {
                return Err(TrackerError::invalid(format!(
                    "Duplicate parameter keys have been submitted with different values: '{}'",
                    p.key
                )));
            }
        }
        for t in &batch.tags {
            valid_tag(t)?;
        }
        let mut tx = self.write_tx().await?;
        require_active(run_id, &self.run_stage(&mut tx, run_id).await?)?;
        // Params: one lookup of the keys already logged, then one multi-row insert.
        if !batch.params.is_empty() {
            let marks = vec!["?"; batch.params.len()].join(",");
            let mut q = self
                .query(&format!(
                    "SELECT key, value FROM params WHERE run_uuid = ? AND key IN ({marks})"
                ))
                .bind(run_id);
            for p in &batch.params {
                q = q.bind(&p.key);
            }
            let existing: std::collections::HashMap<String, String> = q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
                .collect::<Result<_, sqlx::Error>>()?;
            let mut new: Vec<&KeyValue> = Vec::new();
            for p in &batch.params {
                match existing.get(&p.key) {
                    Some(v) if *v != p.value => {
                        return Err(TrackerError::invalid(format!(
                            "Changing param values is not allowed. Param with key='{}' was already logged with value='{v}' for run ID='{run_id}'. Attempted logging new value '{}'.",
                            p.key, p.value
                        )));
                    }
                    Some(_) => {}
                    None if new.iter().any(|n| n.key == p.key) => {}
                    None => new.push(p),
                }
            }
            if !new.is_empty() {
                let rows = vec!["(?, ?, ?)"; new.len()].join(", ");
                let mut q = self.query(&format!(
                    "INSERT INTO params (run_uuid, key, value) VALUES {rows}"
                ));
                for p in new {
                    q = q.bind(run_id).bind(&p.key).bind(&p.value);
                }
                q.execute(&mut *tx).await?;
            }
        }
        if !batch.tags.is_empty() {
            // the last value of a key in the batch wins, as if applied in order
            let mut last: Vec<&KeyValue> = Vec::new();
            for t in &batch.tags {
                last.retain(|x| x.key != t.key);
                last.push(t);
            }
            let rows = vec!["(?, ?, ?)"; last.len()].join(", ");
            let mut q = self.query(&format!(
                "INSERT INTO tags (run_uuid, key, value) VALUES {rows} ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value"
            ));
            for t in &last {
                q = q.bind(run_id).bind(&t.key).bind(&t.value);
            }
            q.execute(&mut *tx).await?;
            if let Some(name) = last.iter().find(|t| t.key == "mlflow.runName") {
                self.query("UPDATE runs SET run_name = ? WHERE run_uuid = ?")
                    .bind(&name.value)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if !batch.metrics.is_empty() {
            // Every point, in multi-row inserts (identical points are stored once), counting
            // per key the points actually stored …
            let mut stored_points: Vec<(String, i64)> = Vec::new();
            for chunk in batch.metrics.chunks(500) {
                let rows = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let mut q = self.query(&format!(
                    "INSERT INTO metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES {rows} ON CONFLICT DO NOTHING{}",
                    if chunk.iter().all(|m| m.key == chunk[0].key) { "" } else { " RETURNING key" }
                ));
                for m in chunk {
                    let (value, is_nan) = stored(m.value);
                    q = q
                        .bind(run_id)
                        .bind(&m.key)
                        .bind(m.step)
                        .bind(m.timestamp)
                        .bind(value)
                        .bind(i64::from(is_nan));
                }
                let mut count = |key: String, added: i64| match stored_points
                    .iter_mut()
                    .find(|(k, _)| *k == key)
                {
                    Some((_, n)) => *n += added,
                    None => stored_points.push((key, added)),
                };
                if chunk.iter().all(|m| m.key == chunk[0].key) {
                    // one key (a curve's points): the count of rows stored is enough
                    let added = q.execute(&mut *tx).await?.rows_affected();
                    count(
                        chunk[0].key.clone(),
                        i64::try_from(added).unwrap_or(i64::MAX),
                    );
                } else {
                    for r in q.fetch_all(&mut *tx).await? {
                        count(r.try_get(0)?, 1);
                    }
                }
            }
            let added = |key: &str| {
                stored_points
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or(0, |(_, n)| *n)
            };
            // … and, per key, the batch's latest point against the stored latest, and the count.
            let mut latest: Vec<(&str, i64, i64, f64, bool)> = Vec::new();
            for m in &batch.metrics {
                let (value, is_nan) = stored(m.value);
                let cand = (m.key.as_str(), m.step, m.timestamp, value, is_nan);
                match latest.iter_mut().find(|l| l.0 == cand.0) {
                    Some(l) => {
                        if (cand.1, cand.2, cand.3) > (l.1, l.2, l.3) {
                            *l = cand;
                        }
                    }
                    None => latest.push(cand),
                }
            }
            for chunk in latest.chunks(500) {
                let rows = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let newer = "(excluded.step, excluded.timestamp, excluded.value) > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)";
                let mut q = self.query(&format!(
                    "INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan, points) VALUES {rows}
                     ON CONFLICT (run_uuid, key) DO UPDATE SET
                       step = CASE WHEN {newer} THEN excluded.step ELSE latest_metrics.step END,
                       timestamp = CASE WHEN {newer} THEN excluded.timestamp ELSE latest_metrics.timestamp END,
                       value = CASE WHEN {newer} THEN excluded.value ELSE latest_metrics.value END,
                       is_nan = CASE WHEN {newer} THEN excluded.is_nan ELSE latest_metrics.is_nan END,
                       points = latest_metrics.points + excluded.points"
                ));
                for (key, step, ts, value, is_nan) in chunk {
                    q = q
                        .bind(run_id)
                        .bind(*key)
                        .bind(*step)
                        .bind(*ts)
                        .bind(*value)
                        .bind(i64::from(*is_nan))
                        .bind(added(key));
                }
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        self.changed(run_id);
        Ok(())
    }

    /// Every logged point of one metric, by timestamp, then step, then value: MLflow's order, so
    /// its pages (`max_results`, `page_token`) hold the same points as MLflow's.
    pub async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: Option<i64>,
        token: Option<&str>,
    ) -> Result<(Vec<Metric>, Option<String>), TrackerError> {
        self.run_info(run_id).await?;
        let offset = parse_page_token(token)?;
        let max = match max_results {
            None => i64::MAX - 1,
            Some(m) => check_max_results(Some(m), 25_000)?,
        };
        let rows = self.query(
            "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? AND key = ?
             ORDER BY timestamp, step, value, is_nan LIMIT ? OFFSET ?",
        )
        .bind(run_id)
        .bind(key)
        .bind(max.saturating_add(1))
        .bind(offset)
        .fetch_all(&self.read)
        .await?;
        let next =
            (max_results.is_some() && rows.len() as i64 > max).then(|| page_token(offset + max));
        let metrics = rows
            .iter()
            .take(max as usize)
            .map(|r| {
                Ok(Metric {
                    key: r.try_get("key")?,
                    value: loaded(r.try_get("value")?, r.try_get::<i64, _>("is_nan")? != 0),
                    timestamp: r.try_get("timestamp")?,
                    step: r.try_get("step")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((metrics, next))
    }
}
