//! The error every request path returns, mapped to an HTTP status, a log level and an
//! OpenAI-shaped body (`{"error":{"message","type","code"}}`) in exactly one place.
//! The client message is separate from the log detail: internal causes are logged, not sent.

use crate::store::StoreError;
use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// A form's values refused: the message, and why each field at fault was refused.
    #[error("{message}")]
    InvalidFields {
        message: String,
        fields: std::collections::BTreeMap<String, String>,
    },
    #[error("{0}")]
    InvalidApiKey(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    ModelNotAllowed(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    ModelNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{method} is not supported here; allowed: {allow}")]
    MethodNotAllowed { method: String, allow: String },
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    InsufficientQuota(String),
    #[error("too many attempts; try again in {retry_after} s")]
    Throttled { retry_after: u64 },
    /// A key or user over its requests- or tokens-per-minute limit (boxed: it carries the
    /// numbers for the message and headers).
    #[error("{0}")]
    RateLimited(Box<crate::ratelimit::Refusal>),
    #[error("{0}")]
    UpstreamFailed(String),
    #[error("{0}")]
    UpstreamTimeout(String),
    /// An upstream 429 after every channel was tried.
    #[error("{0}")]
    UpstreamRateLimited(String),
    #[error("the service is shutting down")]
    ShuttingDown,
    /// The store cannot commit (a full disk, an I/O error): a relay call would not be billed,
    /// so it is refused before anything goes upstream.
    #[error(
        "the gateway cannot record usage right now (its database cannot write); try again shortly"
    )]
    StoreUnready,
    #[error("internal error: {0}")]
    Internal(String),
    #[error("database error: {0}")]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidFields { .. } => StatusCode::BAD_REQUEST,
            ApiError::InvalidApiKey(_) | ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::ModelNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::ModelNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::InsufficientQuota(_)
            | ApiError::Throttled { .. }
            | ApiError::RateLimited(_)
            | ApiError::UpstreamRateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UpstreamFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::ShuttingDown | ApiError::StoreUnready => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Store(e) if e.is_not_found() => StatusCode::NOT_FOUND,
            ApiError::Store(e) if e.is_conflict() => StatusCode::CONFLICT,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// OpenAI's `type` and `code` for the body.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidFields { .. } => {
                ("invalid_request_error", "invalid_request")
            }
            ApiError::InvalidApiKey(_) => ("invalid_request_error", "invalid_api_key"),
            ApiError::Unauthenticated(_) => ("authentication_error", "unauthenticated"),
            ApiError::Forbidden(_) => ("permission_error", "forbidden"),
            ApiError::ModelNotAllowed(_) => ("permission_error", "model_not_allowed"),
            ApiError::NotFound(_) => ("invalid_request_error", "not_found"),
            ApiError::ModelNotFound(_) => ("invalid_request_error", "model_not_found"),
            ApiError::Conflict(_) => ("invalid_request_error", "conflict"),
            ApiError::MethodNotAllowed { .. } => ("invalid_request_error", "method_not_allowed"),
            ApiError::PayloadTooLarge(_) => ("invalid_request_error", "request_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                ("invalid_request_error", "unsupported_media_type")
            }
            ApiError::InsufficientQuota(_) => ("insufficient_quota", "insufficient_quota"),
            ApiError::Throttled { .. } => ("rate_limit_error", "rate_limit_exceeded"),
            // OpenAI's own rate-limit errors carry the dimension as the type.
            ApiError::RateLimited(r) => (r.kind.as_str(), "rate_limit_exceeded"),
            ApiError::UpstreamRateLimited(_) => ("rate_limit_error", "rate_limit_exceeded"),
            ApiError::UpstreamFailed(_) => ("upstream_error", "bad_gateway"),
            ApiError::UpstreamTimeout(_) => ("upstream_error", "gateway_timeout"),
            ApiError::ShuttingDown => ("server_error", "shutting_down"),
            ApiError::StoreUnready => ("server_error", "database_unavailable"),
            ApiError::Internal(_) => ("server_error", "internal_error"),
            ApiError::Store(e) if e.is_not_found() => ("invalid_request_error", "not_found"),
            ApiError::Store(e) if e.is_conflict() => ("invalid_request_error", "conflict"),
            ApiError::Store(_) => ("server_error", "database_unavailable"),
        }
    }

    /// Client errors are the client's business (DEBUG); ours are WARN or ERR.
    pub fn log_level(&self) -> log::Level {
        match self {
            ApiError::BadRequest(_)
            | ApiError::InvalidFields { .. }
            | ApiError::InvalidApiKey(_)
            | ApiError::Unauthenticated(_)
            | ApiError::Forbidden(_)
            | ApiError::ModelNotAllowed(_)
            | ApiError::NotFound(_)
            | ApiError::ModelNotFound(_)
            | ApiError::Conflict(_)
            | ApiError::MethodNotAllowed { .. }
            | ApiError::PayloadTooLarge(_)
            | ApiError::UnsupportedMediaType(_)
            | ApiError::InsufficientQuota(_)
            | ApiError::Throttled { .. }
            | ApiError::RateLimited(_) => log::Level::Debug,
            ApiError::UpstreamFailed(_)
            | ApiError::UpstreamTimeout(_)
            | ApiError::UpstreamRateLimited(_)
            | ApiError::ShuttingDown
            | ApiError::StoreUnready => log::Level::Warn,
            ApiError::Internal(_) => log::Level::Error,
            ApiError::Store(e) if e.is_not_found() || e.is_conflict() => log::Level::Debug,
            ApiError::Store(_) => log::Level::Error,
        }
    }

    /// What the client reads. Internal details stay in the log.
    pub fn client_message(&self) -> String {
        match self {
            ApiError::Internal(_) => {
                "internal error; the server log has the details under this request id".into()
            }
            ApiError::Store(e) if e.is_not_found() => "not found".into(),
            ApiError::Store(e) if e.is_conflict() => {
                "a record with that name already exists".into()
            }
            ApiError::Store(_) => "the database is unavailable; try again shortly".into(),
            ApiError::BadRequest(_)
            | ApiError::InvalidFields { .. }
            | ApiError::InvalidApiKey(_)
            | ApiError::Unauthenticated(_)
            | ApiError::Forbidden(_)
            | ApiError::ModelNotAllowed(_)
            | ApiError::NotFound(_)
            | ApiError::ModelNotFound(_)
            | ApiError::Conflict(_)
            | ApiError::MethodNotAllowed { .. }
            | ApiError::PayloadTooLarge(_)
            | ApiError::UnsupportedMediaType(_)
            | ApiError::InsufficientQuota(_)
            | ApiError::Throttled { .. }
            | ApiError::RateLimited(_)
            | ApiError::UpstreamFailed(_)
            | ApiError::UpstreamTimeout(_)
            | ApiError::UpstreamRateLimited(_)
            | ApiError::ShuttingDown
            | ApiError::StoreUnready => self.to_string(),
        }
    }

    pub fn body(&self) -> Bytes {
        let (kind, code) = self.kind();
        let mut v = json!({"error": {"message": self.client_message(), "type": kind, "param": null, "code": code}});
        if let ApiError::InvalidFields { fields, .. } = self {
            v["error"]["fields"] = json!(fields);
        }
        Bytes::from(v.to_string())
    }

    /// Anthropic's error `type` (the Messages routes answer in Anthropic's shape).
    fn anthropic_kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_)
            | ApiError::InvalidFields { .. }
            | ApiError::Conflict(_)
            | ApiError::MethodNotAllowed { .. }
            | ApiError::UnsupportedMediaType(_) => "invalid_request_error",
            ApiError::PayloadTooLarge(_) => "request_too_large",
            ApiError::InvalidApiKey(_) | ApiError::Unauthenticated(_) => "authentication_error",
            ApiError::Forbidden(_) | ApiError::ModelNotAllowed(_) => "permission_error",
            ApiError::NotFound(_) | ApiError::ModelNotFound(_) => "not_found_error",
            ApiError::InsufficientQuota(_)
            | ApiError::Throttled { .. }
            | ApiError::RateLimited(_)
            | ApiError::UpstreamRateLimited(_) => "rate_limit_error",
            ApiError::ShuttingDown | ApiError::StoreUnready => "overloaded_error",
            ApiError::UpstreamFailed(_) | ApiError::UpstreamTimeout(_) | ApiError::Internal(_) => {
                "api_error"
            }
            ApiError::Store(e) if e.is_not_found() => "not_found_error",
            ApiError::Store(e) if e.is_conflict() => "invalid_request_error",
            ApiError::Store(_) => "api_error",
        }
    }

    /// The body in the client's format: OpenAI's shape, or on the Messages routes
    /// Anthropic's (`{"type":"error","error":{"type","message"}}`).
    pub fn body_in(&self, format: crate::formats::Format) -> Bytes {
        match format {
            // Gemini is never a client's format.
            crate::formats::Format::OpenAiChat
            | crate::formats::Format::Responses
            | crate::formats::Format::Gemini => self.body(),
            crate::formats::Format::Anthropic => {
                let v = json!({"type": "error",
                    "error": {"type": self.anthropic_kind(), "message": self.client_message()}});
                Bytes::from(v.to_string())
            }
        }
    }

    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Throttled { retry_after } => Some(*retry_after),
            ApiError::StoreUnready => Some(5),
            ApiError::RateLimited(r) => Some(r.retry_after_secs()),
            _ => None,
        }
    }

    /// Headers beyond `Retry-After` that belong to the error (`x-ratelimit-*`).
    pub fn extra_headers(&self) -> Vec<(http::HeaderName, http::HeaderValue)> {
        match self {
            ApiError::RateLimited(r) => r.headers.pairs(),
            _ => Vec::new(),
        }
    }
}

/// A channel test that could not run: the channel is gone, it lists no model, or the store failed.
impl From<crate::channel_health::TestError> for ApiError {
    fn from(e: crate::channel_health::TestError) -> ApiError {
        use crate::channel_health::TestError;
        match e {
            TestError::NoSuchChannel(_) => ApiError::NotFound(e.to_string()),
            TestError::NoModel => ApiError::BadRequest(e.to_string()),
            TestError::Store(e) => ApiError::Store(e),
        }
    }
}
