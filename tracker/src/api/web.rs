//! The dashboard's static files (`web/`), embedded in the binary at build time (no front-end
//! build, nothing to install beside the binary): `/` is `web/index.html`, `/web/…` the rest.
//! Every answer carries a Content-Security-Policy that allows scripts, styles and connections from
//! this origin only (no inline script, no eval), an ETag and `nosniff`. The files hold no data,
//! so the guard lets them through without the token; everything they read goes through the API,
//! which asks for it.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::error::{ErrorCode, TrackerError};

/// Every file of `web/` the dashboard serves, by its path below `web/`.
pub const FILES: &[(&str, &[u8])] = &[
    ("index.html", include_bytes!("../../../web/index.html")),
    ("app.js", include_bytes!("../../../web/app.js")),
    ("lib.js", include_bytes!("../../../web/lib.js")),
    ("runs.js", include_bytes!("../../../web/runs.js")),
    ("compare.js", include_bytes!("../../../web/compare.js")),
    ("explore.js", include_bytes!("../../../web/explore.js")),
    ("pages.js", include_bytes!("../../../web/pages.js")),
    ("style.css", include_bytes!("../../../web/style.css")),
    (
        "vendor/uplot-1.6.32/uPlot.esm.js",
        include_bytes!("../../../web/vendor/uplot-1.6.32/uPlot.esm.js"),
    ),
    (
        "vendor/uplot-1.6.32/uPlot.min.css",
        include_bytes!("../../../web/vendor/uplot-1.6.32/uPlot.min.css"),
    ),
    (
        "vendor/uplot-1.6.32/LICENSE",
        include_bytes!("../../../web/vendor/uplot-1.6.32/LICENSE"),
    ),
];

/// The policy on every dashboard file: this origin only, no inline script or style, no eval, no
/// framing, no plugins.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/web/{*path}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((_, bytes)) = FILES.iter().find(|(p, _)| *p == path) else {
        return TrackerError::Api {
            code: ErrorCode::ResourceDoesNotExist,
            message: format!("no dashboard file {path}"),
        }
        .into_response();
    };
    let (etag, fresh) = super::dashboard::etag(headers, bytes);
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type(path))], bytes.to_vec()).into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_web_is_embedded_and_nothing_else() {
        let root = std::path::Path::new(
            &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("../web");
        fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).expect("web/") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    out.push(p.strip_prefix(root).expect("below").display().to_string());
                }
            }
        }
        let mut on_disk = Vec::new();
        walk(&root, &root, &mut on_disk);
        on_disk.retain(|p| p != "README.md");
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn the_policy_allows_no_inline_script_and_no_eval() {
        let script = CSP
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .expect("script-src");
        assert_eq!(script.trim(), "script-src 'self'");
        assert!(!CSP.contains("unsafe"));
        // and no page inlines a script or a style
        for (path, bytes) in FILES {
            if path.ends_with(".html") {
                let text = String::from_utf8_lossy(bytes);
                assert!(
                    !text.contains("<script>") && !text.contains(" style="),
                    "{path}"
                );
                assert!(!text.contains("onclick="), "{path}");
            }
        }
    }
}
