//! Runs: create, read, update, delete / restore, tag deletion.

use sqlx::Row;

use super::{Store, limits, now_ms, parse_experiment_id, valid_tag};
use crate::error::TrackerError;
use crate::model::{KeyValue, Metric, Run, RunData, RunInfo, RunInputs, RunOutputs, loaded};

impl Store {
    pub async fn create_run(
        &self,
        experiment_id: &str,
        user_id: &str,
        run_name: &str,
        start_time: Option<i64>,
        tags: &[KeyValue],
    ) -> Result<Run, TrackerError> {
        let exp_n = parse_experiment_id(experiment_id)?;
        if run_name.len() > limits::MAX_NAME_LEN || user_id.len() > limits::MAX_NAME_LEN {
            return Err(TrackerError::invalid(format!(
                "run_name and user_id must be at most {} characters",
                limits::MAX_NAME_LEN
            )));
        }
        if tags.len() > limits::MAX_TAGS_PER_BATCH {
            return Err(TrackerError::invalid(format!(
                "a run can be created with at most {} tags, got {}",
                limits::MAX_TAGS_PER_BATCH,
                tags.len()
            )));
        }
        for t in tags {
            valid_tag(t)?;
        }
        // The experiment is checked inside the write transaction: a concurrent delete of the
        // experiment either happens before (refused here) or after (and then deletes this run).
        let mut tx = self.write_tx().await?;
        let row = self.query(
            "SELECT artifact_location, lifecycle_stage FROM experiments WHERE experiment_id = ?",
        )
        .bind(exp_n)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            TrackerError::not_found(format!("No Experiment with id={experiment_id} exists"))
        })?;
        let (artifact_location, stage): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        if stage != "active" {
            return Err(TrackerError::invalid(format!(
                "The experiment {experiment_id} must be in the 'active' state. Current state is {stage}."
            )));
        }
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let tag_name = tags
            .iter()
            .find(|t| t.key == "mlflow.runName")
            .map(|t| t.value.clone());
        let name = match (run_name.is_empty(), tag_name) {
            (false, _) => run_name.to_owned(),
            (true, Some(n)) if !n.is_empty() => n,
            _ => generated_name(&run_id),
        };
        let artifact_uri = format!("{artifact_location}/{run_id}/artifacts");
        let start = start_time.unwrap_or_else(now_ms);
        self.query(
            "INSERT INTO runs (run_uuid, experiment_id, run_name, user_id, status, start_time, artifact_uri) VALUES (?, ?, ?, ?, 'RUNNING', ?, ?)",
        )
        .bind(&run_id)
        .bind(exp_n)
        .bind(&name)
        .bind(user_id)
        .bind(start)
        .bind(&artifact_uri)
        .execute(&mut *tx)
        .await?;
        // the last value of a key wins, as if set in order; mlflow.runName is the run's name
        let mut all_tags: Vec<KeyValue> = Vec::new();
        for t in tags.iter().filter(|t| t.key != "mlflow.runName") {
            all_tags.retain(|x| x.key != t.key);
            all_tags.push(t.clone());
        }
        all_tags.push(KeyValue {
            key: "mlflow.runName".into(),
            value: name.clone(),
        });
        let rows = vec!["(?, ?, ?)"; all_tags.len()].join(", ");
        let mut q = self.query(&format!(
            "INSERT INTO tags (run_uuid, key, value) VALUES {rows}"
        ));
        for t in &all_tags {
            q = q.bind(&run_id).bind(&t.key).bind(&t.value);
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        self.changed(&run_id);
        all_tags.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Run {
            info: RunInfo {
                run_id: run_id.clone(),
                run_uuid: run_id,
                run_name: name,
                experiment_id: exp_n.to_string(),
                user_id: user_id.to_owned(),
                status: "RUNNING".into(),
                start_time: Some(start),
                end_time: None,
                artifact_uri,
                lifecycle_stage: "active".into(),
            },
            data: RunData {
                metrics: Vec::new(),
                params: Vec::new(),
                tags: all_tags,
            },
            inputs: RunInputs::default(),
            outputs: RunOutputs::default(),
        })
    }

    pub(crate) async fn run_info(&self, run_id: &str) -> Result<RunInfo, TrackerError> {
        let row = self
            .query("SELECT * FROM runs WHERE run_uuid = ?")
            .bind(run_id)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| TrackerError::not_found(format!("Run with id={run_id} not found")))?;
        info_from_row(&row)
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Run, TrackerError> {
        let info = self.run_info(run_id).await?;
        let ids = [run_id.to_owned()];
        let mut data = self.run_data(&ids).await?;
        let mut inputs = self.run_inputs(&ids).await?;
        Ok(Run {
            info,
            data: data.pop().map(|(_, d)| d).unwrap_or_default(),
            inputs: inputs.pop().unwrap_or_default(),
            outputs: RunOutputs::default(),
        })
    }

    /// Latest metrics, params and tags of several runs, in the order asked.
    pub(super) async fn run_data(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, RunData)>, TrackerError> {
        let mut out: Vec<(String, RunData)> = ids
            .iter()
            .map(|i| (i.clone(), RunData::default()))
            .collect();
        if ids.is_empty() {
            return Ok(out);
        }
        let index: std::collections::HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, r)| (r.as_str(), i))
            .collect();
        let marks = vec!["?"; ids.len()].join(",");
        for (table, kind) in [("latest_metrics", 0), ("params", 1), ("tags", 2)] {
            let cols = if kind == 0 {
                "run_uuid, key, value, timestamp, step, is_nan"
            } else {
                "run_uuid, key, value"
            };
            let sql = format!(
                "SELECT {cols} FROM {table} WHERE run_uuid IN ({marks}) ORDER BY run_uuid, key"
            );
            let mut q = self.query(&sql);
            for id in ids {
                q = q.bind(id);
            }
            for row in q.fetch_all(&self.read).await? {
                let run: String = row.try_get("run_uuid")?;
                let Some(&i) = index.get(run.as_str()) else {
                    continue;
                };
                let d = &mut out[i].1;
                match kind {
                    0 => d.metrics.push(Metric {
                        key: row.try_get("key")?,
                        value: loaded(row.try_get("value")?, row.try_get::<i64, _>("is_nan")? != 0),
                        timestamp: row.try_get("timestamp")?,
                        step: row.try_get("step")?,
                    }),
                    1 => d.params.push(KeyValue {
                        key: row.try_get("key")?,
                        value: row.try_get("value")?,
                    }),
                    _ => d.tags.push(KeyValue {
                        key: row.try_get("key")?,
                        value: row.try_get("value")?,
                    }),
                }
            }
        }
        Ok(out)
    }

    pub async fn update_run(
        &self,
        run_id: &str,
        status: Option<&str>,
        end_time: Option<i64>,
        run_name: Option<&str>,
    ) -> Result<RunInfo, TrackerError> {
        if run_name.is_some_and(|n| n.len() > limits::MAX_NAME_LEN) {
            return Err(TrackerError::invalid(
                "run_name must be at most 500 characters",
            ));
        }
        if let Some(s) = status
            && !["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"].contains(&s)
        {
            return Err(TrackerError::invalid(format!("Invalid run status {s:?}")));
        }
        let mut tx = self.write_tx().await?;
        require_active(run_id, &self.run_stage(&mut tx, run_id).await?)?;
        self.query("UPDATE runs SET status = coalesce(?, status), end_time = coalesce(?, end_time), run_name = coalesce(?, run_name) WHERE run_uuid = ?")
            .bind(status)
            .bind(end_time)
            .bind(run_name.filter(|n| !n.is_empty()))
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        if let Some(n) = run_name.filter(|n| !n.is_empty()) {
            self.query("INSERT INTO tags (run_uuid, key, value) VALUES (?, 'mlflow.runName', ?) ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value")
                .bind(run_id)
                .bind(n)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.changed(run_id);
        self.run_info(run_id).await
    }

    pub async fn set_run_lifecycle(&self, run_id: &str, deleted: bool) -> Result<(), TrackerError> {
        let mut tx = self.write_tx().await?;
        let stage = self.run_stage(&mut tx, run_id).await?;
        let (from, to) = if deleted {
            ("active", "deleted")
        } else {
            ("deleted", "active")
        };
        if stage != from {
            return Err(TrackerError::invalid(format!(
                "Cannot {} run {run_id}: it is {stage}",
                if deleted { "delete" } else { "restore" },
            )));
        }
        self.query("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?")
            .bind(to)
            .bind(deleted.then(now_ms))
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.changed(run_id);
        Ok(())
    }

    pub async fn delete_tag(&self, run_id: &str, key: &str) -> Result<(), TrackerError> {
        let mut tx = self.write_tx().await?;
        require_active(run_id, &self.run_stage(&mut tx, run_id).await?)?;
        let done = self
            .query("DELETE FROM tags WHERE run_uuid = ? AND key = ?")
            .bind(run_id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(TrackerError::not_found(format!(
                "No tag with name: {key} in run with id {run_id}"
            )));
        }
        tx.commit().await?;
        self.changed(run_id);
        Ok(())
    }
}

impl Store {
    /// The run's lifecycle stage, read inside a write transaction.
    ///
    /// # Errors
    /// An unknown run.
    pub(crate) async fn run_stage(
        &self,
        tx: &mut sqlx::AnyConnection,
        run_id: &str,
    ) -> Result<String, TrackerError> {
        self.query_scalar("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?")
            .bind(run_id)
            .fetch_optional(tx)
            .await?
            .ok_or_else(|| TrackerError::not_found(format!("Run with id={run_id} not found")))
    }
}

/// Writes to a run need it active.
pub(crate) fn require_active(run_id: &str, stage: &str) -> Result<(), TrackerError> {
    if stage != "active" {
        return Err(TrackerError::invalid(format!(
            "The run {run_id} must be in the 'active' state. Current state is {stage}."
        )));
    }
    Ok(())
}

pub(crate) fn info_from_row(row: &sqlx::any::AnyRow) -> Result<RunInfo, TrackerError> {
    let id: String = row.try_get("run_uuid")?;
    Ok(RunInfo {
        run_uuid: id.clone(),
        run_id: id,
        run_name: row.try_get("run_name")?,
        experiment_id: row.try_get::<i64, _>("experiment_id")?.to_string(),
        user_id: row.try_get("user_id")?,
        status: row.try_get("status")?,
        start_time: row.try_get("start_time")?,
        end_time: row.try_get("end_time")?,
        artifact_uri: row.try_get("artifact_uri")?,
        lifecycle_stage: row.try_get("lifecycle_stage")?,
    })
}

/// A readable run name from the run id (MLflow names unnamed runs too).
pub(crate) fn generated_name(run_id: &str) -> String {
    const ADJ: [&str; 16] = [
        "amber", "brisk", "calm", "deft", "eager", "fleet", "gentle", "hardy", "keen", "lucid",
        "merry", "nimble", "proud", "quiet", "rapid", "sunny",
    ];
    const NOUN: [&str; 16] = [
        "helix", "strand", "sheet", "loop", "motif", "domain", "fold", "turn", "coil", "chain",
        "pocket", "residue", "ligand", "dimer", "barrel", "hinge",
    ];
    let b = u64::from_str_radix(&run_id[..8.min(run_id.len())], 16).unwrap_or(0);
    format!(
        "{}-{}-{}",
        ADJ[(b & 15) as usize],
        NOUN[((b >> 4) & 15) as usize],
        (b >> 8) % 1000
    )
}
