//! The client itself: the backend (HTTP with retries, or a local store), the metric buffer, and
//! submitting operations now or to the spool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::TrackerError;
use crate::model::{KeyValue, Metric};
use crate::store::{Batch, Durability, Store, now_ms};

use super::spool::{self, LOCAL_RUN_TAG, ReplayError};

enum Backend {
    Http {
        url: String,
        token: Option<String>,
        agent: ureq::Agent,
    },
    Local {
        store: Store,
        rt: tokio::runtime::Runtime,
        /// `<database's folder>/artifacts`: where `fusionprot serve --artifacts` should point.
        artifacts: PathBuf,
    },
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Http { url, .. } => write!(f, "Http({url})"),
            Backend::Local { .. } => f.write_str("Local"),
        }
    }
}

/// A tracking connection with a metric buffer and an offline spool.
#[derive(Debug)]
pub struct Client {
    backend: Backend,
    spool: PathBuf,
    buffer: HashMap<String, Vec<Metric>>,
    /// Local run id → server run id, for runs created while offline.
    run_map: HashMap<String, String>,
    pub retries: u32,
    pub backoff: Duration,
}

fn api_err(e: impl std::fmt::Display) -> TrackerError {
    TrackerError::Schema(e.to_string())
}

impl Client {
    /// Connects to `uri` (`http://…`, `https://…` or `sqlite:///path`); `spool` is where
    /// operations go while the server cannot be reached.
    ///
    /// # Errors
    /// An unknown scheme or an unopenable local database.
    pub fn connect(
        uri: &str,
        token: Option<String>,
        spool: PathBuf,
    ) -> Result<Client, TrackerError> {
        let backend = if let Some(path) = uri.strip_prefix("sqlite://") {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(api_err)?;
            let store = rt.block_on(Store::open(path, Durability::Normal))?;
            let artifacts = std::path::Path::new(path)
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("artifacts");
            Backend::Local {
                store,
                rt,
                artifacts,
            }
        } else if uri.starts_with("http://") || uri.starts_with("https://") {
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build();
            Backend::Http {
                url: uri.trim_end_matches('/').to_owned(),
                token,
                agent,
            }
        } else {
            return Err(TrackerError::invalid(format!(
                "tracking URI {uri:?}: use http://HOST:PORT or sqlite:///path/fusionprot.db"
            )));
        };
        Ok(Client {
            backend,
            spool,
            buffer: HashMap::new(),
            run_map: HashMap::new(),
            retries: 4,
            backoff: Duration::from_millis(100),
        })
    }

    /// Sends one operation; `Err(None)` means "unreachable" (spool it), `Err(Some(e))` a refusal.
    pub(super) fn send(&mut self, op: &Value) -> Result<Value, Option<TrackerError>> {
        match &self.backend {
            Backend::Http { url, token, agent } => {
                let (method, path) = route(op);
                let mut delay = self.backoff;
                for attempt in 0..=self.retries {
                    let full = format!("{url}{path}");
                    let mut req = agent
                        .request(method, &full)
                        .set("Content-Type", "application/json");
                    if let Some(t) = token {
                        req = req.set("Authorization", &format!("Bearer {t}"));
                    }
                    match req.send_string(&op["body"].to_string()) {
                        Ok(resp) => return resp.into_json::<Value>().map_err(|e| Some(api_err(e))),
                        // 4xx is a refusal for good, except 429 (busy: try again later).
                        Err(ureq::Error::Status(code, resp)) if code < 500 && code != 429 => {
                            let text = resp.into_string().unwrap_or_default();
                            return Err(Some(TrackerError::invalid(format!(
                                "{full}: {code} {text}"
                            ))));
                        }
                        Err(_) if attempt < self.retries => {
                            std::thread::sleep(delay);
                            delay *= 2;
                        }
                        Err(_) => return Err(None),
                    }
                }
                Err(None)
            }
            Backend::Local {
                store,
                rt,
                artifacts,
            } => rt.block_on(local(store, artifacts, op)).map_err(Some),
        }
    }

    fn spool_append(&self, op: &Value) -> Result<(), TrackerError> {
        spool::append(&self.spool, op)
    }

    /// Replays a spool left from earlier before anything new is sent. `Ok(false)`: the server is
    /// still unreachable, so new operations must queue behind the spool.
    ///
    /// # Errors
    /// A spooled operation the server refuses for good, or a malformed spool line: logging
    /// cannot go on silently behind it (`fusionprot sync FILE --skip-refused` sets it aside).
    fn spool_drained(&mut self) -> Result<bool, TrackerError> {
        if !self.spool.exists() {
            return Ok(true);
        }
        match self.replay_spool() {
            Ok(_) => Ok(true),
            Err(ReplayError::Unreachable { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `op` now (after replaying any spool), or spools it when the server is unreachable.
    fn submit(&mut self, mut op: Value) -> Result<Option<Value>, TrackerError> {
        op["id"] = json!(uuid::Uuid::new_v4().simple().to_string());
        if !self.spool_drained()? {
            self.spool_append(&op)?;
            return Ok(None);
        }
        self.map_run_ids(&mut op);
        match self.send(&op) {
            Ok(v) => Ok(Some(v)),
            Err(Some(e)) => Err(e),
            Err(None) => {
                tracing::warn!(spool = %self.spool.display(), "tracking server unreachable; logging to the spool file");
                self.spool_append(&op)?;
                Ok(None)
            }
        }
    }

    pub(super) fn map_run_ids(&self, op: &mut Value) {
        if let Some(r) = op["body"]["run_id"].as_str()
            && let Some(mapped) = self.run_map.get(r)
        {
            op["body"]["run_id"] = json!(mapped);
        }
    }

    /// Creates a run in the named experiment (created if missing); returns its id (a local id
    /// while the server is unreachable).
    ///
    /// # Errors
    /// A refusal from the server.
    pub fn create_run(
        &mut self,
        experiment: &str,
        run_name: &str,
        tags: &[KeyValue],
    ) -> Result<String, TrackerError> {
        let local = format!("local-{}", uuid::Uuid::new_v4().simple());
        let mut tags = tags.to_vec();
        tags.push(KeyValue {
            key: LOCAL_RUN_TAG.into(),
            value: local.clone(),
        });
        let mut op = json!({ "op": "create-run", "experiment": experiment, "local_run_id": local,
            "id": uuid::Uuid::new_v4().simple().to_string(),
            "body": { "run_name": run_name, "start_time": now_ms(), "tags": tags } });
        if self.spool_drained()? {
            match experiment_id(self, experiment) {
                Ok(exp) => {
                    op["body"]["experiment_id"] = json!(exp);
                    match self.send(&op) {
                        Ok(v) => {
                            let id = v["run"]["info"]["run_id"]
                                .as_str()
                                .unwrap_or(&local)
                                .to_owned();
                            self.run_map.insert(local, id.clone());
                            return Ok(id);
                        }
                        Err(Some(e)) => return Err(e),
                        Err(None) => {}
                    }
                }
                Err(Some(e)) => return Err(e),
                Err(None) => {}
            }
        }
        tracing::warn!(spool = %self.spool.display(), "tracking server unreachable; logging to the spool file");
        self.spool_append(&op)?;
        Ok(local)
    }

    /// Buffers a metric point; sent with the next flush (automatically at 1000 points).
    ///
    /// # Errors
    /// A refused flush.
    pub fn log_metric(
        &mut self,
        run_id: &str,
        key: &str,
        value: f64,
        step: i64,
    ) -> Result<(), TrackerError> {
        let buf = self.buffer.entry(run_id.to_owned()).or_default();
        buf.push(Metric {
            key: key.to_owned(),
            value,
            timestamp: now_ms(),
            step,
        });
        if buf.len() >= crate::store::limits::MAX_METRICS_PER_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Logs params (immutable) and tags in one batch.
    ///
    /// # Errors
    /// A refusal from the server (e.g. a changed param).
    pub fn log_params(
        &mut self,
        run_id: &str,
        params: &[KeyValue],
        tags: &[KeyValue],
    ) -> Result<(), TrackerError> {
        for chunk in params.chunks(100) {
            self.submit(
                json!({ "op": "log-batch", "body": { "run_id": run_id, "params": chunk } }),
            )?;
        }
        for chunk in tags.chunks(100) {
            self.submit(json!({ "op": "log-batch", "body": { "run_id": run_id, "tags": chunk } }))?;
        }
        Ok(())
    }

    /// Sends every buffered metric.
    ///
    /// # Errors
    /// A refusal from the server.
    pub fn flush(&mut self) -> Result<(), TrackerError> {
        let buffer = std::mem::take(&mut self.buffer);
        for (run, metrics) in buffer {
            for chunk in metrics.chunks(crate::store::limits::MAX_METRICS_PER_BATCH) {
                self.submit(
                    json!({ "op": "log-batch", "body": { "run_id": run, "metrics": chunk } }),
                )?;
            }
        }
        Ok(())
    }

    /// Flushes and marks the run finished (or failed).
    ///
    /// # Errors
    /// A refusal from the server.
    pub fn end_run(&mut self, run_id: &str, status: &str) -> Result<(), TrackerError> {
        self.flush()?;
        self.submit(json!({ "op": "update-run", "body": { "run_id": run_id, "status": status, "end_time": now_ms() } }))?;
        Ok(())
    }

    /// Stores `file` as the run's artifact `artifact_path` (MLflow's `log_artifact`): over HTTP
    /// through the server's `mlflow-artifacts` proxy; with `sqlite:///DIR/x.db` into
    /// `DIR/artifacts/<experiment>/<run>/artifacts/…` (written under a temporary name, then
    /// renamed), the folder `fusionprot serve --artifacts DIR/artifacts` serves.
    ///
    /// # Errors
    /// An invalid path, an unreadable file, a run whose artifacts are not `mlflow-artifacts:`,
    /// an unreachable server (artifacts are not spooled: the file stays where it is).
    pub fn log_artifact(
        &mut self,
        run_id: &str,
        file: &std::path::Path,
        artifact_path: &str,
    ) -> Result<(), TrackerError> {
        let segments = crate::artifacts::check_path(artifact_path)?;
        if !self.spool_drained()? {
            return Err(TrackerError::invalid(
                "tracking server unreachable: artifacts are not spooled",
            ));
        }
        let mut op = json!({ "op": "get-run", "body": { "run_id": run_id } });
        self.map_run_ids(&mut op);
        let run_id = op["body"]["run_id"].as_str().unwrap_or(run_id).to_owned();
        let bytes = std::fs::read(file)
            .map_err(|e| TrackerError::invalid(format!("{}: {e}", file.display())))?;
        match &self.backend {
            Backend::Http { url, token, agent } => {
                let get = format!("{url}/api/2.0/mlflow/runs/get?run_id={run_id}");
                let mut req = agent.get(&get);
                if let Some(t) = token {
                    req = req.set("Authorization", &format!("Bearer {t}"));
                }
                let run: Value = req.call().map_err(api_err)?.into_json().map_err(api_err)?;
                let uri = run["run"]["info"]["artifact_uri"]
                    .as_str()
                    .unwrap_or_default();
                let rel = uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
                    TrackerError::invalid(format!(
                        "run artifacts at {uri:?}, not mlflow-artifacts:"
                    ))
                })?;
                let put = format!(
                    "{url}{}/{}/{}",
                    crate::artifacts::PREFIX,
                    rel.trim_matches('/'),
                    segments.join("/")
                );
                let mut req = agent.put(&put);
                if let Some(t) = token {
                    req = req.set("Authorization", &format!("Bearer {t}"));
                }
                req.send_bytes(&bytes).map_err(api_err)?;
            }
            Backend::Local {
                store,
                rt,
                artifacts,
            } => {
                let run = rt.block_on(store.get_run(&run_id))?;
                let uri = run.info.artifact_uri;
                let rel = uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
                    TrackerError::invalid(format!(
                        "run artifacts at {uri:?}, not mlflow-artifacts:"
                    ))
                })?;
                let rel = crate::artifacts::check_path(rel.trim_matches('/'))?;
                let mut target = artifacts.clone();
                target.extend(rel);
                target.extend(&segments);
                let dir = target.parent().unwrap_or(artifacts).to_owned();
                let io =
                    |e: std::io::Error| TrackerError::invalid(format!("{}: {e}", dir.display()));
                std::fs::create_dir_all(&dir).map_err(io)?;
                let tmp = dir.join(format!(
                    ".tmp-{}",
                    segments.last().map_or("artifact", String::as_str)
                ));
                std::fs::write(&tmp, &bytes).map_err(io)?;
                std::fs::rename(&tmp, &target).map_err(io)?;
            }
        }
        Ok(())
    }

    /// Records a checkpoint of a run (`checkpoints` table: step, path, sha256, metrics, best flag);
    /// spooled like metrics while the server is down.
    ///
    /// # Errors
    /// A refusal from the server.
    pub fn log_checkpoint(&mut self, checkpoint: &Value) -> Result<(), TrackerError> {
        self.submit(json!({ "op": "log-checkpoint", "body": checkpoint }))?;
        Ok(())
    }

    /// Registers the dataset at `dataset` (by its manifest; with `sqlite:///` by its path, so SQL
    /// reads its tables) under `name` and links it to the run. Not spooled: it needs the registry's
    /// answer.
    ///
    /// # Errors
    /// No readable manifest, an unreachable server, a refusal.
    pub fn link_dataset(
        &mut self,
        run_id: &str,
        name: &str,
        dataset: &std::path::Path,
        context: &str,
    ) -> Result<String, TrackerError> {
        if !self.spool_drained()? {
            return Err(TrackerError::invalid(
                "tracking server unreachable: the dataset is not linked",
            ));
        }
        let mut body = json!({ "name": name });
        if matches!(self.backend, Backend::Local { .. }) {
            body["path"] = json!(dataset.display().to_string());
        } else {
            body["manifest"] = fusionprot_pipeline::dataset::manifest::Recorded::read(dataset)
                .map_err(|e| TrackerError::invalid(e.to_string()))?
                .to_value();
        }
        let registered = self
            .send(&json!({ "op": "register-dataset", "body": body }))
            .map_err(|e| {
                e.unwrap_or_else(|| TrackerError::invalid("tracking server unreachable"))
            })?;
        let id = registered["dataset_id"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| registered["dataset_id"].as_i64().map(|i| i.to_string()))
            .ok_or_else(|| TrackerError::invalid(format!("no dataset_id in {registered}")))?;
        let mut op = json!({ "op": "link-dataset",
            "body": { "run_id": run_id, "dataset_id": id, "context": context } });
        self.map_run_ids(&mut op);
        self.send(&op).map_err(|e| {
            e.unwrap_or_else(|| TrackerError::invalid("tracking server unreachable"))
        })?;
        Ok(id)
    }

    /// Replays the spool file; stops at the first operation the server cannot be reached for.
    ///
    /// # Errors
    /// Unreachable (the rest stays spooled), a refused operation or a malformed line (both name
    /// the line).
    pub fn replay_spool(&mut self) -> Result<usize, ReplayError> {
        let spool = self.spool.clone();
        let n = spool::replay(self, &spool)?;
        if n > 0 {
            tracing::info!(operations = n, spool = %spool.display(), "replayed spooled tracking operations");
        }
        Ok(n)
    }
}

pub(super) fn route(op: &Value) -> (&'static str, &'static str) {
    match op["op"].as_str().unwrap_or("") {
        "create-run" => ("POST", "/api/2.0/mlflow/runs/create"),
        "update-run" => ("POST", "/api/2.0/mlflow/runs/update"),
        "get-experiment-by-name" => ("GET", "/api/2.0/mlflow/experiments/get-by-name"),
        "create-experiment" => ("POST", "/api/2.0/mlflow/experiments/create"),
        "search-runs" => ("POST", "/api/2.0/mlflow/runs/search"),
        "log-checkpoint" => ("POST", "/api/fusionprot/checkpoints/log"),
        "register-dataset" => ("POST", "/api/fusionprot/datasets/register"),
        "link-dataset" => ("POST", "/api/fusionprot/runs/link-dataset"),
        _ => ("POST", "/api/2.0/mlflow/runs/log-batch"),
    }
}

/// A list field of an operation's body (absent: empty); a malformed one is an error.
fn field<T: serde::de::DeserializeOwned>(body: &Value, key: &str) -> Result<Vec<T>, TrackerError> {
    serde_json::from_value(body.get(key).cloned().unwrap_or(json!([])))
        .map_err(|e| TrackerError::invalid(format!("{key}: {e}")))
}

/// Applies an operation to a local store (the `sqlite:///` backend).
async fn local(store: &Store, artifacts: &Path, op: &Value) -> Result<Value, TrackerError> {
    let b = &op["body"];
    let s = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
    match op["op"].as_str().unwrap_or("") {
        "create-experiment" => {
            Ok(json!({ "experiment_id": store.create_experiment(&s("name"), None, &[]).await? }))
        }
        "create-run" => {
            let exp = s("experiment_id");
            let tags: Vec<KeyValue> = field(b, "tags")?;
            let run = store
                .create_run(&exp, "", &s("run_name"), b["start_time"].as_i64(), &tags)
                .await?;
            Ok(json!({ "run": run }))
        }
        "update-run" => Ok(
            json!({ "run_info": store.update_run(&s("run_id"), b["status"].as_str(), b["end_time"].as_i64(), None).await? }),
        ),
        "search-runs" => {
            let ids: Vec<String> = field(b, "experiment_ids")?;
            let (runs, _) = store
                .search_runs(&ids, b["filter"].as_str(), Some("ALL"), Some(1), &[], None)
                .await?;
            Ok(json!({ "runs": runs }))
        }
        "log-batch" => {
            let batch = Batch {
                metrics: field(b, "metrics")?,
                params: field(b, "params")?,
                tags: field(b, "tags")?,
            };
            store.log_batch(&s("run_id"), &batch).await?;
            Ok(json!({}))
        }
        "log-checkpoint" => {
            let c: crate::registry::CheckpointIn = serde_json::from_value(b.clone())
                .map_err(|e| TrackerError::invalid(format!("checkpoint: {e}")))?;
            Ok(json!({ "checkpoint_id": store.log_checkpoint(&c).await? }))
        }
        "register-dataset" => {
            // The database's artifact store is never a dataset, as on a server.
            let scope = crate::dataset_files::Confinement {
                below: None,
                never: std::fs::canonicalize(artifacts).into_iter().collect(),
            };
            store
                .register_dataset(
                    &s("name"),
                    b["path"].as_str(),
                    b.get("manifest").filter(|m| !m.is_null()),
                    &scope,
                )
                .await
        }
        "link-dataset" => {
            store
                .link_dataset(&s("run_id"), &s("dataset_id"), &s("context"))
                .await?;
            Ok(json!({}))
        }
        other => Err(TrackerError::invalid(format!(
            "unknown tracking operation {other:?}"
        ))),
    }
}

/// The experiment id for a name, creating the experiment if needed.
fn experiment_id(client: &mut Client, name: &str) -> Result<String, Option<TrackerError>> {
    if let Backend::Local { store, rt, .. } = &client.backend {
        return rt
            .block_on(async {
                match store.get_experiment_by_name(name).await {
                    Ok(e) => Ok(e.experiment_id),
                    Err(_) => store.create_experiment(name, None, &[]).await,
                }
            })
            .map_err(Some);
    }
    if let Backend::Http { url, token, agent } = &client.backend {
        let mut req = agent
            .get(&format!("{url}/api/2.0/mlflow/experiments/get-by-name"))
            .query("experiment_name", name);
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        match req.call() {
            Ok(resp) => {
                let v: Value = resp.into_json().map_err(|e| Some(api_err(e)))?;
                return Ok(v["experiment"]["experiment_id"]
                    .as_str()
                    .unwrap_or("0")
                    .to_owned());
            }
            Err(ureq::Error::Status(404, _)) => {}
            Err(ureq::Error::Status(code, r)) => {
                return Err(Some(TrackerError::invalid(format!(
                    "{code} {}",
                    r.into_string().unwrap_or_default()
                ))));
            }
            Err(_) => return Err(None),
        }
    }
    let v = client.send(&json!({ "op": "create-experiment", "body": { "name": name } }))?;
    Ok(v["experiment_id"].as_str().unwrap_or("0").to_owned())
}

/// Runs created through the client resolve their experiment by name at creation.
impl Client {
    /// Creates (if needed) and returns the id of an experiment.
    ///
    /// # Errors
    /// Unreachable or refused.
    pub fn experiment(&mut self, name: &str) -> Result<String, TrackerError> {
        experiment_id(self, name)
            .map_err(|e| e.unwrap_or_else(|| TrackerError::invalid("tracking server unreachable")))
    }
}

impl spool::Server for Client {
    fn send(&mut self, op: &Value) -> Result<Value, Option<TrackerError>> {
        Client::send(self, op)
    }

    fn map_run_ids(&self, op: &mut Value) {
        Client::map_run_ids(self, op);
    }

    fn remember_run(&mut self, local: String, run_id: String) {
        self.run_map.insert(local, run_id);
    }

    fn experiment_id(&mut self, name: &str) -> Result<String, Option<TrackerError>> {
        experiment_id(self, name)
    }
}
