//! The HTTP server: tesseract-core's wire protocol over axum, plus batched (co)tangents.
//!
//! [`router`] builds the app from an [`AppState`] (a [`Runtime`] and the server's options) and
//! [`HttpLimits`]; `tesseract-wasm serve` binds it to a socket and tests call it with `oneshot`.
//! Routes: POST `/apply`, `/jacobian`, `/jacobian_vector_product`, `/vector_jacobian_product`
//! and `/abstract_eval` (each only when the planner can serve it, else 404), GET `/health`,
//! `/openapi.json` and `/docs`. Validation and computing are [`crate::request::handle`]'s; this
//! module owns transport: bodies, `Accept` negotiation, admission, status codes and headers.
//!
//! Guest code never holds a Tokio worker's scheduler for long: a small request's computation
//! starts on the worker that read it and moves off (`block_in_place`) once a guest call runs
//! past an epoch tick or waits (see `handlers::INLINE_BODY_BYTES` and `crate::drive`); a
//! large one starts off it. At most `max_concurrency` run at once, with up to `max_queued`
//! more waiting; past that a request gets 503 at once, so `/health` keeps
//! answering under any load. Admission comes before the body is read (a refused body is
//! drained, not kept) and JSON is parsed by the computation, so bodies held are bounded by
//! `(max_concurrency + max_queued) × max_body_bytes` and parsed bodies by `max_concurrency`.
//! The permits travel with the computation, so a client that hangs up frees its slot only
//! when the guest really stops. Connections, header and body read timeouts are [`serve`]'s
//! and [`HttpLimits::body_read_timeout`]'s.
//!
//! | Cause | Status | Body |
//! |---|---|---|
//! | invalid request: schema, path sets, (co)tangent shapes, batch rule, guest `invalid-input` | 422 | `{"detail":[{type,loc,msg,input,ctx}]}` |
//! | body not valid JSON | 422 | `json_invalid` at `["body", <char offset>]` |
//! | `Content-Type` not JSON | 422 | `model_attributes_type` at `["body"]` |
//! | empty body | 422 | `missing` at `["body"]` |
//! | unsafe `?run_id=` with `json+binref` (it names a directory) | 422 | `value_error` at `["query","run_id"]` |
//! | unknown path, or an endpoint the component cannot serve | 404 | `{"detail":"Not Found"}` |
//! | wrong method | 405 | `{"detail":"Method Not Allowed"}` |
//! | no acceptable encoding in `Accept` | 406 | upstream's `{"detail":{"message",available_*}}` |
//! | body over `max_body_bytes` | 413 | `{"detail":"…"}` |
//! | body not sent within `body_read_timeout` | 408, `Connection: close` | `{"detail":"…"}` |
//! | guest `failed` error, trap, memory cap, stack overflow, broken contract | 500 | `{"detail":"the component …"}`: the guest's error kind and message |
//! | host failure (wasmtime, files) | 500 | generic `{"detail":"internal server error; see the server log"}` |
//! | compute queue full, or no free instance slot | 503 | `{"detail":"…"}` and `Retry-After: 1` |
//! | guest ran past `--timeout` | 504 | `{"detail":"deadline exceeded: …"}` |
//!
//! Every response but 408 keeps the connection open: errors never set `Connection: close`
//! (upstream drops keep-alive connections after a 500).

mod binref;
pub(crate) mod body;
mod body_buffer;
mod docs;
mod error;
mod handlers;
mod listener;
pub use tesseract_wire::negotiate;
pub mod openapi;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tokio::sync::Semaphore;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use listener::{ConnectionLimits, serve};
pub use negotiate::{Negotiated, Offer, WireFormat};

use crate::codec::{Compression, DecodeLimits, DecodeOptions};
use crate::planner::{Endpoint, Route};
use crate::runtime::Runtime;

/// The endpoints served over HTTP, in `paths` order.
const ENDPOINTS: [Endpoint; 5] = [
    Endpoint::Apply,
    Endpoint::Jacobian,
    Endpoint::Jvp,
    Endpoint::Vjp,
    Endpoint::AbstractEval,
];

/// The response header naming the route that served a request (`native`, `looped`, ...).
pub const ROUTE_HEADER: &str = "tesseract-route";

/// The response header giving K, the number of (co)tangents of a batched jvp/vjp.
pub const BATCH_SIZE_HEADER: &str = "tesseract-batch-size";

/// How the server encodes responses and where binref files live.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// What `*/*`, `application/*` and a missing `Accept` mean. By default `json`.
    pub output_format: WireFormat,
    /// The compression when `Accept` names none. By default none.
    pub compression: Compression,
    /// The directory binref paths in requests are relative to; `None` refuses binref input.
    pub input_path: Option<PathBuf>,
    /// The directory binref responses are written under (`run_<id>/…`); `None` disables
    /// `json+binref`.
    pub output_path: Option<PathBuf>,
    /// Largest K of a batched jvp/vjp. By default 4096.
    pub max_batch: usize,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            output_format: WireFormat::Json,
            compression: Compression::None,
            input_path: None,
            output_path: None,
            max_batch: crate::request::DEFAULT_MAX_BATCH,
        }
    }
}

/// Why an [`AppState`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the json+binref output format needs an output directory (--output-path)")]
    BinrefWithoutOutputPath,
    #[error("--max-batch must be at least 1")]
    ZeroMaxBatch,
    #[error("cannot write json+binref files under --output-path {}", .path.display())]
    OutputPath {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What every handler shares: the component's runtime and the server's options, plus the
/// OpenAPI document and docs page rendered once.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    options: ServeOptions,
    offer: Offer,
    decode: DecodeOptions,
    served: Vec<(Endpoint, Route)>,
    openapi: String,
    docs: String,
}

impl AppState {
    /// # Errors
    /// See [`ConfigError`].
    pub fn new(runtime: Runtime, options: ServeOptions) -> Result<AppState, ConfigError> {
        AppState::with_limits(runtime, options, DecodeLimits::default())
    }

    /// [`AppState::new`] with the limits on request data (JSON nesting and size, decoded
    /// arrays, paths) that `limits` sets.
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn with_limits(
        runtime: Runtime,
        options: ServeOptions,
        limits: DecodeLimits,
    ) -> Result<AppState, ConfigError> {
        if options.output_format == WireFormat::JsonBinref && options.output_path.is_none() {
            return Err(ConfigError::BinrefWithoutOutputPath);
        }
        if options.max_batch == 0 {
            return Err(ConfigError::ZeroMaxBatch);
        }
        // At start rather than at the first binref answer, which would be a 500.
        if let Some(dir) = &options.output_path {
            std::fs::create_dir_all(dir)
                .and_then(|()| tempfile::tempfile_in(dir))
                .map_err(|source| ConfigError::OutputPath {
                    path: dir.clone(),
                    source,
                })?;
        }
        let formats = WireFormat::ALL
            .into_iter()
            .filter(|f| *f != WireFormat::JsonBinref || options.output_path.is_some())
            .collect();
        let offer = Offer {
            formats,
            default_format: options.output_format,
            default_compression: options.compression,
        };
        let served: Vec<(Endpoint, Route)> = ENDPOINTS
            .into_iter()
            .filter_map(|e| Some((e, runtime.route(e)?)))
            .collect();
        let info = runtime.component().info();
        let names = offer.format_names();
        let document = openapi::document(
            info,
            &openapi::Served {
                endpoints: &served,
                formats: &names,
                max_batch: options.max_batch,
            },
        );
        let docs = docs::page(info, &served, &names);
        Ok(AppState {
            inner: Arc::new(Inner {
                decode: DecodeOptions {
                    binref_root: options.input_path.clone(),
                    limits,
                    ..DecodeOptions::default()
                },
                runtime,
                options,
                offer,
                served,
                openapi: document.to_string(),
                docs,
            }),
        })
    }

    /// The runtime every computation goes through.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The options the server was started with.
    pub fn options(&self) -> &ServeOptions {
        &self.inner.options
    }

    /// The endpoints this server answers, with their routes.
    pub fn served(&self) -> &[(Endpoint, Route)] {
        &self.inner.served
    }
}

/// Transport limits of the server. Guest limits (memory, deadline) are the engine's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Computations running at once. A looped batch counts once here and fans out to the
    /// engine's loop parallelism. By default the number of cores.
    pub max_concurrency: usize,
    /// Requests that may wait for a compute slot; one more gets 503 with `Retry-After`.
    /// By default 16.
    pub max_queued: usize,
    /// Largest request body, in bytes. Larger bodies get 413, before the body is read when
    /// `Content-Length` says so. By default 32 MiB.
    pub max_body_bytes: usize,
    /// Time a client has to send a request body once its headers are in; past it, 408 and
    /// the connection is closed. By default 30 s.
    pub body_read_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            max_concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_queued: 16,
            max_body_bytes: 32 << 20,
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// The runtime `tesseract-wasm serve` runs [`router`] on: a worker per core, whose idle
/// threads hand their freed memory back (`alloc_trim`).
///
/// # Errors
/// When the operating system refuses the threads.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tesseract-wasm-http")
        // A worker going idle after a large request hands its freed pages back, so the
        // process returns them to the OS (`alloc_trim`).
        .on_thread_park(crate::alloc_trim::on_worker_park)
        .on_thread_unpark(crate::alloc_trim::on_worker_unpark)
        // Threads `block_in_place` leaves behind are out of the hooks' reach and give their
        // memory back only when they exit: after 1 s idle rather than Tokio's 10 s.
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .build()
}

/// Admission control for computations: `admitted` counts running plus waiting requests,
/// `running` the ones computing, and `body_bytes` the bytes of bodies being read or computed
/// on: `max_concurrency + max_queued` bodies of the largest size, the memory the admission
/// slots bounded when requests were admitted before their bodies were read.
#[derive(Clone)]
struct Gate {
    body_bytes: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    max_body_bytes: usize,
    body_read_timeout: Duration,
}

/// The router's state: the app plus its admission gate.
#[derive(Clone)]
struct Shared {
    app: AppState,
    gate: Gate,
}

/// Builds the app: the routes the component can serve, `/health`, `/openapi.json`, `/docs`,
/// and the body limit and tracing layers.
pub fn router(state: AppState, limits: &HttpLimits) -> Router {
    let running = limits.max_concurrency.max(1);
    let slots = running.saturating_add(limits.max_queued);
    let gate = Gate {
        body_bytes: Arc::new(Semaphore::new(
            slots
                .saturating_mul(limits.max_body_bytes)
                .min(Semaphore::MAX_PERMITS),
        )),
        admitted: Arc::new(Semaphore::new(running.saturating_add(limits.max_queued))),
        running: Arc::new(Semaphore::new(running)),
        max_body_bytes: limits.max_body_bytes,
        body_read_timeout: limits.body_read_timeout,
    };
    let mut app = Router::new()
        .route("/health", get(handlers::health))
        .route("/openapi.json", get(handlers::openapi))
        .route("/docs", get(handlers::docs));
    for &(endpoint, _) in state.served() {
        app = app.route(
            &format!("/{}", endpoint.name()),
            handlers::compute(endpoint),
        );
    }
    app.fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer((
            // A `debug` line per request (`TESSERACT_WASM_LOG=tower_http=debug`). Raising it
            // to `info`, or even configuring its events, measured ~3% slower small requests
            // with the logs off.
            TraceLayer::new_for_http(),
            // Outside the body limit, whose early 413 is plain text.
            axum::middleware::map_response(handlers::json_413),
            // Else axum's 2 MB default would silently win over the configured limit.
            DefaultBodyLimit::disable(),
            RequestBodyLimitLayer::new(limits.max_body_bytes),
        ))
        .with_state(Shared { app: state, gate })
}

#[cfg(test)]
mod tests;
