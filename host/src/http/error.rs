//! [`ApiError`]: the one place errors become status codes and bodies (the table is in the
//! module doc of [`crate::http`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::negotiate::NotAcceptable;
use crate::request::RequestError;
use crate::sandbox::CallError;
use crate::schema::{Loc, ValidationError, ValidationErrors};

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER_SECONDS: &str = "1";

/// Why an HTTP request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Validation or computation failed; [`RequestError::status`] decides the status.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The body or query failed before validation (bad JSON, wrong content type, bad run id).
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    NotAcceptable(#[from] NotAcceptable),
    #[error("request body is larger than the server's limit")]
    TooLarge,
    /// The client did not send its whole body within the body read timeout.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// Every compute slot is busy and the queue is full.
    #[error("the server is at capacity")]
    Overloaded,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A failure of the host itself. The message goes to the log, never to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A single 422 error.
    pub fn invalid(error: ValidationError) -> ApiError {
        ApiError::Invalid(ValidationErrors(vec![error]))
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Request(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        match self {
            ApiError::Request(RequestError::Call(CallError::Timeout { .. })) => {
                json!({ "detail": format!("deadline exceeded: {}", self.request_message()) })
            }
            ApiError::Request(RequestError::Call(CallError::Busy)) => {
                json!({ "detail": "the server is at capacity: no free instance slot; retry later" })
            }
            // A host failure may name files or wasmtime internals: the log gets it, not the
            // client.
            ApiError::Request(RequestError::Call(CallError::Host(_))) | ApiError::Internal(_) => {
                json!({ "detail": "internal server error; see the server log" })
            }
            ApiError::Request(e) => e.body(),
            ApiError::Invalid(e) => e.to_detail(),
            ApiError::NotAcceptable(e) => e.body(),
            ApiError::TooLarge => {
                json!({ "detail": "Request body is larger than the server's --max-body-size" })
            }
            ApiError::BodyTimeout => {
                json!({ "detail": "the request body did not arrive within the server's --body-timeout" })
            }
            ApiError::Overloaded => {
                json!({ "detail": "the server is at capacity: every compute slot is busy and the queue is full; retry later" })
            }
            ApiError::NotFound => json!({ "detail": "Not Found" }),
            ApiError::MethodNotAllowed => json!({ "detail": "Method Not Allowed" }),
        }
    }

    fn request_message(&self) -> String {
        match self {
            ApiError::Request(e) => e.to_string(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request rejected");
        }
        let mut response = json_response(status, &self.body());
        // The rest of the body may still be on its way: the connection cannot be reused.
        if status == StatusCode::REQUEST_TIMEOUT {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// A JSON response with `Content-Type: application/json`.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// `["body", ...]`-style locations.
pub fn loc(parts: &[&str]) -> Vec<Loc> {
    parts.iter().map(|&p| Loc::from(p)).collect()
}
