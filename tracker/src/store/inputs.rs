//! Dataset inputs of runs (`runs/log-inputs`, `mlflow.log_input`), kept as MLflow keeps them: a
//! dataset is recorded once per experiment by (name, digest), with the source, schema and profile
//! of its first logging, and linked once to each run that logs it, with that logging's input
//! tags. Tables `input_datasets`, `run_inputs`, `run_input_tags` (migration 0003).

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, require_active};
use crate::error::TrackerError;
use crate::model::{Dataset, DatasetInput, KeyValue, RunInputs};

/// MLflow's limits on what `log-inputs` carries (`mlflow/utils/validation.py`).
pub mod input_limits {
    pub const MAX_DATASETS_PER_BATCH: usize = 1000;
    pub const MAX_NAME: usize = 500;
    pub const MAX_DIGEST: usize = 36;
    pub const MAX_SOURCE: usize = 65_535;
    pub const MAX_SCHEMA: usize = 1_048_575;
    pub const MAX_PROFILE: usize = 16_777_215;
    pub const MAX_TAG_KEY: usize = 255;
    pub const MAX_TAG_VALUE: usize = 500;
}

/// MLflow's wording for a value over its limit.
fn too_long(path: &str, limit: usize) -> TrackerError {
    TrackerError::invalid(format!(
        "'{path}' exceeds the maximum length of {limit} characters"
    ))
}

/// MLflow's checks of each dataset and input tag, in its order.
fn validate(inputs: &[DatasetInput]) -> Result<(), TrackerError> {
    use input_limits::*;
    if inputs.len() > MAX_DATASETS_PER_BATCH {
        return Err(TrackerError::invalid(format!(
            "A batch of dataset inputs can hold at most {MAX_DATASETS_PER_BATCH} datasets, got {}",
            inputs.len()
        )));
    }
    for input in inputs {
        let d = &input.dataset;
        for (value, path, limit) in [
            (Some(&d.name), "name", MAX_NAME),
            (Some(&d.digest), "digest", MAX_DIGEST),
            (Some(&d.source), "source", MAX_SOURCE),
            (d.schema.as_ref(), "schema", MAX_SCHEMA),
            (d.profile.as_ref(), "profile", MAX_PROFILE),
        ] {
            if value.is_some_and(|v| v.chars().count() > limit) {
                return Err(too_long(path, limit));
            }
        }
        for t in &input.tags {
            if t.key.chars().count() > MAX_TAG_KEY {
                return Err(too_long("key", MAX_TAG_KEY));
            }
            if t.value.chars().count() > MAX_TAG_VALUE {
                return Err(too_long("value", MAX_TAG_VALUE));
            }
        }
    }
    Ok(())
}

impl Store {
    /// Records `inputs` for an active run: the first of several with one (name, digest) counts;
    /// a dataset already in the run's experiment is reused as recorded; a run already linked to
    /// a dataset keeps its first input and tags.
    ///
    /// # Errors
    /// An unknown or deleted run, a value over MLflow's limits.
    pub async fn log_inputs(
        &self,
        run_id: &str,
        inputs: &[DatasetInput],
    ) -> Result<(), TrackerError> {
        validate(inputs)?;
        let mut seen = std::collections::HashSet::new();
        let inputs: Vec<&DatasetInput> = inputs
            .iter()
            .filter(|i| seen.insert((i.dataset.name.clone(), i.dataset.digest.clone())))
            .collect();
        let mut tx = self.write_tx().await?;
        let stage = self.run_stage(&mut tx, run_id).await?;
        require_active(run_id, &stage)?;
        if inputs.is_empty() {
            return Ok(());
        }
        let experiment: i64 = self
            .query_scalar("SELECT experiment_id FROM runs WHERE run_uuid = ?")
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await?;
        let mut position: i64 = self
            .query_scalar("SELECT COUNT(*) FROM run_inputs WHERE run_uuid = ?")
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await?;
        for input in inputs {
            let d = &input.dataset;
            let existing: Option<String> = self
                .query_scalar(
                    "SELECT dataset_uuid FROM input_datasets \
                     WHERE experiment_id = ? AND name = ? AND digest = ?",
                )
                .bind(experiment)
                .bind(&d.name)
                .bind(&d.digest)
                .fetch_optional(&mut *tx)
                .await?;
            let dataset_uuid = match existing {
                Some(u) => u,
                None => {
                    let u = uuid::Uuid::new_v4().simple().to_string();
                    self.query(
                        "INSERT INTO input_datasets (dataset_uuid, experiment_id, name, digest, \
                         dataset_source_type, dataset_source, dataset_schema, dataset_profile) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&u)
                    .bind(experiment)
                    .bind(&d.name)
                    .bind(&d.digest)
                    .bind(&d.source_type)
                    .bind(&d.source)
                    .bind(d.schema.clone())
                    .bind(d.profile.clone())
                    .execute(&mut *tx)
                    .await?;
                    u
                }
            };
            let linked: Option<String> = self
                .query_scalar(
                    "SELECT input_uuid FROM run_inputs WHERE run_uuid = ? AND dataset_uuid = ?",
                )
                .bind(run_id)
                .bind(&dataset_uuid)
                .fetch_optional(&mut *tx)
                .await?;
            if linked.is_some() {
                continue;
            }
            let input_uuid = uuid::Uuid::new_v4().simple().to_string();
            self.query(
                "INSERT INTO run_inputs (input_uuid, run_uuid, dataset_uuid, position) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(&input_uuid)
            .bind(run_id)
            .bind(&dataset_uuid)
            .bind(position)
            .execute(&mut *tx)
            .await?;
            position += 1;
            // One value per tag name, the last given (MLflow's table has the same key).
            let mut tags: Vec<&KeyValue> = Vec::new();
            for t in &input.tags {
                tags.retain(|o| o.key != t.key);
                tags.push(t);
            }
            for t in tags {
                self.query("INSERT INTO run_input_tags (input_uuid, name, value) VALUES (?, ?, ?)")
                    .bind(&input_uuid)
                    .bind(&t.key)
                    .bind(&t.value)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        self.changed(run_id);
        Ok(())
    }

    /// The inputs of several runs, in the order asked; each run's in logging order.
    /// The datasets runs of `experiment_ids` logged as inputs, one summary per (experiment,
    /// name, digest, context), as MLflow's `experiments/search-datasets` returns them (at most
    /// 1,000; `context` left out where the input has no `mlflow.data.context` tag).
    ///
    /// # Errors
    /// A malformed experiment id.
    pub async fn dataset_summaries(
        &self,
        experiment_ids: &[String],
    ) -> Result<Vec<serde_json::Value>, TrackerError> {
        let ids = experiment_ids
            .iter()
            .map(|e| super::parse_experiment_id(e))
            .collect::<Result<Vec<i64>, _>>()?;
        let marks = vec!["?"; ids.len()].join(", ");
        let mut q = self.query(&format!(
            "SELECT DISTINCT d.experiment_id, d.name, d.digest, t.value
             FROM input_datasets d JOIN run_inputs i ON i.dataset_uuid = d.dataset_uuid
             LEFT JOIN run_input_tags t ON t.input_uuid = i.input_uuid AND t.name = 'mlflow.data.context'
             WHERE d.experiment_id IN ({marks})
             ORDER BY d.experiment_id, d.name, d.digest, t.value LIMIT 1000"
        ));
        for id in ids {
            q = q.bind(id);
        }
        let mut out = Vec::new();
        for r in q.fetch_all(self.reader()).await? {
            let mut v = serde_json::json!({
                "experiment_id": r.try_get::<i64, _>(0)?.to_string(),
                "name": r.try_get::<String, _>(1)?,
                "digest": r.try_get::<String, _>(2)?,
            });
            if let Some(c) = r.try_get::<Option<String>, _>(3)? {
                v["context"] = serde_json::json!(c);
            }
            out.push(v);
        }
        Ok(out)
    }

    pub(crate) async fn run_inputs(&self, ids: &[String]) -> Result<Vec<RunInputs>, TrackerError> {
        let mut out = vec![RunInputs::default(); ids.len()];
        if ids.is_empty() {
            return Ok(out);
        }
        let index: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, r)| (r.as_str(), i))
            .collect();
        let marks = vec!["?"; ids.len()].join(",");
        let sql = format!(
            "SELECT i.run_uuid, i.input_uuid, d.name, d.digest, d.dataset_source_type, \
             d.dataset_source, d.dataset_schema, d.dataset_profile \
             FROM run_inputs i JOIN input_datasets d ON d.dataset_uuid = i.dataset_uuid \
             WHERE i.run_uuid IN ({marks}) ORDER BY i.run_uuid, i.position"
        );
        let mut q = self.query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.read).await?;
        if rows.is_empty() {
            return Ok(out);
        }
        let mut at: HashMap<String, (usize, usize)> = HashMap::new();
        for row in rows {
            let run: String = row.try_get("run_uuid")?;
            let Some(&i) = index.get(run.as_str()) else {
                continue;
            };
            let input_uuid: String = row.try_get("input_uuid")?;
            at.insert(input_uuid, (i, out[i].dataset_inputs.len()));
            out[i].dataset_inputs.push(DatasetInput {
                tags: Vec::new(),
                dataset: Dataset {
                    name: row.try_get("name")?,
                    digest: row.try_get("digest")?,
                    source_type: row.try_get("dataset_source_type")?,
                    source: row.try_get("dataset_source")?,
                    schema: row.try_get("dataset_schema")?,
                    profile: row.try_get("dataset_profile")?,
                },
            });
        }
        let sql = format!(
            "SELECT t.input_uuid, t.name, t.value FROM run_input_tags t \
             JOIN run_inputs i ON i.input_uuid = t.input_uuid \
             WHERE i.run_uuid IN ({marks}) ORDER BY t.input_uuid, t.name"
        );
        let mut q = self.query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        for row in q.fetch_all(&self.read).await? {
            let input: String = row.try_get("input_uuid")?;
            if let Some(&(i, k)) = at.get(&input) {
                out[i].dataset_inputs[k].tags.push(KeyValue {
                    key: row.try_get("name")?,
                    value: row.try_get("value")?,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, digest: &str) -> DatasetInput {
        DatasetInput {
            tags: vec![KeyValue {
                key: "mlflow.data.context".into(),
                value: "train".into(),
            }],
            dataset: Dataset {
                name: name.into(),
                digest: digest.into(),
                source_type: "local".into(),
                source: "{}".into(),
                schema: None,
                profile: None,
            },
        }
    }

    #[test]
    fn limits_are_mlflows_with_its_words() {
        assert!(validate(&[input("ec", "abc")]).is_ok());
        let long_digest = input("ec", &"0".repeat(37));
        assert_eq!(
            validate(&[long_digest]).expect_err("too long").to_string(),
            "'digest' exceeds the maximum length of 36 characters"
        );
        let mut tag = input("ec", "abc");
        tag.tags[0].value = "v".repeat(501);
        assert!(
            validate(&[tag])
                .expect_err("too long")
                .to_string()
                .contains("'value' exceeds the maximum length of 500")
        );
    }
}
