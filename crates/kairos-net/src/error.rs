//! The JSON error every kairos HTTP route returns: `{"error": "<code>", "message": "<text>"}`,
//! plus `"locked_until"` (Unix seconds) and a `Retry-After` header for time-locked content.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The body of every error response.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `locked`, `not_found`, `bad_signature`.
    pub error: String,
    /// A sentence for people.
    pub message: String,
    /// For `locked`: the release time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<u64>,
}

/// An error response: status + [`ErrorBody`].
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: code.to_owned(),
                message: message.into(),
                locked_until: None,
            },
            retry_after: None,
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// `403 locked`: the content opens at `release` (Unix seconds); `now` sets `Retry-After`.
    pub fn locked(what: &str, release: u64, now: u64) -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            "locked",
            format!(
                "{what} is locked until {}",
                kairos_proto::time::rfc3339(release)
            ),
        );
        e.body.locked_until = Some(release);
        e.retry_after = Some(release.saturating_sub(now).max(1));
        e
    }

    /// `503 busy`: every slot for this kind of request stayed taken for the whole wait.
    pub fn busy(what: &str, retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("this server is busy with other {what}; try again shortly or elsewhere"),
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; slow down",
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }
}

impl From<kairos_proto::RequestError> for ApiError {
    fn from(e: kairos_proto::RequestError) -> Self {
        use kairos_proto::RequestError as E;
        let (status, code) = match e {
            E::Header(_) => (StatusCode::UNAUTHORIZED, "unsigned"),
            E::Stale { .. } => (StatusCode::UNAUTHORIZED, "stale"),
            E::WrongRecipient(_) => (StatusCode::FORBIDDEN, "wrong_recipient"),
            E::BadSignature => (StatusCode::UNAUTHORIZED, "bad_signature"),
            E::Replay => (StatusCode::CONFLICT, "replay"),
            // Only this key's quota of remembered nonces is full.
            E::Busy => (StatusCode::TOO_MANY_REQUESTS, "busy"),
        };
        let mut err = ApiError::new(status, code, e.to_string());
        if status == StatusCode::TOO_MANY_REQUESTS {
            err.retry_after = Some(kairos_proto::request::MAX_FUTURE_SKEW);
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status, self.body.error, self.body.message
        )
    }
}

impl std::error::Error for ApiError {}

/// A storage failure met while serving a request: its details go to the log only; the client
/// learns whether to come back (shutting down) or go elsewhere (storage failed).
impl From<kairos_host::StoreError> for ApiError {
    fn from(e: kairos_host::StoreError) -> Self {
        tracing::error!("storage failure while serving a request: {e}");
        match e {
            kairos_host::StoreError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "this server is shutting down; try another one or come back later",
            ),
            _ => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_failed",
                "this server could not read or write its database; try another one",
            ),
        }
    }
}
