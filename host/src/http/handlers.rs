//! Route handlers. Computations go through admission control onto a blocking thread; the
//! other routes are answered from memory.

use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use http_body_util::BodyExt;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::body_buffer::BodyBuffer;
use super::error::{ApiError, json_response, loc};
use super::negotiate::{Negotiated, WireFormat, negotiate};
use super::{AppState, BATCH_SIZE_HEADER, ROUTE_HEADER, Shared, binref, body};
use crate::codec::{Answer, Compression, OutputFormat};
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

/// Validates, computes and encodes one request, on a worker or off it (see
/// [`INLINE_BODY_BYTES`]).
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
        // A fresh element budget per request; clones would share one.
        decode: app.inner.decode.for_request(),
        format: Format {
            output,
            compression: negotiated.compression,
        },
        max_batch: app.inner.options.max_batch,
        // The guest memory cap bounds it (see `request::handle`).
        max_vector_bytes: u64::MAX,
    };
    let response = request::handle(&app.inner.runtime, endpoint, body, &opts)?;
    let value = response.body;
    tracing::info!(endpoint = %endpoint, route = response.route.name(), "served");
    // A small request can have a large answer (a jacobian, a guest filling its output):
    // encoding it takes milliseconds, which must not hold the worker this request ran on.
    if value.array_bytes() > INLINE_BODY_BYTES {
        crate::drive::blocking(|| encode(value, negotiated, app, run_id))
    } else {
        encode(value, negotiated, app, run_id)
    }
    .map(|body| Computed {
        body,
        content_type: negotiated.format.content_type(),
        route: response.route.name(),
        batch_size: response.batch_size,
    })
}

/// Writes `value` as the negotiated response body (arrays into files for `json+binref`).
fn encode(
    mut value: Answer,
    negotiated: Negotiated,
    app: &AppState,
    run_id: Option<String>,
) -> Result<Vec<u8>, ApiError> {
    if negotiated.format == WireFormat::JsonBinref {
        let root = app.inner.options.output_path.as_deref().ok_or_else(|| {
            ApiError::Internal("json+binref negotiated without an output path".into())
        })?;
        let run_id = run_id.unwrap_or_else(binref::random_id);
        binref::to_binref(&mut value, root, &run_id).map_err(|e| ApiError::Internal(chain(&e)))?;
    }
    value
        .to_json_vec()
        .map_err(|e| ApiError::Internal(format!("cannot serialize the response: {e}")))
}

/// How reading a request body ended, when it did not end with the whole body.
enum BodyFailure {
    TooLarge,
    TimedOut,
    /// The bytes the server holds for bodies being read or computed on ran out: the body was
    /// drained, not kept.
    Overloaded,
    Broken(String),
}

impl From<BodyFailure> for ApiError {
    fn from(f: BodyFailure) -> ApiError {
        match f {
            BodyFailure::TooLarge => ApiError::TooLarge,
            BodyFailure::TimedOut => ApiError::BodyTimeout,
            BodyFailure::Overloaded => ApiError::Overloaded,
            BodyFailure::Broken(e) => {
                ApiError::Internal(format!("cannot read the request body: {e}"))
            }
        }
    }
}

/// Reads `body` frame by frame, at most `max` bytes, until `deadline`, keeping the bytes in a
/// [`BodyBuffer`] charged to `budget`: a connection that sent its headers and nothing more
/// holds nothing, whatever length it declared. Once the budget runs out the rest is counted
/// and dropped, and the read ends in [`BodyFailure::Overloaded`]: draining the refused body
/// keeps its connection usable without holding it. The returned permit holds the kept bytes'
/// share of the budget.
async fn read_body(
    body: Body,
    max: usize,
    deadline: tokio::time::Instant,
    budget: &Arc<Semaphore>,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), BodyFailure> {
    let declared = usize::try_from(body.size_hint().lower()).map_or(max, |n| n.min(max));
    let read = async move {
        let mut body = body;
        let mut kept = Some(BodyBuffer::new(declared));
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                if std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                {
                    BodyFailure::TooLarge
                } else {
                    BodyFailure::Broken(chain(&e))
                }
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            total = total.saturating_add(data.len());
            if total > max {
                return Err(BodyFailure::TooLarge);
            }
            if let Some(buffer) = kept.as_mut()
                && buffer.push(&data, budget).is_err()
            {
                kept = None;
            }
        }
        let (bytes, permit) = kept.ok_or(BodyFailure::Overloaded)?.finish();
        Ok((Bytes::from(bytes), permit))
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .unwrap_or(Err(BodyFailure::TimedOut))
}

/// Reads, admits, validates, computes and encodes one request.
///
/// Memory stays bounded in this order: the body is read against the gate's byte budget, so
/// bodies being read or computed on hold at most that much, and a connection that sends
/// headers and then stalls holds nothing (it used to take an admission slot, so a few idle
/// sockets kept every computation out); admission comes next; JSON is parsed on the compute
/// thread, so only running requests hold a parsed body.
async fn compute_async(
    shared: Shared,
    endpoint: Endpoint,
    headers: HeaderMap,
    query: Result<Query<RunQuery>, QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let gate = &shared.gate;
    let deadline = tokio::time::Instant::now() + gate.body_read_timeout;
    let (bytes, body_permit) =
        read_body(body, gate.max_body_bytes, deadline, &gate.body_bytes).await?;
    let Ok(admitted) = gate.admitted.clone().try_acquire_owned() else {
        return Err(ApiError::Overloaded);
    };
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
    let content_type = match header_str(&headers, header::CONTENT_TYPE) {
        Ok(ct) => ct.map(str::to_owned),
        Err(()) => Some(String::new()),
    };

    let running = gate
        .running
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::Overloaded)?;
    let app = shared.app.clone();
    let limits = app.inner.decode.limits;
    let compute = move |value: serde_json::Value| {
        // Held until the guest really finishes, even if the client has gone.
        let _permits = (admitted, running, body_permit);
        compute_blocking(&app, endpoint, &value, negotiated, run_id)
    };
    let computed = if bytes.len() <= INLINE_BODY_BYTES && on_a_multi_threaded_runtime() {
        let value = body::parse(content_type.as_deref(), &bytes, &limits)?;
        drop(bytes);
        if expands(&value) {
            off_the_workers(move || compute(value)).await
        } else {
            caught(move || compute(value))
        }
    } else {
        off_the_workers(move || {
            let value = body::parse(content_type.as_deref(), &bytes, &limits)?;
            drop(bytes);
            compute(value)
        })
        .await
    }
    .map_err(|e| ApiError::Internal(format!("the compute task failed: {e}")))??;
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

/// Bodies up to this size are parsed and computed on the worker that read them, unless they
/// hold arrays that decode to far more than their size ([`expands`]). Handing the worker away
/// before every request cost a small request several cross-thread wake-ups, most of its
/// latency (BENCHMARKS.md, *p50 latency*); on the worker, its guest calls move off by
/// themselves once they run past an epoch tick or wait (`crate::drive`), as do the looped
/// fan-out and the encoding of a large answer. Larger bodies, whose parsing alone takes
/// milliseconds, start [`off_the_workers`].
const INLINE_BODY_BYTES: usize = 64 << 10;

/// Whether computing here is allowed at all: a current-thread runtime's only thread must
/// never block.
fn on_a_multi_threaded_runtime() -> bool {
    tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
}

/// Whether a parsed body names an encoding whose decoding can cost far more than the body's
/// size: an lz4 frame (up to 255× its size) or a binref file read from disk. Any string
/// value equal to `lz4` or `binref` counts, wherever it is; a false positive only moves the
/// request off the worker.
pub(super) fn expands(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s == "lz4" || s == "binref",
        Value::Array(items) => items.iter().any(expands),
        Value::Object(fields) => fields.values().any(expands),
        _ => false,
    }
}

/// Runs `work`, which may block for as long as a guest's deadline, where it cannot stall the
/// Tokio workers, so `/health` and other connections keep being served.
///
/// On the multi-threaded runtime this is `block_in_place` (`crate::drive::blocking`): the
/// calling worker first hands its scheduler core (its queued tasks and the I/O driver) to
/// another thread, then runs `work` as a plain blocking thread, and the response is written
/// from the same thread afterwards; `spawn_blocking` would cost two more cross-thread wake-ups
/// (worker → blocking pool → worker). On a current-thread runtime (as in `oneshot` tests)
/// `block_in_place` is not available and `work` goes to the blocking pool.
///
/// # Errors
/// When `work` panicked: the panic is caught on either path and its message returned, so the
/// caller answers 500 and the connection and server go on.
pub(super) async fn off_the_workers<T, F>(work: F) -> Result<T, String>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        crate::drive::blocking(|| caught(work))
    } else {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Runs `work`, turning a panic into its message.
pub(super) fn caught<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    catch_unwind(AssertUnwindSafe(work)).map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        format!("it panicked: {message}")
    })
}

/// The route of one computational endpoint.
pub(super) fn compute(endpoint: Endpoint) -> MethodRouter<Shared> {
    post(
        move |State(shared): State<Shared>,
              headers: HeaderMap,
              query: Result<Query<RunQuery>, QueryRejection>,
              body: Body| { compute_async(shared, endpoint, headers, query, body) },
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

/// 404, except that a known route spelt with a trailing slash is redirected to it (307, so
/// the method and body are kept), as FastAPI's `redirect_slashes` does for tesseract-core.
pub(super) async fn not_found(
    State(shared): State<Shared>,
    uri: axum::http::Uri,
    _body: Result<Bytes, BytesRejection>,
) -> Response {
    let path = uri.path();
    let Some(trimmed) = path.strip_suffix('/').filter(|p| !p.is_empty()) else {
        return ApiError::NotFound.into_response();
    };
    let known = ["/health", "/openapi.json", "/docs"].contains(&trimmed)
        || shared
            .app
            .served()
            .iter()
            .any(|(endpoint, _)| trimmed.strip_prefix('/') == Some(endpoint.name()));
    if !known {
        return ApiError::NotFound.into_response();
    }
    let location = match uri.query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_owned(),
    };
    match HeaderValue::from_str(&location) {
        Ok(value) => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, value)]).into_response(),
        Err(_) => ApiError::NotFound.into_response(),
    }
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
