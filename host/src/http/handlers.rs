//! Route handlers. Computations go through admission control onto a blocking thread; the
//! other routes are answered from memory.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use serde_json::json;

use super::error::{ApiError, json_response, loc};
use super::negotiate::{Negotiated, WireFormat, negotiate};
use super::{AppState, BATCH_SIZE_HEADER, ROUTE_HEADER, Shared, binref, body};
use crate::codec::{Compression, OutputFormat};
use crate::planner::Endpoint;
use crate::request::{self, CodecOptions, Format};
use crate::schema::{Loc, ValidationError};

/// The query string of the computational routes. Unknown keys are ignored, as upstream.
#[derive(Debug, serde::Deserialize)]
pub(super) struct RunQuery {
    run_id: Option<String>,
}

/// A computed response, serialized on the blocking thread.
struct Computed {
    body: Vec<u8>,
    content_type: &'static str,
    route: &'static str,
    batch_size: Option<usize>,
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, ()> {
    headers
        .get(name)
        .map(|v| v.to_str().map_err(|_| ()))
        .transpose()
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge
    } else {
        ApiError::Internal(format!("cannot read the request body: {rejection}"))
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Validates, computes and encodes one request. Runs on a blocking thread.
fn compute_blocking(
    app: &AppState,
    endpoint: Endpoint,
    body: &serde_json::Value,
    negotiated: Negotiated,
    run_id: Option<String>,
) -> Result<Computed, ApiError> {
    let output = match negotiated.format {
        WireFormat::Json => OutputFormat::Json,
        // binref starts as base64; `binref::to_binref` moves the bytes to a file.
        WireFormat::JsonBase64 | WireFormat::JsonBinref => OutputFormat::JsonBase64,
    };
    let opts = CodecOptions {
        decode: app.inner.decode.clone(),
        format: Format {
            output,
            compression: negotiated.compression,
        },
        max_batch: app.inner.options.max_batch,
        // The guest memory cap bounds it (see `request::handle`).
        max_vector_bytes: u64::MAX,
    };
    let response = request::handle(&app.inner.runtime, endpoint, body, &opts)?;
    let mut value = response.body;
    if negotiated.format == WireFormat::JsonBinref {
        let root = app.inner.options.output_path.as_deref().ok_or_else(|| {
            ApiError::Internal("json+binref negotiated without an output path".into())
        })?;
        let run_id = run_id.unwrap_or_else(binref::random_id);
        binref::to_binref(&mut value, root, &run_id).map_err(|e| ApiError::Internal(chain(&e)))?;
    }
    let bytes = serde_json::to_vec(&value)
        .map_err(|e| ApiError::Internal(format!("cannot serialize the response: {e}")))?;
    tracing::info!(endpoint = %endpoint, route = response.route.name(), "served");
    Ok(Computed {
        body: bytes,
        content_type: negotiated.format.content_type(),
        route: response.route.name(),
        batch_size: response.batch_size,
    })
}

async fn compute_async(
    shared: Shared,
    endpoint: Endpoint,
    headers: HeaderMap,
    query: Result<Query<RunQuery>, QueryRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // The body is read before anything can fail, so the connection stays reusable.
    let bytes = bytes.map_err(body_error)?;
    let negotiated = if endpoint == Endpoint::AbstractEval {
        // abstract_eval returns shapes and dtypes only: always plain JSON, Accept ignored.
        Negotiated {
            format: WireFormat::Json,
            compression: Compression::None,
        }
    } else {
        let accept = header_str(&headers, header::ACCEPT);
        match accept {
            Ok(accept) => negotiate(accept, &shared.app.inner.offer)?,
            Err(()) => {
                return Err(ApiError::NotAcceptable(super::negotiate::NotAcceptable {
                    accept: String::from_utf8_lossy(
                        headers
                            .get(header::ACCEPT)
                            .map(HeaderValue::as_bytes)
                            .unwrap_or_default(),
                    )
                    .into_owned(),
                    formats: shared.app.inner.offer.format_names(),
                }));
            }
        }
    };
    let run_id = match query {
        Ok(Query(q)) => q.run_id,
        Err(e) => {
            return Err(ApiError::invalid(ValidationError::value_error(
                loc(&["query"]),
                json!({}),
                &e.body_text(),
            )));
        }
    };
    // The run id only matters when it names the binref directory; otherwise it is ignored,
    // as upstream accepts any.
    if negotiated.format == WireFormat::JsonBinref
        && let Some(id) = run_id.as_deref()
        && !binref::valid_run_id(id)
    {
        return Err(ApiError::invalid(ValidationError::value_error(
            vec![Loc::from("query"), Loc::from("run_id")],
            json!(id),
            "run_id may only hold letters, digits, `-`, `_` and `.` (at most 128), since it names a directory",
        )));
    }
    let content_type = header_str(&headers, header::CONTENT_TYPE).unwrap_or(Some(""));
    let value = body::parse(content_type, &bytes, &shared.app.inner.decode.limits)?;
    drop(bytes);

    let admitted = shared
        .gate
        .admitted
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded)?;
    let running = shared
        .gate
        .running
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::Overloaded)?;
    let app = shared.app.clone();
    let task = tokio::task::spawn_blocking(move || {
        // Held until the guest really finishes, even if the client has gone.
        let _permits = (admitted, running);
        compute_blocking(&app, endpoint, &value, negotiated, run_id)
    });
    let computed = match task.await {
        Ok(result) => result?,
        Err(e) => return Err(ApiError::Internal(format!("the compute task failed: {e}"))),
    };
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, computed.content_type)],
        computed.body,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(ROUTE_HEADER, HeaderValue::from_static(computed.route));
    if let Some(k) = computed.batch_size {
        headers.insert(BATCH_SIZE_HEADER, HeaderValue::from(k));
    }
    Ok(response)
}

/// The route of one computational endpoint.
pub(super) fn compute(endpoint: Endpoint) -> MethodRouter<Shared> {
    post(
        move |State(shared): State<Shared>,
              headers: HeaderMap,
              query: Result<Query<RunQuery>, QueryRejection>,
              bytes: Result<Bytes, BytesRejection>| {
            compute_async(shared, endpoint, headers, query, bytes)
        },
    )
}

/// `GET /health`. Reads (and ignores) any body, such as the Python client's `null`.
pub(super) async fn health(_body: Result<Bytes, BytesRejection>) -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

pub(super) async fn openapi(State(shared): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        shared.app.inner.openapi.clone(),
    )
        .into_response()
}

pub(super) async fn docs(State(shared): State<Shared>) -> Html<String> {
    Html(shared.app.inner.docs.clone())
}

pub(super) async fn not_found(_body: Result<Bytes, BytesRejection>) -> ApiError {
    ApiError::NotFound
}

pub(super) async fn method_not_allowed(_body: Result<Bytes, BytesRejection>) -> ApiError {
    ApiError::MethodNotAllowed
}

/// Gives the body-limit layer's plain-text 413 the JSON body every other error has.
pub(super) async fn json_413<B>(response: axum::http::Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return ApiError::TooLarge.into_response();
    }
    response.map(axum::body::Body::new)
}
