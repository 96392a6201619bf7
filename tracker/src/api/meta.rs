//! Routes about the server itself: liveness, version and the OpenAPI description.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/version", get(|| async { env!("CARGO_PKG_VERSION") }))
        .route("/api/openapi.json", get(openapi))
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
