//! The dashboard's reads (`/api/fusionprot/dashboard/…`): columnar JSON (one array per column),
//! with an ETag on every answer (a repeated read with `If-None-Match` gets 304 and no body) and
//! gzip when the client accepts it.

use std::collections::HashMap;
use std::io::Write;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::AppState;
use super::request::{parse, required};
use crate::dashboard::stats::Test;
use crate::dashboard::{Against, Selection};
use crate::error::TrackerError;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/fusionprot/dashboard/runs", post(runs))
        .route("/api/fusionprot/dashboard/groups", post(groups))
        .route("/api/fusionprot/dashboard/keys", get(keys))
        .route("/api/fusionprot/dashboard/series", get(series))
        .route("/api/fusionprot/dashboard/breakdown", get(breakdown))
        .route("/api/fusionprot/events", get(events))
        .route("/api/fusionprot/events/ticket", post(ticket))
}

/// Changes are gathered this long into one notification.
const COALESCE: std::time::Duration = std::time::Duration::from_secs(1);

/// A ticket for the event stream (`GET /api/fusionprot/events?ticket=…`), for pages whose
/// server asks for a token: `{"ticket": "…", "expires_in": 60}`.
async fn ticket(State(s): State<AppState>) -> Response {
    let t = s.guard.tickets.mint();
    axum::Json(serde_json::json!({
        "ticket": t,
        "expires_in": super::guard::Tickets::TTL.as_secs(),
    }))
    .into_response()
}

/// Server-sent events for live views: `event: runs` with `{"run_ids": [...], "lagged": bool}`
/// — the runs whose writes committed, gathered over a second — after which the page fetches what
/// it shows again (its reads carry ETags). `lagged` says notifications were dropped for a slow
/// reader: refetch everything. A comment line every 15 s keeps proxies from closing the stream.
async fn events(
    State(s): State<AppState>,
) -> axum::response::sse::Sse<
    impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use tokio::sync::broadcast::error::RecvError;
    let rx = s.store.subscribe();
    let stream = futures_util::stream::unfold((rx, s.shutdown), |(mut rx, mut stop)| async move {
        let mut ids = std::collections::BTreeSet::new();
        let mut lagged = false;
        // A server shutting down ends the stream (the browser reconnects to the next server).
        let first = tokio::select! {
            r = rx.recv() => r,
            () = stop.begun() => return None,
        };
        match first {
            Ok(id) => {
                ids.insert(id);
            }
            Err(RecvError::Lagged(_)) => lagged = true,
            Err(RecvError::Closed) => return None,
        }
        let until = tokio::time::Instant::now() + COALESCE;
        loop {
            let next = tokio::select! {
                r = tokio::time::timeout_at(until, rx.recv()) => r,
                () = stop.begun() => break,
            };
            match next {
                Ok(Ok(id)) => {
                    ids.insert(id);
                }
                Ok(Err(RecvError::Lagged(_))) => lagged = true,
                Ok(Err(RecvError::Closed)) | Err(_) => break,
            }
        }
        let data = serde_json::json!({ "run_ids": ids, "lagged": lagged }).to_string();
        let event = axum::response::sse::Event::default()
            .event("runs")
            .data(data);
        Some((Ok(event), (rx, stop)))
    });
    axum::response::sse::Sse::new(stream).keep_alive(
        axum::response::sse::KeepAlive::new().interval(std::time::Duration::from_secs(15)),
    )
}

/// Bodies below this are sent as they are: gzip would not pay for its header.
const GZIP_FROM: usize = 1024;

/// The strong ETag of `bytes` (a truncated sha256), and whether the request's `If-None-Match`
/// already names it (a weak `W/` form counts). Shared by the dashboard's reads and its files.
pub(crate) fn etag(headers: &HeaderMap, bytes: &[u8]) -> (String, bool) {
    let digest = Sha256::digest(bytes);
    let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{tag}\"");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    (etag, fresh)
}

/// `value` as JSON with its ETag, 304 when the client has it, gzip when it accepts it.
pub(crate) fn columnar(headers: &HeaderMap, value: &Value) -> Response {
    let body = value.to_string();
    let (etag, fresh) = etag(headers, body.as_bytes());
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let gzip = body.len() >= GZIP_FROM
            && headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let mut r = if gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            // writing to a Vec cannot fail
            let _ = enc.write_all(body.as_bytes());
            let bytes = enc.finish().unwrap_or_default();
            let mut r = Response::new(Body::from(bytes));
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        } else {
            Response::new(Body::from(body))
        };
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The fields that choose runs, as `runs/search` names them, shared by the bodies below.
macro_rules! selection_body {
    ($name:ident { $($field:ident : $ty:ty $(= $default:literal)?),* $(,)? }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            #[serde(default)]
            experiment_ids: Vec<String>,
            filter: Option<String>,
            #[serde(alias = "run_view_type")]
            view_type: Option<String>,
            #[serde(default)]
            order_by: Vec<String>,
            $(
                #[serde(default $(= $default)?)]
                $field: $ty,
            )*
        }

        impl $name {
            fn selection(&self) -> Selection {
                Selection {
                    experiment_ids: self.experiment_ids.clone(),
                    filter: self.filter.clone(),
                    view_type: self.view_type.clone(),
                    order_by: self.order_by.clone(),
                }
            }
        }
    };
}

selection_body!(RunsIn {
    columns: Vec<String>,
    offset: i64,
    limit: i64 = "default_limit",
    baseline: Option<String>,
});

selection_body!(GroupsIn {
    group_by: String,
    columns: Vec<String>,
    baseline: Option<Vec<(String, Option<String>)>>,
    test: Option<String>,
    pair_by: Option<String>,
});

fn default_limit() -> i64 {
    100
}

async fn runs(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TrackerError> {
    let r: RunsIn = parse(&body)?;
    let v = s
        .store
        .dashboard_runs(
            &r.selection(),
            &r.columns,
            r.offset,
            r.limit,
            r.baseline.as_deref(),
        )
        .await?;
    Ok(columnar(&headers, &v))
}

async fn groups(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TrackerError> {
    let r: GroupsIn = parse(&body)?;
    let against = Against {
        baseline: r.baseline.clone(),
        test: r
            .test
            .as_deref()
            .map(Test::parse)
            .transpose()
            .map_err(|e| TrackerError::invalid(e.to_string()))?
            .unwrap_or(Test::Welch),
        pair_by: r.pair_by.clone(),
    };
    let v = s
        .store
        .dashboard_groups(&r.selection(), &r.group_by, &r.columns, &against)
        .await?;
    Ok(columnar(&headers, &v))
}

/// The per-class breakdown of a run's predictions artifact (`artifact`, default the trainer's
/// `test-predictions-best.parquet`), lengths, GO term depths and identity to train (under `split`,
/// default the run's `split` tag) from the dataset the run is linked to.
async fn breakdown(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, TrackerError> {
    let run_id = required(&q, "run_id")?;
    let artifact = q
        .get("artifact")
        .map_or("test-predictions-best.parquet", String::as_str);
    let run = s.store.get_run(run_id).await?;
    let path = crate::artifacts::run_file(&s.artifacts, &run.info.artifact_uri, artifact)?;
    let dataset = s.store.run_dataset_path(run_id).await?;
    // The split the run trained on: asked for, else the trainer's `split` tag, else `official`.
    let split = q
        .get("split")
        .cloned()
        .or_else(|| {
            run.data
                .tags
                .iter()
                .find(|t| t.key == "split")
                .map(|t| t.value.clone())
        })
        .unwrap_or_else(|| "official".to_owned());
    let scope = crate::dataset_files::Confinement {
        below: s.data_root.clone(),
        never: vec![s.artifacts.clone()],
    };
    let mut v = tokio::task::spawn_blocking(move || {
        crate::dashboard::breakdown::breakdowns(&path, dataset, &split, &scope)
    })
    .await
    .map_err(|e| TrackerError::invalid(format!("breakdown: {e}")))??;
    v["run_id"] = Value::from(run_id);
    v["artifact"] = Value::from(artifact);
    Ok(columnar(&headers, &v))
}

async fn keys(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, TrackerError> {
    let ids = required(&q, "experiment_ids")?
        .split(',')
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    let sel = Selection {
        experiment_ids: ids,
        ..Selection::default()
    };
    Ok(columnar(&headers, &s.store.dashboard_keys(&sel).await?))
}

async fn series(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, TrackerError> {
    let points = match q.get("points") {
        Some(p) => p
            .parse()
            .map_err(|_| TrackerError::invalid(format!("points must be a number, got {p:?}")))?,
        None => 1000,
    };
    let (v, cache) = s
        .store
        .dashboard_series(
            required(&q, "run_id")?,
            required(&q, "key")?,
            points,
            q.get("select").map(String::as_str),
        )
        .await?;
    let mut resp = columnar(&headers, &v);
    resp.headers_mut().insert(
        "x-fusionprot-cache",
        header::HeaderValue::from_static(cache.as_str()),
    );
    Ok(resp)
}
