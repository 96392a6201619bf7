//! The offline spool: operations appended (fsynced JSON lines, each with a unique id) while the
//! server is unreachable, and their replay, exactly once. A replay stops at an unreachable
//! server (the rest stays spooled); an operation the server refuses for good, or a line that is
//! not a tracking operation, is an error naming the file and line — never skipped silently and
//! never left to block logging forever: `replay_with(…, Some(rejects))` (`fusionprot sync FILE
//! --skip-refused`) moves refused operations to a rejects file and carries on.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::{ErrorCode, TrackerError};
use crate::model::{KeyValue, Metric};

/// The tag that finds a spooled run again on the server: its local id.
pub(super) const LOCAL_RUN_TAG: &str = "fusionprot.local_run_id";

/// What a replay needs of a connection to a tracking server (the client is the one there is).
pub trait Server {
    /// Sends one operation; `Err(None)` when the server is unreachable.
    fn send(&mut self, op: &Value) -> Result<Value, Option<TrackerError>>;
    /// Rewrites local run ids in `op` to the server's, where known.
    fn map_run_ids(&self, op: &mut Value);
    /// Records that the spooled run `local` is `run_id` on the server.
    fn remember_run(&mut self, local: String, run_id: String);
    /// The id of the experiment named `name`, created when missing.
    fn experiment_id(&mut self, name: &str) -> Result<String, Option<TrackerError>>;
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("tracking server unreachable; {} is kept for a later `fusionprot sync`", .spool.display())]
    Unreachable { spool: PathBuf },
    #[error(
        "{}:{line}: {op} refused by the server: {source}; fix the cause, or set it aside with `fusionprot sync {} --skip-refused`",
        .spool.display(), .spool.display()
    )]
    Refused {
        spool: PathBuf,
        line: usize,
        op: String,
        source: TrackerError,
    },
    #[error("{}:{line}: not a tracking operation: {why}", .spool.display())]
    BadLine {
        spool: PathBuf,
        line: usize,
        why: String,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<ReplayError> for TrackerError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Io { path, source } => TrackerError::Io {
                path: path.display().to_string(),
                source,
            },
            other => TrackerError::Api {
                code: ErrorCode::BadRequest,
                message: other.to_string(),
            },
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Operations applied (or found already applied).
    pub sent: usize,
    /// Refused operations moved to the rejects file.
    pub set_aside: usize,
}

/// Appends one operation and fsyncs it.
pub(super) fn append(spool: &Path, op: &Value) -> Result<(), TrackerError> {
    let io = |source| TrackerError::Io {
        path: spool.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(spool)
        .map_err(io)?;
    f.write_all(format!("{op}\n").as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(io)
}

/// Checks that a spool line is one of the operations the client spools, with the fields it
/// needs, before anything is sent. Returns the operation's name.
fn check_op(op: &Value) -> Result<&'static str, String> {
    let id = op.get("id").and_then(Value::as_str).unwrap_or_default();
    if id.is_empty() {
        return Err("no \"id\"".into());
    }
    let body = op
        .get("body")
        .filter(|b| b.is_object())
        .ok_or("no \"body\" object")?;
    let text = |v: &Value, k: &str| -> Result<(), String> {
        match v.get(k).and_then(Value::as_str) {
            Some(s) if !s.is_empty() => Ok(()),
            _ => Err(format!("no \"{k}\"")),
        }
    };
    let list = |k: &str, kind: &str| -> Result<usize, String> {
        let v = body.get(k).cloned().unwrap_or(json!([]));
        let n = if kind == "metric" {
            serde_json::from_value::<Vec<Metric>>(v).map(|m| m.len())
        } else {
            serde_json::from_value::<Vec<KeyValue>>(v).map(|m| m.len())
        };
        n.map_err(|e| format!("\"{k}\" is not a list of {kind}s: {e}"))
    };
    match op.get("op").and_then(Value::as_str).unwrap_or_default() {
        "create-run" => {
            text(op, "local_run_id")?;
            text(op, "experiment")?;
            list("tags", "tag")?;
            Ok("create-run")
        }
        "update-run" => {
            text(body, "run_id")?;
            text(body, "status")?;
            Ok("update-run")
        }
        "log-batch" => {
            text(body, "run_id")?;
            let n = list("metrics", "metric")? + list("params", "param")? + list("tags", "tag")?;
            if n == 0 {
                return Err("an empty log-batch".into());
            }
            Ok("log-batch")
        }
        "log-checkpoint" => {
            text(body, "run_id")?;
            if body.get("path").and_then(Value::as_str).is_none()
                && body.get("artifact_path").and_then(Value::as_str).is_none()
            {
                return Err("a checkpoint without \"path\" or \"artifact_path\"".into());
            }
            Ok("log-checkpoint")
        }
        other => Err(format!("unknown operation {other:?}")),
    }
}

/// Replays `spool` through `client`; operations already replayed (listed in `<spool>.done`) are
/// skipped, so running it again, or after an interruption, sends nothing twice. Returns the
/// number of operations sent; when all are done, both files are removed.
///
/// # Errors
/// The server is unreachable (progress so far is kept), refuses an operation, or a line is not
/// a tracking operation; the last two name the line.
pub fn replay(client: &mut impl Server, spool: &Path) -> Result<usize, ReplayError> {
    replay_with(client, spool, None).map(|s| s.sent)
}

/// [`replay`], and with `rejects`, refused operations are appended there (each line the
/// original operation plus `"refused": <message>`) instead of stopping the replay.
///
/// # Errors
/// As [`replay`], less the refusals that were set aside.
pub fn replay_with(
    client: &mut impl Server,
    spool: &Path,
    rejects: Option<&Path>,
) -> Result<ReplaySummary, ReplayError> {
    let mut summary = ReplaySummary::default();
    if !spool.exists() {
        return Ok(summary);
    }
    let done_path = PathBuf::from(format!("{}.done", spool.display()));
    let io = |p: &Path| {
        let path = p.to_path_buf();
        move |source| ReplayError::Io {
            path: path.clone(),
            source,
        }
    };
    let unreachable = || ReplayError::Unreachable {
        spool: spool.to_path_buf(),
    };
    let done: HashSet<String> = match std::fs::read_to_string(&done_path) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
        Err(e) => return Err(io(&done_path)(e)),
    };
    let file = std::fs::File::open(spool).map_err(io(spool))?;
    let mut done_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&done_path)
        .map_err(io(&done_path))?;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(spool))?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| ReplayError::BadLine {
            spool: spool.to_path_buf(),
            line: n + 1,
            why,
        };
        let mut op: Value = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let kind = check_op(&op).map_err(bad)?;
        let id = op["id"].as_str().unwrap_or_default().to_owned();
        let outcome = if kind == "create-run" {
            // Found again by its local id, or created once; needed even when already done, so
            // later operations of this run map to its server id.
            create_run_once(client, &mut op)
        } else if done.contains(&id) {
            Ok(())
        } else {
            client.map_run_ids(&mut op);
            client.send(&op).map(|_| ())
        };
        let fresh = !done.contains(&id);
        match outcome {
            Ok(()) => summary.sent += usize::from(fresh),
            Err(None) => return Err(unreachable()),
            Err(Some(source)) => match rejects {
                Some(path) => {
                    let mut rejected = op.clone();
                    rejected["refused"] = json!(source.to_string());
                    append(path, &rejected).map_err(|e| ReplayError::Io {
                        path: path.to_path_buf(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                    tracing::warn!(spool = %spool.display(), line = n + 1, op = kind, error = %source, "refused operation set aside");
                    summary.set_aside += 1;
                }
                None => {
                    return Err(ReplayError::Refused {
                        spool: spool.to_path_buf(),
                        line: n + 1,
                        op: kind.to_owned(),
                        source,
                    });
                }
            },
        }
        if fresh {
            writeln!(done_file, "{id}")
                .and_then(|()| done_file.sync_data())
                .map_err(io(&done_path))?;
        }
    }
    drop(done_file);
    std::fs::remove_file(spool).map_err(io(spool))?;
    let _ = std::fs::remove_file(&done_path);
    Ok(summary)
}

/// Finds a spooled run again by its local id, or creates it once; records local → server id.
fn create_run_once(client: &mut impl Server, op: &mut Value) -> Result<(), Option<TrackerError>> {
    let local = op["local_run_id"].as_str().unwrap_or_default().to_owned();
    let exp = client.experiment_id(op["experiment"].as_str().unwrap_or("Default"))?;
    let found = client.send(
        &json!({ "op": "search-runs", "body": { "experiment_ids": [exp], "run_view_type": "ALL",
        "filter": format!("tags.`{LOCAL_RUN_TAG}` = '{local}'"), "max_results": 1 } }),
    )?;
    let run_id = match found["runs"][0]["info"]["run_id"].as_str() {
        Some(r) => r.to_owned(),
        None => {
            op["body"]["experiment_id"] = json!(exp);
            let v = client.send(op)?;
            v["run"]["info"]["run_id"]
                .as_str()
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    Some(TrackerError::invalid(
                        "the server created the run but returned no run id",
                    ))
                })?
                .to_owned()
        }
    };
    client.remember_run(local, run_id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_lines_are_checked_before_anything_is_sent() {
        let ok = json!({"op": "log-batch", "id": "a", "body": {"run_id": "r", "metrics": [{"key": "loss", "value": 1.0, "timestamp": 1, "step": 0}]}});
        assert_eq!(check_op(&ok), Ok("log-batch"));
        let cases = [
            (
                json!({"op": "log-batch", "body": {"run_id": "r"}}),
                "no \"id\"",
            ),
            (
                json!({"op": "log-batch", "id": "a", "body": {"run_id": "r"}}),
                "empty log-batch",
            ),
            (
                json!({"op": "log-batch", "id": "a", "body": {"run_id": "r", "metrics": "x"}}),
                "not a list of metrics",
            ),
            (
                json!({"op": "log-batch", "id": "a", "body": {"metrics": []}}),
                "no \"run_id\"",
            ),
            (
                json!({"op": "drop-table", "id": "a", "body": {}}),
                "unknown operation",
            ),
            (json!({"op": "update-run", "id": "a"}), "no \"body\""),
            (
                json!({"op": "create-run", "id": "a", "body": {}, "experiment": "e"}),
                "no \"local_run_id\"",
            ),
        ];
        for (op, why) in cases {
            let e = check_op(&op).expect_err("refused");
            assert!(e.contains(why), "{op}: {e}");
        }
    }
}
