//! The responses a computational operation can answer besides upstream's 200 and 422.
//!
//! tesseract-core's document lists 200 and 422 only, while its server (and ours) also answers
//! 406, 413, 500 and others. We document every status [`crate::http::ApiError`] can give on
//! these routes, each with the body we send (see the status table in [`crate::http`]), so a
//! client or schemathesis's `status_code_conformance` can rely on the list. The schemas are
//! inline: `components.schemas` stays upstream's, name for name.

use serde_json::{Map, Value, json};

use crate::http::negotiate::{COMPRESSIONS, GPU_TRANSPORTS};

/// `{"detail": "<message>"}`, the body of every error but 406 and 422.
fn detail_message() -> Value {
    json!({
        "type": "object",
        "properties": { "detail": { "type": "string", "title": "Detail" } },
        "required": ["detail"],
        "title": "HTTPError",
    })
}

/// Upstream's 406 body: what the server could have produced.
fn not_acceptable(formats: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": {
            "detail": {
                "type": "object",
                "properties": {
                    "message": { "type": "string", "title": "Message" },
                    "available_formats": { "type": "array", "items": { "type": "string" }, "const": formats },
                    "available_gpu_transports": { "type": "array", "items": { "type": "string" }, "const": GPU_TRANSPORTS },
                    "available_compressions": { "type": "array", "items": { "type": "string" }, "const": COMPRESSIONS },
                },
                "required": ["message", "available_formats", "available_gpu_transports", "available_compressions"],
                "title": "Detail",
            }
        },
        "required": ["detail"],
        "title": "NotAcceptableError",
    })
}

fn response(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema } },
    })
}

/// Adds the error responses of a computational operation to `responses` (which holds
/// upstream's 200 and 422). `negotiated`: the operation reads `Accept`, so it can answer 406.
pub(super) fn add_errors(responses: &mut Map<String, Value>, negotiated: bool, formats: &[&str]) {
    if negotiated {
        responses.insert(
            "406".into(),
            response(
                "Not Acceptable: no encoding the `Accept` header allows can be produced",
                not_acceptable(formats),
            ),
        );
    }
    let mut timeout = response(
        "Request Timeout: the body did not arrive within the server's --body-timeout; the \
         connection is closed",
        detail_message(),
    );
    if let Some(obj) = timeout.as_object_mut() {
        obj.insert(
            "headers".into(),
            json!({ "Connection": { "required": true, "schema": { "type": "string", "const": "close" } } }),
        );
    }
    responses.insert("408".into(), timeout);
    responses.insert(
        "413".into(),
        response(
            "Content Too Large: the body is larger than the server's --max-body-size",
            detail_message(),
        ),
    );
    responses.insert(
        "500".into(),
        response(
            "Internal Server Error: the component failed (its `failed` error, a trap, the memory \
             cap, a stack overflow) or returned what its declared outputs do not allow; the \
             detail says which. A failure of the host itself gets a generic detail",
            detail_message(),
        ),
    );
    let mut overloaded = response(
        "Service Unavailable: every compute slot is busy and the queue is full; retry after \
         the given seconds",
        detail_message(),
    );
    if let Some(obj) = overloaded.as_object_mut() {
        obj.insert(
            "headers".into(),
            json!({ "Retry-After": { "required": true, "schema": { "type": "integer", "minimum": 0 } } }),
        );
    }
    responses.insert("503".into(), overloaded);
    responses.insert(
        "504".into(),
        response(
            "Gateway Timeout: the component ran past the server's --timeout and was stopped",
            detail_message(),
        ),
    );
}
