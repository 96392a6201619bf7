//! The one layer every request passes: request id and log line, bearer token, Host allow-list
//! (DNS rebinding), and for state-changing requests a JSON content type and a same-origin Origin.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::error::{ErrorCode, TrackerError};

/// What every request is checked against.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Bearer token; `None` disables authentication (loopback only, enforced at start).
    pub token: Option<String>,
    /// Host header values accepted (DNS-rebinding defence): the bound address and localhost names.
    pub allowed_hosts: Vec<String>,
    /// Short-lived tickets for the live event stream (`EventSource` cannot send the token).
    pub tickets: std::sync::Arc<Tickets>,
}

/// Tickets that open `GET /api/fusionprot/events?ticket=…` without the bearer token: minted by
/// `POST /api/fusionprot/events/ticket` (which needs the token), valid for `Tickets::TTL`, good
/// for that route only. So the token itself never travels in a URL or reaches a log (the request
/// log records paths without their query).
#[derive(Debug, Default)]
pub struct Tickets {
    live: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
}

impl Tickets {
    /// How long a ticket opens the stream (a reconnect after it asks for a new one).
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(60);

    /// A new ticket (122 random bits), valid from now for `TTL`; expired ones are dropped.
    pub fn mint(&self) -> String {
        let ticket = uuid::Uuid::new_v4().simple().to_string();
        let now = Instant::now();
        if let Ok(mut live) = self.live.lock() {
            live.retain(|_, until| *until > now);
            live.insert(ticket.clone(), now + Self::TTL);
        }
        ticket
    }

    /// Whether `ticket` is one of ours and not expired.
    pub fn valid(&self, ticket: &str) -> bool {
        let now = Instant::now();
        self.live
            .lock()
            .is_ok_and(|live| live.get(ticket).is_some_and(|until| *until > now))
    }
}

fn deny(code: ErrorCode, message: &str) -> Response {
    TrackerError::Api {
        code,
        message: message.to_owned(),
    }
    .into_response()
}

/// The one layer every request passes: request id and log line, bearer token, Host allow-list,
/// and for state-changing requests a JSON content type and a same-origin Origin.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let mut response = match check(&state.guard, request.headers(), &method, &path, &query) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    };
    // axum's body limit answers in plain text; every error here is `{"error_code", "message"}`.
    if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE
        && !response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    {
        response = deny(
            ErrorCode::ResourceLimitExceeded,
            &format!(
                "the request body is over the server's limit of {} bytes",
                super::MAX_BODY_BYTES
            ),
        );
    }
    let status = response.status().as_u16();
    tracing::info!(request_id = id, %method, path, status, ms = started.elapsed().as_secs_f64() * 1e3, "request");
    response
}

/// `Some(refusal)` when a request must not reach its handler.
fn check(
    guard: &Guard,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    query: &str,
) -> Option<Response> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let host_name = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let any_host = guard.allowed_hosts.iter().any(|a| a == "*");
    if !any_host
        && !guard
            .allowed_hosts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(host_name) || a.eq_ignore_ascii_case(host))
    {
        return Some(deny(
            ErrorCode::PermissionDenied,
            &format!("Host {host:?} is not served here (DNS rebinding defence)"),
        ));
    }
    if let Some(token) = &guard.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "));
        // The dashboard's static files hold no data (what they show comes through the API,
        // which asks for the token), and a browser cannot attach a bearer token to a page load.
        let ticketed = *method == Method::GET
            && path == "/api/fusionprot/events"
            && query
                .split('&')
                .filter_map(|kv| kv.strip_prefix("ticket="))
                .any(|t| guard.tickets.valid(t));
        let open = path == "/health"
            || ticketed
            || (*method == Method::GET && (path == "/" || path.starts_with("/web/")));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) && !open {
            return Some(deny(
                ErrorCode::Unauthenticated,
                "missing or wrong bearer token (Authorization: Bearer …)",
            ));
        }
    }
    let changes_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state {
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let json = ctype
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        // Artifact bodies are files, not JSON: the proxy's PUT, and the UI's upload POST (which a
        // cross-site form could send, so the Origin check below still applies to it).
        let artifact_upload = (path.starts_with("/api/2.0/mlflow-artifacts/")
            && *method == Method::PUT)
            || (path == "/ajax-api/2.0/mlflow/upload-artifact" && *method == Method::POST);
        if !json && !artifact_upload {
            return Some(deny(
                ErrorCode::BadRequest,
                "state-changing requests must have Content-Type: application/json",
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok()) {
            let origin_host = origin.split("://").nth(1).unwrap_or("");
            if !origin_host.eq_ignore_ascii_case(host) {
                return Some(deny(
                    ErrorCode::PermissionDenied,
                    &format!("cross-origin request from {origin} refused"),
                ));
            }
        }
    }
    None
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use serde_json::{Value, json};

    use super::super::{AppState, ROUTES, router};
    use crate::store::Store;
    use axum::http::Request as HttpRequest;
    use tower::ServiceExt;

    async fn app(token: Option<&str>) -> (Router, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("t.db").display().to_string();
        let store = Store::open(&db, crate::store::Durability::Normal)
            .await
            .expect("store");
        let guard = crate::server::guard_for(
            "127.0.0.1:5000".parse().expect("addr"),
            token.map(str::to_owned),
        );
        let artifacts = dir.path().join("artifacts");
        (
            router(AppState {
                store,
                guard: Arc::new(guard),
                artifacts,
                max_artifact_bytes: 1 << 20,
                data_root: None,
                sql_gate: crate::api::SqlGate::default(),
                shutdown: Default::default(),
            }),
            dir,
        )
    }

    async fn call(
        app: &Router,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCodeU16, String) {
        let mut req = HttpRequest::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:5000");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::from(body.to_owned())).expect("request"))
            .await
            .expect("response");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    type StatusCodeU16 = u16;

    #[test]
    fn every_route_in_the_source_is_in_the_route_table() {
        // The guard is one layer over the whole router, so any route is guarded; this keeps
        // ROUTES (walked below) complete, so a new route is also exercised by the auth test.
        // Every file of the api module, so a new resource file cannot escape the check.
        let dir = std::path::Path::new(
            &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("src/api");
        let mut in_source = 0;
        for entry in std::fs::read_dir(&dir).expect("src/api") {
            let src = std::fs::read_to_string(entry.expect("entry").path()).expect("source");
            let code = &src[..src.find("#[cfg(test)]").unwrap_or(src.len())];
            for (at, _) in code.match_indices(".route(") {
                let path = code[at..]
                    .split('"')
                    .nth(1)
                    .unwrap_or_default()
                    .replace("{m}", "/api/2.0/mlflow");
                assert!(
                    ROUTES.iter().any(|(_, p)| *p == path),
                    "route {path:?} is missing from ROUTES"
                );
                in_source += 1;
            }
        }
        assert!(in_source >= 20, "found {in_source} routes");
    }

    /// The event stream opens with a ticket minted with the token, only that route, only ours,
    /// only until it expires; minting needs the token.
    #[tokio::test]
    async fn a_ticket_opens_the_event_stream_and_nothing_else() {
        let (app, _dir) = app(Some("s3cret")).await;
        let json = [("content-type", "application/json")];
        let (status, _) = call(&app, "POST", "/api/fusionprot/events/ticket", &json, "{}").await;
        assert_eq!(status, 401, "a ticket without the token");
        let auth = [
            ("content-type", "application/json"),
            ("authorization", "Bearer s3cret"),
        ];
        let (status, body) = call(&app, "POST", "/api/fusionprot/events/ticket", &auth, "{}").await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        let t = v["ticket"].as_str().expect("ticket").to_owned();
        assert_eq!(v["expires_in"], 60);
        assert!(t.len() >= 32 && !t.contains("s3cret"));
        // the stream answers (its head) with the ticket; a stream never ends, so read the head only
        let stream_status = |uri: String| {
            let app = app.clone();
            async move {
                let req = HttpRequest::builder()
                    .method("GET")
                    .uri(uri)
                    .header("host", "127.0.0.1:5000")
                    .body(Body::empty())
                    .expect("request");
                app.oneshot(req).await.expect("response").status().as_u16()
            }
        };
        assert_eq!(
            stream_status(format!("/api/fusionprot/events?ticket={t}")).await,
            200
        );
        assert_eq!(
            stream_status(format!("/api/fusionprot/events?x=1&ticket={t}")).await,
            200
        );
        assert_eq!(
            stream_status("/api/fusionprot/events?ticket=0123456789abcdef0123456789abcdef".into())
                .await,
            401
        );
        assert_eq!(stream_status("/api/fusionprot/events".into()).await, 401);
        // the ticket opens nothing else
        let (status, _) = call(
            &app,
            "GET",
            &format!("/api/2.0/mlflow/experiments/search?ticket={t}"),
            &[],
            "",
        )
        .await;
        assert_eq!(status, 401);
        // and expires
        let tickets = super::Tickets::default();
        let old = tickets.mint();
        assert!(tickets.valid(&old));
        if let Ok(mut live) = tickets.live.lock() {
            for until in live.values_mut() {
                *until = std::time::Instant::now();
            }
        }
        assert!(!tickets.valid(&old), "an expired ticket");
        assert!(!tickets.valid(""));
    }

    #[tokio::test]
    async fn every_route_requires_the_token_when_one_is_set() {
        let (app, _dir) = app(Some("s3cret")).await;
        for (method, path) in ROUTES {
            if *path == "/health" || *path == "/" || path.starts_with("/web/") {
                continue;
            }
            let path = &path.replace("{*path}", "1/x");
            let (status, body) = call(
                &app,
                method,
                path,
                &[("content-type", "application/json")],
                "{}",
            )
            .await;
            assert_eq!(status, 401, "{method} {path}: {body}");
            assert!(body.contains("UNAUTHENTICATED"), "{body}");
            let (status, _) = call(
                &app,
                method,
                path,
                &[
                    ("content-type", "application/json"),
                    ("authorization", "Bearer wrong"),
                ],
                "{}",
            )
            .await;
            assert_eq!(status, 401, "{method} {path} with a wrong token");
        }
        let (status, body) = call(
            &app,
            "POST",
            "/api/2.0/mlflow/experiments/create",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer s3cret"),
            ],
            r#"{"name":"x"}"#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, _) = call(&app, "GET", "/api/2.0/mlflow/nope", &[], "").await;
        assert_eq!(status, 401, "unknown paths pass the guard too");
        // the dashboard's files load without the token (they hold no data; the API they call
        // asks for it), for GET only
        for path in ["/", "/web/app.js", "/web/vendor/uplot-1.6.32/uPlot.esm.js"] {
            let (status, _) = call(&app, "GET", path, &[], "").await;
            assert_eq!(status, 200, "{path}");
        }
        let (status, _) = call(
            &app,
            "GET",
            "/web/../api/2.0/mlflow/experiments/search",
            &[],
            "",
        )
        .await;
        assert!(
            status == 401 || status == 404,
            "a path out of /web/ is not open: {status}"
        );
        let (status, _) = call(
            &app,
            "POST",
            "/",
            &[("content-type", "application/json")],
            "{}",
        )
        .await;
        assert_eq!(status, 401, "only reads of the files are open");
    }

    #[tokio::test]
    async fn cross_site_and_rebinding_requests_are_refused() {
        let (app, _dir) = app(None).await;
        let create = "/api/2.0/mlflow/experiments/create";
        // a text/plain "simple" cross-site POST
        let (status, body) = call(
            &app,
            "POST",
            create,
            &[("content-type", "text/plain")],
            r#"{"name":"a"}"#,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("Content-Type: application/json"), "{body}");
        // a foreign Origin
        let (status, body) = call(
            &app,
            "POST",
            create,
            &[
                ("content-type", "application/json"),
                ("origin", "http://evil.example"),
            ],
            r#"{"name":"a"}"#,
        )
        .await;
        assert_eq!(status, 403, "{body}");
        // DNS rebinding: a foreign Host header
        let req = HttpRequest::builder()
            .method("GET")
            .uri("/api/2.0/mlflow/experiments/search")
            .header("host", "evil.example:5000")
            .body(Body::empty())
            .expect("request");
        let resp = app.clone().oneshot(req).await.expect("response");
        assert_eq!(resp.status().as_u16(), 403);
        // same-origin JSON is fine
        let (status, body) = call(
            &app,
            "POST",
            create,
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("origin", "http://127.0.0.1:5000"),
            ],
            r#"{"name":"a"}"#,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    #[tokio::test]
    async fn oversized_bodies_and_strings_are_refused() {
        let (app, _dir) = app(None).await;
        let json = [("content-type", "application/json")];
        let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(2_000_000));
        let (status, body) = call(
            &app,
            "POST",
            "/api/2.0/mlflow/experiments/create",
            &json,
            &big,
        )
        .await;
        assert_eq!(status, 413);
        // Issue 20: in the documented JSON form, not axum's plain text.
        let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
        assert_eq!(v["error_code"], "RESOURCE_LIMIT_EXCEEDED", "{v}");
        assert!(
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("over the server's limit")),
            "{v}"
        );
        let long = format!(r#"{{"name":"{}"}}"#, "x".repeat(600));
        let (status, body) = call(
            &app,
            "POST",
            "/api/2.0/mlflow/experiments/create",
            &json,
            &long,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let (_, run) = call(
            &app,
            "POST",
            "/api/2.0/mlflow/runs/create",
            &json,
            r#"{"experiment_id":"0"}"#,
        )
        .await;
        let run: Value = serde_json::from_str(&run).expect("json");
        let id = run["run"]["info"]["run_id"]
            .as_str()
            .expect("run id")
            .to_owned();
        for bad in ["../x", "/abs", "a\u{0}b", &"k".repeat(300)] {
            let body = json!({ "run_id": id, "key": bad, "value": 1.0, "timestamp": 1, "step": 0 })
                .to_string();
            let (status, text) = call(
                &app,
                "POST",
                "/api/2.0/mlflow/runs/log-metric",
                &json,
                &body,
            )
            .await;
            assert_eq!(status, 400, "{bad:?}: {text}");
        }
    }
}
