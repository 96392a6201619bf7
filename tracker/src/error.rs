//! Errors in MLflow's shape: an `error_code` from MLflow's protocol and a message, with the HTTP
//! status MLflow uses for it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use thiserror::Error;

/// MLflow's `ErrorCode` values that this server returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidParameterValue,
    ResourceDoesNotExist,
    ResourceAlreadyExists,
    BadRequest,
    Unauthenticated,
    PermissionDenied,
    RequestLimitExceeded,
    /// A request body over the server's limit (HTTP 413).
    ResourceLimitExceeded,
    InternalError,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidParameterValue
            | ErrorCode::BadRequest
            | ErrorCode::ResourceAlreadyExists => StatusCode::BAD_REQUEST,
            ErrorCode::ResourceDoesNotExist => StatusCode::NOT_FOUND,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::RequestLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ResourceLimitExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug, Error)]
pub enum TrackerError {
    /// A request the API refuses, with MLflow's code.
    #[error("{message}")]
    Api { code: ErrorCode, message: String },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Schema(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl TrackerError {
    pub fn invalid(message: impl Into<String>) -> Self {
        TrackerError::Api {
            code: ErrorCode::InvalidParameterValue,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        TrackerError::Api {
            code: ErrorCode::ResourceDoesNotExist,
            message: message.into(),
        }
    }

    pub fn exists(message: impl Into<String>) -> Self {
        TrackerError::Api {
            code: ErrorCode::ResourceAlreadyExists,
            message: message.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            TrackerError::Api { code, .. } => *code,
            _ => ErrorCode::InternalError,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error_code: ErrorCode,
    message: &'a str,
}

impl IntoResponse for TrackerError {
    fn into_response(self) -> Response {
        let code = self.code();
        let message = match &self {
            TrackerError::Api { message, .. } => message.clone(),
            other => {
                tracing::error!(error = %other, "internal error");
                "internal error (see the server log)".to_owned()
            }
        };
        (
            code.status(),
            axum::Json(Body {
                error_code: code,
                message: &message,
            }),
        )
            .into_response()
    }
}
