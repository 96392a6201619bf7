//! Experiments: create, read, delete / restore, rename, tags.

use sqlx::Row;

use super::search::bind_all;
use super::{Store, limits, now_ms, parse_experiment_id, valid_tag};
use crate::error::TrackerError;
use crate::filter::Bind;
use crate::model::{Experiment, KeyValue};

impl Store {
    pub async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[KeyValue],
    ) -> Result<String, TrackerError> {
        if name.trim().is_empty() || name.len() > limits::MAX_NAME_LEN {
            return Err(TrackerError::invalid(format!(
                "experiment name must be 1 to {} characters",
                limits::MAX_NAME_LEN
            )));
        }
        for t in tags {
            valid_tag(t)?;
        }
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let exists: Option<i64> = self
            .query_scalar("SELECT experiment_id FROM experiments WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(TrackerError::exists(format!(
                "Experiment '{name}' already exists."
            )));
        }
        let id: i64 = self.query_scalar(
            "INSERT INTO experiments (name, artifact_location, creation_time, last_update_time) VALUES (?, '', ?, ?) RETURNING experiment_id",
        )
        .bind(name)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let location = match artifact_location.filter(|l| !l.is_empty()) {
            Some(l) => l.to_owned(),
            None => format!("{}/{id}", self.artifact_root),
        };
        self.query("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?")
            .bind(location)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for t in tags {
            self.query("INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value")
                .bind(id)
                .bind(&t.key)
                .bind(&t.value)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id.to_string())
    }

    pub(super) async fn experiment_row(
        &self,
        sql: &str,
        bind: Bind,
    ) -> Result<Option<Experiment>, TrackerError> {
        let q = bind_all(self.query(sql), vec![bind]);
        let Some(row) = q.fetch_optional(&self.read).await? else {
            return Ok(None);
        };
        let id: i64 = row.try_get("experiment_id")?;
        let tags = self.experiment_tags(id).await?;
        Ok(Some(Experiment {
            experiment_id: id.to_string(),
            name: row.try_get("name")?,
            artifact_location: row.try_get("artifact_location")?,
            lifecycle_stage: row.try_get("lifecycle_stage")?,
            last_update_time: row.try_get("last_update_time")?,
            creation_time: row.try_get("creation_time")?,
            tags,
        }))
    }

    async fn experiment_tags(&self, id: i64) -> Result<Vec<KeyValue>, TrackerError> {
        let rows = self
            .query("SELECT key, value FROM experiment_tags WHERE experiment_id = ? ORDER BY key")
            .bind(id)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyValue {
                    key: r.try_get("key")?,
                    value: r.try_get("value")?,
                })
            })
            .collect()
    }

    pub async fn get_experiment(&self, id: &str) -> Result<Experiment, TrackerError> {
        let n = parse_experiment_id(id)?;
        self.experiment_row(
            "SELECT * FROM experiments WHERE experiment_id = ?",
            Bind::Int(n),
        )
        .await?
        .ok_or_else(|| TrackerError::not_found(format!("No Experiment with id={id} exists")))
    }

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment, TrackerError> {
        self.experiment_row(
            "SELECT * FROM experiments WHERE name = ?",
            Bind::Str(name.to_owned()),
        )
        .await?
        .ok_or_else(|| {
            TrackerError::not_found(format!("Could not find experiment with name '{name}'"))
        })
    }

    pub async fn set_experiment_lifecycle(
        &self,
        id: &str,
        deleted: bool,
    ) -> Result<(), TrackerError> {
        let n = parse_experiment_id(id)?;
        if n == 0 && deleted {
            return Err(TrackerError::invalid(
                "Cannot delete the default experiment '0'. This is an internally reserved experiment.",
            ));
        }
        let (from, to) = if deleted {
            ("active", "deleted")
        } else {
            ("deleted", "active")
        };
        let mut tx = self.write_tx().await?;
        let stage = self.experiment_stage(&mut tx, n, id).await?;
        if stage != from {
            return Err(TrackerError::invalid(format!(
                "Cannot {} experiment {id}: it is {stage}",
                if deleted { "delete" } else { "restore" }
            )));
        }
        let now = now_ms();
        self.query("UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?")
            .bind(to)
            .bind(now)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        self.query("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE experiment_id = ? AND lifecycle_stage = ?")
            .bind(to)
            .bind(deleted.then_some(now))
            .bind(n)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn rename_experiment(&self, id: &str, new_name: &str) -> Result<(), TrackerError> {
        let n = parse_experiment_id(id)?;
        if new_name.trim().is_empty() || new_name.len() > limits::MAX_NAME_LEN {
            return Err(TrackerError::invalid(
                "new_name must be 1 to 500 characters",
            ));
        }
        let r = self
            .query("UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?")
            .bind(new_name)
            .bind(now_ms())
            .bind(n)
            .execute(&self.write)
            .await;
        match r {
            Ok(done) if done.rows_affected() == 0 => Err(TrackerError::not_found(format!(
                "No Experiment with id={id} exists"
            ))),
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(TrackerError::exists(
                format!("Experiment '{new_name}' already exists."),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn set_experiment_tag(&self, id: &str, tag: &KeyValue) -> Result<(), TrackerError> {
        let n = parse_experiment_id(id)?;
        valid_tag(tag)?;
        let mut tx = self.write_tx().await?;
        self.experiment_stage(&mut tx, n, id).await?;
        self.query(
            "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(n)
        .bind(&tag.key)
        .bind(&tag.value)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes tag `key` from an active experiment (MLflow's `delete-experiment-tag`).
    ///
    /// # Errors
    /// An unknown experiment, a deleted one, or no such tag, in MLflow's words.
    pub async fn delete_experiment_tag(&self, id: &str, key: &str) -> Result<(), TrackerError> {
        let n = parse_experiment_id(id)?;
        let mut tx = self.write_tx().await?;
        let stage = self.experiment_stage(&mut tx, n, id).await?;
        if stage != "active" {
            return Err(TrackerError::invalid(format!(
                "The experiment {id} must be in the 'active' state. Current state is {stage}."
            )));
        }
        let removed = self
            .query("DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?")
            .bind(n)
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(TrackerError::not_found(format!(
                "No tag with name: {key} in experiment with id {id}"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The lifecycle stage of experiment `n` (named `id` in errors), read inside a write
    /// transaction.
    ///
    /// # Errors
    /// An unknown experiment, in MLflow's words.
    async fn experiment_stage(
        &self,
        tx: &mut sqlx::AnyConnection,
        n: i64,
        id: &str,
    ) -> Result<String, TrackerError> {
        self.query_scalar("SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?")
            .bind(n)
            .fetch_optional(tx)
            .await?
            .ok_or_else(|| TrackerError::not_found(format!("No Experiment with id={id} exists")))
    }
}
