//! fusionprot's additions to MLflow's model: checkpoints a run saved, and prepared datasets (the
//! pipeline's manifest) linked to the runs that used them.

use fusionprot_pipeline::dataset::manifest::{ManifestError, Recorded};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::dataset_files::{self, Confinement};
use crate::error::{ErrorCode, TrackerError};
use crate::store::{Store, now_ms, require_active};

/// A checkpoint as a client reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckpointIn {
    pub run_id: String,
    #[serde(default, deserialize_with = "crate::model::de_i64")]
    pub step: i64,
    pub path: Option<String>,
    pub artifact_path: Option<String>,
    #[serde(default, deserialize_with = "crate::model::de_opt_i64")]
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    #[serde(default)]
    pub metrics: serde_json::Map<String, Value>,
    #[serde(default)]
    pub is_best: bool,
}

/// A manifest as the pipeline reads it back ([`Recorded`]): refused, naming the field, when it
/// lacks `dataset_schema_version` or `tables` or has a section of the wrong shape.
///
/// # Errors
/// As above.
pub fn recorded(manifest: &Value) -> Result<Recorded, TrackerError> {
    Recorded::from_value(manifest.clone())
        .map_err(|e| TrackerError::invalid(format!("not a fusionprot dataset manifest: {e}")))
}

impl Store {
    /// Registers a dataset (idempotent by content hash). With `path`, the manifest is read from
    /// `<path>/manifest.json` on this machine and the dataset's tables become queryable by SQL,
    /// once [`dataset_files::resolve`] under `scope` accepts every file they would read;
    /// without, the given manifest is recorded for provenance only.
    ///
    /// # Errors
    /// No manifest, an unreadable or invalid one, a dataset outside `scope` or with a table file
    /// that leads out of it.
    pub async fn register_dataset(
        &self,
        name: &str,
        path: Option<&str>,
        manifest: Option<&Value>,
        scope: &Confinement,
    ) -> Result<Value, TrackerError> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(TrackerError::invalid(
                "dataset name must be 1 to 200 characters",
            ));
        }
        let (manifest, path) = match path {
            Some(p) => {
                let dir = std::fs::canonicalize(p)
                    .map_err(|e| TrackerError::invalid(format!("dataset path {p}: {e}")))?;
                let m = Recorded::read(&dir)
                    .map_err(|e| match e {
                        ManifestError::Io { source, .. } => TrackerError::invalid(format!(
                            "{}: not a prepared dataset ({source})",
                            dir.display()
                        )),
                        e @ ManifestError::Json { .. } => TrackerError::invalid(e.to_string()),
                    })?
                    .to_value();
                dataset_files::resolve(&dir, scope).map_err(|e| TrackerError::Api {
                    code: if e.denied {
                        ErrorCode::PermissionDenied
                    } else {
                        ErrorCode::InvalidParameterValue
                    },
                    message: format!("dataset not registered: {e}"),
                })?;
                (m, Some(dir.display().to_string()))
            }
            None => (
                manifest
                    .cloned()
                    .ok_or_else(|| TrackerError::invalid("give a dataset path or its manifest"))?,
                None,
            ),
        };
        let typed = recorded(&manifest)?;
        let (hash, version) = (
            typed.content_hash(),
            i64::from(typed.dataset_schema_version),
        );
        let split = manifest
            .get("splits")
            .or_else(|| manifest.get("split"))
            .map(Value::to_string);
        let mut tx = self.write_tx().await?;
        let id: i64 = self.query_scalar(
            "INSERT INTO datasets (name, content_hash, schema_version, path, manifest_json, split_json, created_time)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (content_hash) DO UPDATE SET name = excluded.name, path = coalesce(excluded.path, datasets.path),
               manifest_json = excluded.manifest_json, split_json = excluded.split_json
             RETURNING dataset_id",
        )
        .bind(name)
        .bind(&hash)
        .bind(version)
        .bind(&path)
        .bind(manifest.to_string())
        .bind(split)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(
            json!({ "dataset_id": id.to_string(), "content_hash": hash, "schema_version": version, "path": path }),
        )
    }

    pub async fn list_datasets(&self) -> Result<Vec<Value>, TrackerError> {
        let rows = self.query("SELECT dataset_id, name, content_hash, schema_version, path, CASE WHEN split_json IS NULL THEN 0 ELSE 1 END AS split, created_time FROM datasets ORDER BY dataset_id")
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(json!({
                    "dataset_id": r.try_get::<i64, _>("dataset_id")?.to_string(),
                    "name": r.try_get::<String, _>("name")?,
                    "content_hash": r.try_get::<String, _>("content_hash")?,
                    "schema_version": r.try_get::<i64, _>("schema_version")?,
                    "path": r.try_get::<Option<String>, _>("path")?,
                    "has_split": r.try_get::<i64, _>("split")? != 0,
                    "created_time": r.try_get::<i64, _>("created_time")?,
                }))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// The name and folder of a dataset `run_id` is linked to that has a folder on this machine
    /// (the first by context, then id), if any.
    pub async fn run_dataset_path(
        &self,
        run_id: &str,
    ) -> Result<Option<(String, std::path::PathBuf)>, TrackerError> {
        let row: Option<(String, String)> = self
            .query(
                "SELECT d.name, d.path FROM run_datasets l JOIN datasets d ON d.dataset_id = l.dataset_id
                 WHERE l.run_uuid = ? AND d.path IS NOT NULL AND d.path <> '' ORDER BY l.context, d.dataset_id LIMIT 1",
            )
            .bind(run_id.to_owned())
            .fetch_optional(self.reader())
            .await?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?;
        Ok(row.map(|(n, p)| (n, std::path::PathBuf::from(p))))
    }

    pub async fn link_dataset(
        &self,
        run_id: &str,
        dataset_id: &str,
        context: &str,
    ) -> Result<(), TrackerError> {
        let id: i64 = dataset_id.parse().map_err(|_| {
            TrackerError::invalid(format!("dataset_id must be an integer, got {dataset_id:?}"))
        })?;
        let mut tx = self.write_tx().await?;
        self.run_stage(&mut tx, run_id).await?;
        let exists: Option<i64> = self
            .query_scalar("SELECT dataset_id FROM datasets WHERE dataset_id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(TrackerError::not_found(format!(
                "No dataset with id={dataset_id}"
            )));
        }
        self.query(
            "INSERT INTO run_datasets (run_uuid, dataset_id, context) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(run_id)
        .bind(id)
        .bind(context)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a checkpoint; `is_best` moves the run's "best" flag to it.
    ///
    /// # Errors
    /// Unknown or inactive run, no location, or a malformed sha256.
    pub async fn log_checkpoint(&self, c: &CheckpointIn) -> Result<i64, TrackerError> {
        if c.path.as_deref().unwrap_or("").is_empty()
            && c.artifact_path.as_deref().unwrap_or("").is_empty()
        {
            return Err(TrackerError::invalid(
                "a checkpoint needs a path or an artifact_path",
            ));
        }
        if let Some(h) = &c.sha256
            && !(h.len() == 64 && h.chars().all(|x| x.is_ascii_hexdigit()))
        {
            return Err(TrackerError::invalid("sha256 must be 64 hex digits"));
        }
        if let Some(a) = &c.artifact_path {
            crate::artifacts::check_path(a)?;
        }
        let mut tx = self.write_tx().await?;
        require_active(&c.run_id, &self.run_stage(&mut tx, &c.run_id).await?)?;
        if c.is_best {
            self.query("UPDATE checkpoints SET is_best = 0 WHERE run_uuid = ?")
                .bind(&c.run_id)
                .execute(&mut *tx)
                .await?;
        }
        let id: i64 = self.query_scalar(
            "INSERT INTO checkpoints (run_uuid, step, path, artifact_path, size_bytes, sha256, metrics_json, is_best, created_time)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING checkpoint_id",
        )
        .bind(&c.run_id)
        .bind(c.step)
        .bind(&c.path)
        .bind(&c.artifact_path)
        .bind(c.size_bytes)
        .bind(c.sha256.as_ref().map(|h| h.to_ascii_lowercase()))
        .bind(Value::Object(c.metrics.clone()).to_string())
        .bind(i64::from(c.is_best))
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changed(&c.run_id);
        Ok(id)
    }

    pub async fn list_checkpoints(&self, run_id: &str) -> Result<Vec<Value>, TrackerError> {
        self.get_run(run_id).await?;
        let rows = self
            .query("SELECT * FROM checkpoints WHERE run_uuid = ? ORDER BY step, checkpoint_id")
            .bind(run_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                let metrics: String = r.try_get("metrics_json")?;
                Ok(json!({
                    "checkpoint_id": r.try_get::<i64, _>("checkpoint_id")?.to_string(),
                    "run_id": r.try_get::<String, _>("run_uuid")?,
                    "step": r.try_get::<i64, _>("step")?,
                    "path": r.try_get::<Option<String>, _>("path")?,
                    "artifact_path": r.try_get::<Option<String>, _>("artifact_path")?,
                    "size_bytes": r.try_get::<Option<i64>, _>("size_bytes")?,
                    "sha256": r.try_get::<Option<String>, _>("sha256")?,
                    "metrics": serde_json::from_str::<Value>(&metrics).unwrap_or(Value::Null),
                    "is_best": r.try_get::<i64, _>("is_best")? != 0,
                    "created_time": r.try_get::<i64, _>("created_time")?,
                }))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}
