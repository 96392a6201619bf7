//! The system of record: SQLite in WAL mode, one writer connection (every write goes through it,
//! in its own transaction, so concurrent clients never meet "database is locked") and a pool of
//! readers.
//!
//! Durability: `synchronous = NORMAL` with WAL. A commit has reached the WAL file (in the OS page
//! cache) when the call returns, so an acknowledged write survives `kill -9` of the server; only
//! an OS crash or power loss could drop the last transactions before the next checkpoint. Use
//! `Durability::Full` (`--sync full`) to fsync every commit and survive those too.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::error::TrackerError;
use crate::filter::{self, Bind, Target};
use crate::migrate;
use crate::model::{Experiment, KeyValue, Metric, Run, RunData, RunInfo, loaded, stored};

/// MLflow's limits, which its clients rely on.
pub mod limits {
    pub const MAX_METRICS_PER_BATCH: usize = 1000;
    pub const MAX_PARAMS_PER_BATCH: usize = 100;
    pub const MAX_TAGS_PER_BATCH: usize = 100;
    pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
    pub const MAX_BATCH_BYTES: usize = 1_000_000;
    pub const MAX_KEY_LEN: usize = 250;
    pub const MAX_PARAM_VALUE_LEN: usize = 6000;
    pub const MAX_TAG_VALUE_LEN: usize = 8000;
    pub const MAX_NAME_LEN: usize = 500;
    pub const MAX_RESULTS: i64 = 50_000;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// WAL + synchronous=NORMAL: survives a killed server process.
    Normal,
    /// synchronous=FULL: also survives an OS crash or power loss (an fsync per commit).
    Full,
}

#[derive(Debug, Clone)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
    /// Where run artifacts live, as URIs: `mlflow-artifacts:` (served by this server).
    pub artifact_root: String,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn valid_key(kind: &str, key: &str) -> Result<(), TrackerError> {
    if key.is_empty() || key.len() > limits::MAX_KEY_LEN {
        return Err(TrackerError::invalid(format!(
            "{kind} name must be 1 to {} characters, got {}",
            limits::MAX_KEY_LEN,
            key.len()
        )));
    }
    let ok_chars = key
        .chars()
        .all(|c| c.is_alphanumeric() || "_-. /:".contains(c));
    if !ok_chars || key.starts_with('/') || key.split('/').any(|p| p == "..") {
        return Err(TrackerError::invalid(format!(
            "Invalid {kind} name: '{key}'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/), and may not be absolute or contain '..'"
        )));
    }
    Ok(())
}

fn valid_tag(t: &KeyValue) -> Result<(), TrackerError> {
    valid_key("tag", &t.key)?;
    if t.value.len() > limits::MAX_TAG_VALUE_LEN {
        return Err(TrackerError::invalid(format!(
            "Tag value for key '{}' is {} characters; the limit is {}",
            t.key,
            t.value.len(),
            limits::MAX_TAG_VALUE_LEN
        )));
    }
    Ok(())
}

fn parse_experiment_id(id: &str) -> Result<i64, TrackerError> {
    id.trim()
        .parse::<i64>()
        .map_err(|_| TrackerError::invalid(format!("experiment_id must be an integer, got {id:?}")))
}

/// Page tokens are opaque to clients: the offset, prefixed so a stray value is recognised.
fn parse_page_token(token: Option<&str>) -> Result<i64, TrackerError> {
    match token.filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(t) => t
            .strip_prefix("fp1:")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| TrackerError::invalid(format!("Invalid page token {t:?}"))),
    }
}

fn page_token(offset: i64) -> String {
    format!("fp1:{offset}")
}

fn check_max_results(max: Option<i64>, default: i64) -> Result<i64, TrackerError> {
    let m = max.unwrap_or(default);
    if !(1..=limits::MAX_RESULTS).contains(&m) {
        return Err(TrackerError::invalid(format!(
            "max_results must be between 1 and {}, got {m}",
            limits::MAX_RESULTS
        )));
    }
    Ok(m)
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind_all(mut q: Query<'_>, binds: Vec<Bind>) -> Query<'_> {
    for b in binds {
        q = match b {
            Bind::Num(n) => q.bind(n),
            Bind::Int(i) => q.bind(i),
            Bind::Str(s) => q.bind(s),
        };
    }
    q
}

/// What `log_batch` writes, validated as a whole before anything is written.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub metrics: Vec<Metric>,
    pub params: Vec<KeyValue>,
    pub tags: Vec<KeyValue>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// # Errors
    /// An unopenable file, a database from a newer fusionprot, or a failed migration.
    pub async fn open(path: &str, durability: Durability) -> Result<Store, TrackerError> {
        let sync = match durability {
            Durability::Normal => SqliteSynchronous::Normal,
            Durability::Full => SqliteSynchronous::Full,
        };
        let base = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(base.clone().create_if_missing(true))
            .await?;
        migrate::apply(&write, path).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(base.read_only(true))
            .await?;
        let store = Store {
            read,
            write,
            artifact_root: "mlflow-artifacts:".into(),
        };
        store.ensure_default_experiment().await?;
        Ok(store)
    }

    /// The SQLite pool for read-only queries (SQL export, tests).
    pub fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// The single writer connection (every write goes through it).
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.write
    }

    async fn ensure_default_experiment(&self) -> Result<(), TrackerError> {
        let now = now_ms();
        sqlx::query(
            "INSERT OR IGNORE INTO experiments (experiment_id, name, artifact_location, creation_time, last_update_time)
             VALUES (0, 'Default', ?, ?, ?)",
        )
        .bind(format!("{}/0", self.artifact_root))
        .bind(now)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    // ---- experiments ----

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
        let mut tx = self.write.begin().await?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT experiment_id FROM experiments WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_some() {
            return Err(TrackerError::exists(format!(
                "Experiment '{name}' already exists."
            )));
        }
        let id: i64 = sqlx::query_scalar(
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
        sqlx::query("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?")
            .bind(location)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for t in tags {
            sqlx::query("INSERT OR REPLACE INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)")
                .bind(id)
                .bind(&t.key)
                .bind(&t.value)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id.to_string())
    }

    async fn experiment_row(
        &self,
        sql: &str,
        bind: Bind,
    ) -> Result<Option<Experiment>, TrackerError> {
        let q = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())), vec![bind]);
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
        let rows = sqlx::query(
            "SELECT key, value FROM experiment_tags WHERE experiment_id = ? ORDER BY key",
        )
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

    pub async fn search_experiments(
        &self,
        view_type: Option<&str>,
        max_results: Option<i64>,
        filter: Option<&str>,
        order_by: &[String],
        token: Option<&str>,
    ) -> Result<(Vec<Experiment>, Option<String>), TrackerError> {
        let max = check_max_results(max_results, 1000)?;
        let offset = parse_page_token(token)?;
        let mut binds = Vec::new();
        let mut conds = vec![lifecycle_cond("e", view_type)?];
        conds.extend(filter::to_sql(
            &filter::parse(filter.unwrap_or(""))?,
            Target::Experiments,
            &mut binds,
            false,
        )?);
        let order = filter::order_sql(order_by, Target::Experiments)?;
        let mut terms = order.terms;
        terms.push("e.creation_time DESC".into());
        terms.push("e.experiment_id ASC".into());
        let sql = format!(
            "SELECT e.experiment_id FROM experiments e WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
            conds.join(" AND "),
            terms.join(", "),
            max + 1,
            offset
        );
        let ids: Vec<i64> = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        let next = (ids.len() as i64 > max).then(|| page_token(offset + max));
        let mut out = Vec::new();
        for id in ids.into_iter().take(max as usize) {
            out.push(self.get_experiment(&id.to_string()).await?);
        }
        Ok((out, next))
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
        let mut tx = self.write.begin().await?;
        let stage: Option<String> =
            sqlx::query_scalar("SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?")
                .bind(n)
                .fetch_optional(&mut *tx)
                .await?;
        match stage.as_deref() {
            None => {
                return Err(TrackerError::not_found(format!(
                    "No Experiment with id={id} exists"
                )));
            }
            Some(s) if s != from => {
                return Err(TrackerError::invalid(format!(
                    "Cannot {} experiment {id}: it is {s}",
                    if deleted { "delete" } else { "restore" }
                )));
            }
            _ => {}
        }
        let now = now_ms();
        sqlx::query("UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?")
            .bind(to)
            .bind(now)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE experiment_id = ? AND lifecycle_stage = ?")
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
        let r = sqlx::query(
            "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
        )
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
        self.get_experiment(id).await?;
        sqlx::query(
            "INSERT OR REPLACE INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)",
        )
        .bind(n)
        .bind(&tag.key)
        .bind(&tag.value)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    // ---- runs ----

    pub async fn create_run(
        &self,
        experiment_id: &str,
        user_id: &str,
        run_name: &str,
        start_time: Option<i64>,
        tags: &[KeyValue],
    ) -> Result<Run, TrackerError> {
        let exp_n = parse_experiment_id(experiment_id)?;
        let row = sqlx::query(
            "SELECT artifact_location, lifecycle_stage FROM experiments WHERE experiment_id = ?",
        )
        .bind(exp_n)
        .fetch_optional(&self.read)
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
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO runs (run_uuid, experiment_id, run_name, user_id, status, start_time, artifact_uri) VALUES (?, ?, ?, ?, 'RUNNING', ?, ?)",
        )
        .bind(&run_id)
        .bind(parse_experiment_id(experiment_id)?)
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
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tags (run_uuid, key, value) VALUES {rows}"
        )));
        for t in &all_tags {
            q = q.bind(&run_id).bind(&t.key).bind(&t.value);
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
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
            inputs: serde_json::json!({}),
        })
    }

    async fn run_info(&self, run_id: &str) -> Result<RunInfo, TrackerError> {
        let row = sqlx::query("SELECT * FROM runs WHERE run_uuid = ?")
            .bind(run_id)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| TrackerError::not_found(format!("Run with id={run_id} not found")))?;
        info_from_row(&row)
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Run, TrackerError> {
        let info = self.run_info(run_id).await?;
        let mut data = self.run_data(&[run_id.to_owned()]).await?;
        Ok(Run {
            info,
            data: data.pop().map(|(_, d)| d).unwrap_or_default(),
            inputs: serde_json::json!({}),
        })
    }

    /// Latest metrics, params and tags of several runs, in the order asked.
    async fn run_data(&self, ids: &[String]) -> Result<Vec<(String, RunData)>, TrackerError> {
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
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
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
        let info = self.run_info(run_id).await?;
        self.require_active(&info)?;
        let mut tx = self.write.begin().await?;
        sqlx::query("UPDATE runs SET status = coalesce(?, status), end_time = coalesce(?, end_time), run_name = coalesce(?, run_name) WHERE run_uuid = ?")
            .bind(status)
            .bind(end_time)
            .bind(run_name.filter(|n| !n.is_empty()))
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        if let Some(n) = run_name.filter(|n| !n.is_empty()) {
            sqlx::query("INSERT OR REPLACE INTO tags (run_uuid, key, value) VALUES (?, 'mlflow.runName', ?)")
                .bind(run_id)
                .bind(n)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.run_info(run_id).await
    }

    fn require_active(&self, info: &RunInfo) -> Result<(), TrackerError> {
        if info.lifecycle_stage != "active" {
            return Err(TrackerError::invalid(format!(
                "The run {} must be in the 'active' state. Current state is {}.",
                info.run_id, info.lifecycle_stage
            )));
        }
        Ok(())
    }

    pub async fn set_run_lifecycle(&self, run_id: &str, deleted: bool) -> Result<(), TrackerError> {
        let info = self.run_info(run_id).await?;
        let (from, to) = if deleted {
            ("active", "deleted")
        } else {
            ("deleted", "active")
        };
        if info.lifecycle_stage != from {
            return Err(TrackerError::invalid(format!(
                "Cannot {} run {run_id}: it is {}",
                if deleted { "delete" } else { "restore" },
                info.lifecycle_stage
            )));
        }
        sqlx::query("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?")
            .bind(to)
            .bind(deleted.then(now_ms))
            .bind(run_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

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
        for m in &batch.metrics {
            valid_key("metric", &m.key)?;
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
        let mut tx = self.write.begin().await?;
        let stage: Option<String> =
            sqlx::query_scalar("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?")
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await?;
        match stage.as_deref() {
            None => {
                return Err(TrackerError::not_found(format!(
                    "Run with id={run_id} not found"
                )));
            }
            Some("active") => {}
            Some(s) => {
                return Err(TrackerError::invalid(format!(
                    "The run {run_id} must be in the 'active' state. Current state is {s}."
                )));
            }
        }
        // Params: one lookup of the keys already logged, then one multi-row insert.
        if !batch.params.is_empty() {
            let marks = vec!["?"; batch.params.len()].join(",");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT key, value FROM params WHERE run_uuid = ? AND key IN ({marks})"
            )))
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
                let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO params (run_uuid, key, value) VALUES {rows}"
                )));
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
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT OR REPLACE INTO tags (run_uuid, key, value) VALUES {rows}"
            )));
            for t in &last {
                q = q.bind(run_id).bind(&t.key).bind(&t.value);
            }
            q.execute(&mut *tx).await?;
            if let Some(name) = last.iter().find(|t| t.key == "mlflow.runName") {
                sqlx::query("UPDATE runs SET run_name = ? WHERE run_uuid = ?")
                    .bind(&name.value)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if !batch.metrics.is_empty() {
            // Every point, in multi-row inserts (identical points are stored once) …
            for chunk in batch.metrics.chunks(500) {
                let rows = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT OR IGNORE INTO metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES {rows}"
                )));
                for m in chunk {
                    let (value, is_nan) = stored(m.value);
                    q = q
                        .bind(run_id)
                        .bind(&m.key)
                        .bind(m.step)
                        .bind(m.timestamp)
                        .bind(value)
                        .bind(is_nan);
                }
                q.execute(&mut *tx).await?;
            }
            // … and, per key, the batch's latest point against the stored latest.
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
                let rows = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO latest_metrics (run_uuid, key, step, timestamp, value, is_nan) VALUES {rows}
                     ON CONFLICT (run_uuid, key) DO UPDATE SET step = excluded.step, timestamp = excluded.timestamp,
                       value = excluded.value, is_nan = excluded.is_nan
                     WHERE (excluded.step, excluded.timestamp, excluded.value) > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)"
                )));
                for (key, step, ts, value, is_nan) in chunk {
                    q = q
                        .bind(run_id)
                        .bind(*key)
                        .bind(*step)
                        .bind(*ts)
                        .bind(*value)
                        .bind(*is_nan);
                }
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_tag(&self, run_id: &str, key: &str) -> Result<(), TrackerError> {
        let info = self.run_info(run_id).await?;
        self.require_active(&info)?;
        let done = sqlx::query("DELETE FROM tags WHERE run_uuid = ? AND key = ?")
            .bind(run_id)
            .bind(key)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(TrackerError::not_found(format!(
                "No tag with name: {key} in run with id {run_id}"
            )));
        }
        Ok(())
    }

    /// Every logged point of one metric, by step then timestamp.
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
        let rows = sqlx::query(
            "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? AND key = ?
             ORDER BY step, timestamp, value LIMIT ? OFFSET ?",
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

    pub async fn search_runs(
        &self,
        experiment_ids: &[String],
        filter: Option<&str>,
        view_type: Option<&str>,
        max_results: Option<i64>,
        order_by: &[String],
        token: Option<&str>,
    ) -> Result<(Vec<Run>, Option<String>), TrackerError> {
        let max = check_max_results(max_results, 1000)?;
        let offset = parse_page_token(token)?;
        if experiment_ids.is_empty() {
            return Ok((Vec::new(), None));
        }
        let mut binds = Vec::new();
        let ids = experiment_ids
            .iter()
            .map(|e| parse_experiment_id(e).map(Bind::Int))
            .collect::<Result<Vec<_>, _>>()?;
        let mut conds = vec![format!(
            "r.experiment_id IN ({})",
            vec!["?"; ids.len()].join(",")
        )];
        binds.extend(ids);
        conds.push(lifecycle_cond("r", view_type)?);
        let order = filter::order_sql(order_by, Target::Runs)?;
        conds.extend(filter::to_sql(
            &filter::parse(filter.unwrap_or(""))?,
            Target::Runs,
            &mut binds,
            !order.joins.is_empty(),
        )?);
        let mut terms = order.terms;
        terms.push("r.start_time DESC".into());
        terms.push("r.run_uuid ASC".into());
        let sql = format!(
            "SELECT r.* FROM runs r {} WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
            order.joins.join(" "),
            conds.join(" AND "),
            terms.join(", "),
            max + 1,
            offset
        );
        let mut all = order.join_binds;
        all.extend(binds);
        let binds = all;
        let rows = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
            .fetch_all(&self.read)
            .await?;
        let next = (rows.len() as i64 > max).then(|| page_token(offset + max));
        let infos: Vec<RunInfo> = rows
            .iter()
            .take(max as usize)
            .map(info_from_row)
            .collect::<Result<_, _>>()?;
        let ids: Vec<String> = infos.iter().map(|i| i.run_id.clone()).collect();
        let data = self.run_data(&ids).await?;
        let runs = infos
            .into_iter()
            .zip(data)
            .map(|(info, (_, data))| Run {
                info,
                data,
                inputs: serde_json::json!({}),
            })
            .collect();
        Ok((runs, next))
    }
}

fn lifecycle_cond(alias: &str, view_type: Option<&str>) -> Result<String, TrackerError> {
    Ok(match view_type.unwrap_or("ACTIVE_ONLY") {
        "ACTIVE_ONLY" | "" => format!("{alias}.lifecycle_stage = 'active'"),
        "DELETED_ONLY" => format!("{alias}.lifecycle_stage = 'deleted'"),
        "ALL" => "1 = 1".to_owned(),
        other => {
            return Err(TrackerError::invalid(format!(
                "view type must be ACTIVE_ONLY, DELETED_ONLY or ALL, got {other:?}"
            )));
        }
    })
}

fn info_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<RunInfo, TrackerError> {
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
fn generated_name(run_id: &str) -> String {
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
