//! Run artifacts through MLflow's `mlflow-artifacts` proxy endpoints, stored under one root
//! folder. Uploaded files are opaque bytes (never unpickled or interpreted).
//!
//! Every path is checked before it touches the disk: decoded exactly once, then `.` segments are
//! dropped (as MLflow normalises them) and each other segment must be a plain name (ASCII
//! letters, digits and `-_.+=,@~ `, not `..`); anything else —
//! `..`, backslashes, `%2e%2e` and double encodings (a `%` left after decoding), `#`, `;`, `:`
//! (drive letters, `file:` URIs), absolute paths, NUL — is refused. Symlinks inside the root
//! are refused too, so a link planted there cannot lead outside.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::AppState;
use crate::error::TrackerError;

pub const PREFIX: &str = "/api/2.0/mlflow-artifacts/artifacts";

/// A relative artifact path, checked: the segments to join under the root.
///
/// # Errors
/// `INVALID_PARAMETER_VALUE` naming the reason.
pub fn check_path(raw: &str) -> Result<Vec<String>, TrackerError> {
    let bad = |why: &str| TrackerError::invalid(format!("invalid artifact path {raw:?}: {why}"));
    if raw.len() > 4096 {
        return Err(bad("longer than 4096 bytes"));
    }
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad("not UTF-8 after decoding"))?;
    if decoded.contains('%') {
        return Err(bad("percent sign after decoding (double encoding)"));
    }
    if decoded.starts_with('/') || decoded.starts_with('\\') {
        return Err(bad("absolute path"));
    }
    let mut out = Vec::new();
    for seg in decoded.split('/') {
        if seg.is_empty() || seg == "." {
            continue;
        }
        if seg == ".." {
            return Err(bad("'..' segment"));
        }
        if let Some(c) = seg
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-_.+=,@~ ".contains(*c)))
        {
            return Err(bad(&format!("character {c:?} is not allowed")));
        }
        out.push(seg.to_owned());
    }
    Ok(out)
}

/// The on-disk path for `segments` under `root`, refusing symlinks on the way.
fn resolve(root: &Path, segments: &[String]) -> Result<PathBuf, TrackerError> {
    let mut p = root.to_path_buf();
    for s in segments {
        p.push(s);
        if let Ok(meta) = std::fs::symlink_metadata(&p)
            && meta.file_type().is_symlink()
        {
            return Err(TrackerError::invalid(format!(
                "artifact path {:?} goes through a symbolic link; refused",
                segments.join("/")
            )));
        }
    }
    Ok(p)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TrackerError + '_ {
    move |source| TrackerError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn raw_path(uri: &axum::http::Uri) -> Result<String, TrackerError> {
    let p = uri.path();
    let rest = p.strip_prefix(PREFIX).unwrap_or("");
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Err(TrackerError::invalid("an artifact path is required"));
    }
    Ok(rest.to_owned())
}

/// PUT: stores the request body at the path (temporary private file, then renamed into place).
pub async fn upload(
    State(s): State<AppState>,
    request: Request,
) -> Result<Json<serde_json::Value>, TrackerError> {
    let segments = check_path(&raw_path(request.uri())?)?;
    if segments.is_empty() {
        return Err(TrackerError::invalid("an artifact path is required"));
    }
    let limit = s.max_artifact_bytes;
    store_body(&s.artifacts, &segments, request.into_body(), limit, || {
        TrackerError::invalid(format!(
            "artifact larger than the server's limit of {limit} bytes"
        ))
    })
    .await?;
    Ok(Json(json!({})))
}

/// Writes `body` to `segments` below `root`: a temporary private file in the target folder,
/// flushed and synced, then renamed into place (nothing is left half-written); more than `limit`
/// bytes is `too_large()`, and nothing is kept.
async fn store_body(
    root: &Path,
    segments: &[String],
    mut body: Body,
    limit: u64,
    too_large: impl Fn() -> TrackerError,
) -> Result<u64, TrackerError> {
    let target = resolve(root, segments)?;
    let dir = target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.to_path_buf());
    tokio::fs::create_dir_all(&dir).await.map_err(io(&dir))?;
    resolve(root, segments)?; // a link created meanwhile is still refused
    let tmp = tempfile::Builder::new()
        .prefix(".upload-")
        .tempfile_in(&dir)
        .map_err(io(&dir))?; // mode 0600
    let (std_file, tmp_path) = tmp.into_parts();
    let mut file = tokio::fs::File::from_std(std_file);
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| TrackerError::invalid(format!("upload interrupted: {e}")))?;
        if let Ok(data) = frame.into_data() {
            size += data.len() as u64;
            if size > limit {
                return Err(too_large());
            }
            file.write_all(&data).await.map_err(io(&target))?;
        }
    }
    file.flush().await.map_err(io(&target))?;
    file.sync_all().await.map_err(io(&target))?;
    tmp_path.persist(&target).map_err(|e| TrackerError::Io {
        path: target.display().to_string(),
        source: e.error,
    })?;
    Ok(size)
}

/// Where a run's artifacts lie on this machine, when this server keeps them: below `--artifacts`
/// for `mlflow-artifacts:` URIs, or below `--default-artifact-root` when that is a `file://`
/// folder (the operator's choice; a `file://` location anywhere else — an experiment created
/// with its own — is the client's to write, never this server's).
fn run_local(s: &AppState, artifact_uri: &str) -> Option<(PathBuf, Vec<String>)> {
    if let Some(segments) = run_root_segments(artifact_uri) {
        return Some((s.artifacts.clone(), segments));
    }
    let root = &s.store.artifact_root;
    let folder = root.strip_prefix("file://")?;
    let rest = artifact_uri.strip_prefix(root.as_str())?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let segments = check_path(rest.trim_start_matches('/')).ok()?;
    Some((PathBuf::from(folder), segments))
}

fn not_served(run_id: &str, uri: &str) -> TrackerError {
    TrackerError::invalid(format!(
        "the artifacts of run {run_id} are stored at {uri}, which this server does not serve"
    ))
}

/// MLflow's largest upload through `upload-artifact` (its UI's route).
const UI_UPLOAD_LIMIT: u64 = 10 * 1024 * 1024;

/// `POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=…&path=…` (MLflow's UI upload): the body
/// stored as the run's artifact `path`, with MLflow's checks and messages.
pub async fn upload_for_run(
    State(s): State<AppState>,
    request: Request,
) -> Result<Json<serde_json::Value>, TrackerError> {
    let q: std::collections::HashMap<String, String> = Query::try_from_uri(request.uri())
        .map(|Query(q)| q)
        .unwrap_or_default();
    let run_id = q
        .get("run_uuid")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| TrackerError::invalid("Request must specify run_uuid."))?;
    let path = q
        .get("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| TrackerError::invalid("Request must specify path."))?;
    let relative =
        check_path(&path.replace('%', "%25")).map_err(|_| TrackerError::invalid("Invalid path"))?;
    let too_large = || TrackerError::invalid("Artifact size is too large. Max size is 10MB.");
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > UI_UPLOAD_LIMIT) {
        return Err(too_large());
    }
    if declared == Some(0)
        || (declared.is_none() && axum::body::HttpBody::is_end_stream(request.body()))
    {
        return Err(TrackerError::invalid("Request must specify data."));
    }
    let info = s.store.run_info(run_id).await?;
    let (root, mut segments) =
        run_local(&s, &info.artifact_uri).ok_or_else(|| not_served(run_id, &info.artifact_uri))?;
    segments.extend(relative);
    let n = store_body(
        &root,
        &segments,
        request.into_body(),
        UI_UPLOAD_LIMIT,
        too_large,
    )
    .await?;
    if n == 0 {
        // an empty file is not what the request meant: remove it again
        let _ = tokio::fs::remove_file(resolve(&root, &segments)?).await;
        return Err(TrackerError::invalid("Request must specify data."));
    }
    Ok(Json(json!({})))
}

/// `GET /get-artifact?run_uuid=…&path=…` (MLflow's UI download of one run artifact).
pub async fn download_for_run(
    State(s): State<AppState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, TrackerError> {
    let run_id = q
        .get("run_uuid")
        .or_else(|| q.get("run_id"))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| TrackerError::invalid("Missing value for required parameter 'run_id'."))?;
    let path = q.get("path").cloned().unwrap_or_default();
    let relative =
        check_path(&path.replace('%', "%25")).map_err(|_| TrackerError::invalid("Invalid path"))?;
    let info = s.store.run_info(run_id).await?;
    let (root, mut segments) =
        run_local(&s, &info.artifact_uri).ok_or_else(|| not_served(run_id, &info.artifact_uri))?;
    segments.extend(relative);
    send_file(&root, &segments).await
}

/// GET with a path: the file's bytes, streamed.
pub async fn download(
    State(s): State<AppState>,
    request: Request,
) -> Result<Response, TrackerError> {
    let segments = check_path(&raw_path(request.uri())?)?;
    send_file(&s.artifacts, &segments).await
}

/// The file at `segments` below `root`, streamed.
async fn send_file(root: &Path, segments: &[String]) -> Result<Response, TrackerError> {
    let path = resolve(root, segments)?;
    let meta = tokio::fs::metadata(&path).await.map_err(|_| {
        TrackerError::not_found(format!("artifact {} does not exist", segments.join("/")))
    })?;
    if !meta.is_file() {
        return Err(TrackerError::invalid(format!(
            "{} is a directory; list it instead",
            segments.join("/")
        )));
    }
    let file = tokio::fs::File::open(&path).await.map_err(io(&path))?;
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, meta.len().to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The entries of `dir` as MLflow lists them, sorted by path: `prefix/name`, `is_dir`, and a
/// file's size; upload temporaries and symlinks left out; a missing folder lists nothing.
async fn entries(dir: &Path, prefix: &[String]) -> Result<Vec<serde_json::Value>, TrackerError> {
    let mut files = Vec::new();
    if let Ok(mut read) = tokio::fs::read_dir(dir).await {
        while let Some(e) = read.next_entry().await.map_err(io(dir))? {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".upload-") {
                continue;
            }
            let meta = e.metadata().await.map_err(io(dir))?;
            if meta.file_type().is_symlink() {
                continue;
            }
            let path = prefix
                .iter()
                .map(String::as_str)
                .chain([name.as_str()])
                .collect::<Vec<_>>()
                .join("/");
            let mut entry = json!({ "path": path, "is_dir": meta.is_dir() });
            if meta.is_file() {
                entry["file_size"] = json!(meta.len());
            }
            files.push(entry);
        }
    }
    files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    Ok(files)
}

/// GET `?path=`: the entries of a folder, as MLflow lists them.
pub async fn list(
    State(s): State<AppState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, TrackerError> {
    let raw = q.get("path").cloned().unwrap_or_default();
    // `path` arrives decoded by the query parser; check it as given (no second decoding).
    let segments = check_path(&raw.replace('%', "%25"))?;
    let dir = resolve(&s.artifacts, &segments)?;
    let files = entries(&dir, &[]).await?;
    Ok(Json(json!({ "files": files })))
}

/// The run's artifact folder under the proxied root, for a run whose artifact URI is this
/// server's (`mlflow-artifacts:/…`, with or without a host).
fn run_root_segments(artifact_uri: &str) -> Option<Vec<String>> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
    let path = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map_or("", |(_, p)| p),
        None => rest.trim_start_matches('/'),
    };
    check_path(path).ok()
}

/// GET `/api/2.0/mlflow/artifacts/list` (MLflow's ListArtifacts): the files directly under
/// `path` of a run's artifacts, each named by its path from the run's artifact root, with the
/// run's `root_uri`. `files` is left out when there are none, as protobuf's JSON does.
/// The local file of artifact `relative` (e.g. `test-predictions-best.parquet`) of a run whose
/// artifacts this server stores.
///
/// # Errors
/// An unsafe path, a run whose artifacts are stored elsewhere, a missing file.
pub fn run_file(root: &Path, artifact_uri: &str, relative: &str) -> Result<PathBuf, TrackerError> {
    let mut segments = run_root_segments(artifact_uri).ok_or_else(|| {
        TrackerError::invalid(format!(
            "the run's artifacts are stored at {artifact_uri}, which this server does not serve"
        ))
    })?;
    segments.extend(check_path(relative)?);
    let path = resolve(root, &segments)?;
    if !path.is_file() {
        return Err(TrackerError::not_found(format!(
            "the run has no artifact {relative}"
        )));
    }
    Ok(path)
}

pub async fn list_run(
    State(s): State<AppState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, TrackerError> {
    let run_id = q
        .get("run_id")
        .filter(|r| !r.is_empty())
        .or_else(|| q.get("run_uuid"))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| TrackerError::invalid("Missing value for required parameter 'run_id'."))?;
    // MLflow's ListArtifacts answers an unsafe path with exactly "Invalid path".
    let relative = match q.get("path") {
        Some(p) => {
            check_path(&p.replace('%', "%25")).map_err(|_| TrackerError::invalid("Invalid path"))?
        }
        None => Vec::new(),
    };
    let info = s.store.run_info(run_id).await?;
    let mut out = json!({ "root_uri": info.artifact_uri });
    let Some(mut segments) = run_root_segments(&info.artifact_uri) else {
        return Err(TrackerError::invalid(format!(
            "the artifacts of run {run_id} are stored at {}, which this server does not serve; \
             list them with a client for that store",
            info.artifact_uri
        )));
    };
    segments.extend(relative.iter().cloned());
    let dir = resolve(&s.artifacts, &segments)?;
    let files = entries(&dir, &relative).await?;
    if !files.is_empty() {
        out["files"] = json!(files);
    }
    Ok(Json(out))
}

/// DELETE: removes a file or folder.
pub async fn delete(
    State(s): State<AppState>,
    request: Request,
) -> Result<Json<serde_json::Value>, TrackerError> {
    let segments = check_path(&raw_path(request.uri())?)?;
    if segments.is_empty() {
        return Err(TrackerError::invalid(
            "refusing to delete the artifact root",
        ));
    }
    let path = resolve(&s.artifacts, &segments)?;
    let meta = tokio::fs::metadata(&path).await.map_err(|_| {
        TrackerError::not_found(format!("artifact {} does not exist", segments.join("/")))
    })?;
    if meta.is_dir() {
        tokio::fs::remove_dir_all(&path).await.map_err(io(&path))?;
    } else {
        tokio::fs::remove_file(&path).await.map_err(io(&path))?;
    }
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_encoding_tricks_are_refused() {
        for bad in [
            "..",
            "a/../../etc/passwd",
            "a/..\\..\\x",
            "%2e%2e/x",
            "%2E%2E%2Fetc",
            "%252e%252e/x",
            "a/b#frag",
            "a;b",
            "/etc/passwd",
            "file:/etc/passwd",
            "C:/x",
            "a/%00b",
            "a/\u{0}",
            "..%2f..%2fx",
            "a/%5c..%5cx",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            check_path("1/abc/artifacts/model/w.safetensors")
                .expect("ok")
                .len(),
            5
        );
        assert_eq!(check_path("a%20b/c.txt").expect("ok"), vec!["a b", "c.txt"]);
        // `.` is normalised away, as MLflow does; only `..` escapes
        assert_eq!(check_path(".").expect("ok"), Vec::<String>::new());
        assert_eq!(check_path("./a/./b").expect("ok"), vec!["a", "b"]);
        assert!(check_path("a/./../..").is_err());
    }

    #[test]
    fn a_run_root_is_found_in_its_artifact_uri() {
        assert_eq!(
            run_root_segments("mlflow-artifacts:/1/abc/artifacts"),
            Some(vec!["1".into(), "abc".into(), "artifacts".into()])
        );
        assert_eq!(
            run_root_segments("mlflow-artifacts://host:5000/2/r/artifacts"),
            Some(vec!["2".into(), "r".into(), "artifacts".into()])
        );
        assert_eq!(run_root_segments("s3://bucket/1/r/artifacts"), None);
        assert_eq!(run_root_segments("mlflow-artifacts:/../x"), None);
    }

    #[test]
    fn symlinks_inside_the_root_are_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/etc", root.path().join("link")).expect("symlink");
        let err = resolve(root.path(), &["link".into(), "passwd".into()]).expect_err("symlink");
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
}
