//! The tracking client the trainer logs through (blocking API; no tch here).
//!
//! - `http://HOST:PORT` talks to `fusionprot serve` (or any MLflow server) over the REST API;
//!   `sqlite:///path/fusionprot.db` writes straight into that database through the same store
//!   code the server uses, with no server at all.
//! - Metrics are buffered and sent as `log-batch` requests (≤ 1000 per batch); failed requests are
//!   retried with exponential backoff.
//! - When the server stays unreachable, every operation goes to an append-only spool file (JSON
//!   lines, each with a unique id, fsynced) and logging carries on; runs created meanwhile get a
//!   local id. The spool is replayed, in order, at the next successful contact or by
//!   `fusionprot sync FILE`. Replay is exactly-once: replayed ids are recorded in `FILE.done`,
//!   metric points, params and tags are idempotent on the server, and a spooled run is found
//!   again by its `fusionprot.local_run_id` tag instead of being created twice.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::TrackerError;
use crate::model::{KeyValue, Metric};
use crate::store::{Batch, Durability, Store, now_ms};

const LOCAL_RUN_TAG: &str = "fusionprot.local_run_id";

enum Backend {
    Http {
        url: String,
        token: Option<String>,
        agent: ureq::Agent,
    },
    Local {
        store: Store,
        rt: tokio::runtime::Runtime,
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
            Backend::Local { store, rt }
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
    fn send(&mut self, op: &Value) -> Result<Value, Option<TrackerError>> {
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
                        Err(ureq::Error::Status(code, resp)) if code < 500 => {
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
            Backend::Local { store, rt } => rt.block_on(local(store, op)).map_err(Some),
        }
    }

    fn spool_append(&self, op: &Value) -> Result<(), TrackerError> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spool)
            .map_err(|source| TrackerError::Io {
                path: self.spool.display().to_string(),
                source,
            })?;
        let line = format!("{op}\n");
        f.write_all(line.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|source| TrackerError::Io {
                path: self.spool.display().to_string(),
                source,
            })
    }

    /// Runs `op` now (after replaying any spool), or spools it when the server is unreachable.
    fn submit(&mut self, mut op: Value) -> Result<Option<Value>, TrackerError> {
        op["id"] = json!(uuid::Uuid::new_v4().simple().to_string());
        if self.spool.exists() && self.replay_spool().is_err() {
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

    fn map_run_ids(&self, op: &mut Value) {
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
        let online = !self.spool.exists() || self.replay_spool().is_ok();
        if online {
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

    /// Replays the spool file; stops at the first operation the server cannot be reached for.
    ///
    /// # Errors
    /// Unreachable (the rest stays spooled) or a refused operation.
    pub fn replay_spool(&mut self) -> Result<usize, TrackerError> {
        let spool = self.spool.clone();
        let n = replay(self, &spool)?;
        if n > 0 {
            tracing::info!(operations = n, spool = %spool.display(), "replayed spooled tracking operations");
        }
        Ok(n)
    }
}

fn route(op: &Value) -> (&'static str, &'static str) {
    match op["op"].as_str().unwrap_or("") {
        "create-run" => ("POST", "/api/2.0/mlflow/runs/create"),
        "update-run" => ("POST", "/api/2.0/mlflow/runs/update"),
        "get-experiment-by-name" => ("GET", "/api/2.0/mlflow/experiments/get-by-name"),
        "create-experiment" => ("POST", "/api/2.0/mlflow/experiments/create"),
        "search-runs" => ("POST", "/api/2.0/mlflow/runs/search"),
        _ => ("POST", "/api/2.0/mlflow/runs/log-batch"),
    }
}

/// Applies an operation to a local store (the `sqlite:///` backend).
async fn local(store: &Store, op: &Value) -> Result<Value, TrackerError> {
    let b = &op["body"];
    let s = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
    match op["op"].as_str().unwrap_or("") {
        "create-experiment" => {
            Ok(json!({ "experiment_id": store.create_experiment(&s("name"), None, &[]).await? }))
        }
        "create-run" => {
            let exp = s("experiment_id");
            let tags: Vec<KeyValue> = serde_json::from_value(b["tags"].clone()).unwrap_or_default();
            let run = store
                .create_run(&exp, "", &s("run_name"), b["start_time"].as_i64(), &tags)
                .await?;
            Ok(json!({ "run": run }))
        }
        "update-run" => Ok(
            json!({ "run_info": store.update_run(&s("run_id"), b["status"].as_str(), b["end_time"].as_i64(), None).await? }),
        ),
        "search-runs" => {
            let ids: Vec<String> =
                serde_json::from_value(b["experiment_ids"].clone()).unwrap_or_default();
            let (runs, _) = store
                .search_runs(&ids, b["filter"].as_str(), Some("ALL"), Some(1), &[], None)
                .await?;
            Ok(json!({ "runs": runs }))
        }
        _ => {
            let batch = Batch {
                metrics: serde_json::from_value(b["metrics"].clone()).unwrap_or_default(),
                params: serde_json::from_value(b["params"].clone()).unwrap_or_default(),
                tags: serde_json::from_value(b["tags"].clone()).unwrap_or_default(),
            };
            store.log_batch(&s("run_id"), &batch).await?;
            Ok(json!({}))
        }
    }
}

/// The experiment id for a name, creating the experiment if needed.
fn experiment_id(client: &mut Client, name: &str) -> Result<String, Option<TrackerError>> {
    if let Backend::Local { store, rt } = &client.backend {
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

/// Replays `spool` through `client`; operations already replayed (listed in `<spool>.done`)
/// are skipped, so running it again, or after an interruption, sends nothing twice. Returns the
/// number of operations sent; when all are done, both files are removed.
///
/// # Errors
/// The server is unreachable (progress so far is kept) or refuses an operation.
pub fn replay(client: &mut Client, spool: &Path) -> Result<usize, TrackerError> {
    if !spool.exists() {
        return Ok(0);
    }
    let done_path = PathBuf::from(format!("{}.done", spool.display()));
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| TrackerError::Io {
            path: p.clone(),
            source,
        }
    };
    let done: std::collections::HashSet<String> = std::fs::read_to_string(&done_path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let file = std::fs::File::open(spool).map_err(io(spool))?;
    let mut done_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&done_path)
        .map_err(io(&done_path))?;
    let mut sent = 0;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(spool))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut op: Value = serde_json::from_str(&line).map_err(|e| {
            TrackerError::invalid(format!("{} line {}: {e}", spool.display(), n + 1))
        })?;
        let id = op["id"].as_str().unwrap_or_default().to_owned();
        if op["op"] == "create-run" {
            // find the run again by its local id, or create it once
            let local = op["local_run_id"].as_str().unwrap_or_default().to_owned();
            let exp = experiment_id(client, op["experiment"].as_str().unwrap_or("Default"))
                .map_err(unreachable)?;
            let found = client
                .send(&json!({ "op": "search-runs", "body": { "experiment_ids": [exp], "run_view_type": "ALL",
                    "filter": format!("tags.`{LOCAL_RUN_TAG}` = '{local}'"), "max_results": 1 } }))
                .map_err(unreachable)?;
            let run_id = match found["runs"][0]["info"]["run_id"].as_str() {
                Some(r) => r.to_owned(),
                None => {
                    op["body"]["experiment_id"] = json!(exp);
                    let v = client.send(&op).map_err(unreachable)?;
                    v["run"]["info"]["run_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                }
            };
            client.run_map.insert(local, run_id);
        } else if !done.contains(&id) {
            client.map_run_ids(&mut op);
            client.send(&op).map_err(unreachable)?;
        }
        if !done.contains(&id) {
            writeln!(done_file, "{id}")
                .and_then(|()| done_file.sync_data())
                .map_err(io(&done_path))?;
            sent += 1;
        }
    }
    drop(done_file);
    let _ = std::fs::remove_file(spool);
    let _ = std::fs::remove_file(&done_path);
    Ok(sent)
}

fn unreachable(e: Option<TrackerError>) -> TrackerError {
    e.unwrap_or_else(|| {
        TrackerError::invalid(
            "tracking server unreachable; the spool file is kept for a later `fusionprot sync`",
        )
    })
}

/// Runs created through the client resolve their experiment by name at creation.
impl Client {
    /// Creates (if needed) and returns the id of an experiment.
    ///
    /// # Errors
    /// Unreachable or refused.
    pub fn experiment(&mut self, name: &str) -> Result<String, TrackerError> {
        experiment_id(self, name).map_err(unreachable)
    }
}
