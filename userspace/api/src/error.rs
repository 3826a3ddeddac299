//! Errors on both sides of the socket, and the JSON body that carries them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// What a [`crate::Backend`] method can fail with; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// 404: `what` names the thing, e.g. "alert 42", "device `mac:…`".
    #[error("{what} not found")]
    NotFound { what: String },
    /// 422: the request was well-formed but cannot be done (e.g. blocking a protected device).
    #[error("{0}")]
    Refused(String),
    /// 501: the part of heir that would do it is not in this build.
    #[error("{what}")]
    NotBuilt { what: String },
    /// 500: the agent failed (e.g. the store could not write); the message says where.
    #[error("{0}")]
    Internal(String),
}

/// An error and its causes on one line, each printed once: `context: cause: cause`.
///
/// Error messages name only their own context and leave the cause to
/// [`std::error::Error::source`]; this is how to show all of it where there is no `anyhow`
/// (an error answer's body, a status line in the terminal UI).
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A sentence naming what was wrong.
    pub error: String,
    /// A stable machine-readable slug: bad_request, not_found, refused, not_built, internal, ...
    pub code: String,
}

/// An error answer: status plus [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, error: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.into(),
                code: code.to_owned(),
            },
        }
    }

    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", error)
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        let (status, code) = match &e {
            BackendError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            BackendError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
            BackendError::NotBuilt { .. } => (StatusCode::NOT_IMPLEMENTED, "not_built"),
            BackendError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}
