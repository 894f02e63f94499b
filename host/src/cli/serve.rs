//! `tesseract-wasm serve`: load a component once and answer tesseract-core's HTTP API until
//! SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use super::{EngineArgs, WireArgs, parse_duration, parse_nonzero_size};
use crate::codec::Compression;
use crate::http::{self, AppState, ConnectionLimits, HttpLimits, ServeOptions, WireFormat};

fn parse_format(text: &str) -> Result<WireFormat, String> {
    WireFormat::from_name(text).ok_or_else(|| {
        format!("unknown output format {text:?}: use json, json+base64 or json+binref")
    })
}

fn parse_compression(text: &str) -> Result<Compression, String> {
    match text {
        "none" => Ok(Compression::None),
        "lz4" => Ok(Compression::Lz4),
        _ => Err(format!("unknown compression {text:?}: use none or lz4")),
    }
}

fn parse_body_size(text: &str) -> Result<usize, String> {
    let n = parse_nonzero_size(text)?;
    usize::try_from(n).map_err(|_| format!("size {text:?} is too large for this machine"))
}

/// The most instance slots `serve` will reserve address space for (each reserves
/// --max-memory plus guard pages of virtual memory, not physical memory).
const MAX_POOL_INSTANCES: u32 = 4096;

/// Instance slots for a server running `concurrency` requests at once, each using at most
/// `loop_parallelism` instances: their product (so admitted work never finds the pool empty)
/// plus one spare, at most [`MAX_POOL_INSTANCES`]. Also returns the unclamped number wanted.
fn pool_instances(concurrency: usize, loop_parallelism: usize) -> (u32, u64) {
    let wanted = u64::try_from(concurrency)
        .unwrap_or(u64::MAX)
        .saturating_mul(u64::try_from(loop_parallelism).unwrap_or(u64::MAX))
        .saturating_add(1);
    let instances =
        u32::try_from(wanted.min(u64::from(MAX_POOL_INSTANCES))).unwrap_or(MAX_POOL_INSTANCES);
    (instances, wanted)
}

fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Serve a component over HTTP with tesseract-core's API
///
/// Loads the component once, then answers until interrupted (SIGINT or SIGTERM; requests in
/// flight finish first), each computation on a fresh instance. Works with tesseract-core's
/// Python client (Tesseract.from_url) and tesseract-jax unchanged. Prints "listening on
/// http://HOST:PORT" on stdout once it accepts connections.
///
/// Routes: POST /apply, /jacobian, /jacobian_vector_product, /vector_jacobian_product and
/// /abstract_eval (those the component can serve, natively or derived), GET /health,
/// /openapi.json and /docs.
///
/// Example: tesseract-wasm serve rosenbrock.wasm --port 8000
#[derive(Debug, clap::Args)]
pub struct Serve {
    /// The component (.wasm)
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Address to listen on
    ///
    /// 127.0.0.1 accepts local clients only; 0.0.0.0 accepts any (in a container, say).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1",
        env = "TESSERACT_WASM_HOST",
        help_heading = "Server"
    )]
    host: String,

    /// Port to listen on
    ///
    /// 0 picks a free port; the "listening on" line says which.
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 8000,
        env = "TESSERACT_WASM_PORT",
        help_heading = "Server"
    )]
    port: u16,

    /// Default array encoding of responses: json, json+base64 or json+binref
    ///
    /// Used when a request's Accept header is absent, */* or application/*; a client may
    /// ask for another with e.g. "Accept: application/json+base64". json+binref writes array
    /// bytes to files under --output-path and needs it.
    #[arg(long, value_name = "FORMAT", default_value = "json", value_parser = parse_format, env = "TESSERACT_OUTPUT_FORMAT", help_heading = "Encoding")]
    output_format: WireFormat,

    /// Default compression of base64 and binref arrays: none or lz4
    ///
    /// A client may override it per request with "Accept: application/json+base64;
    /// compression=lz4" (or compression=none).
    #[arg(long, value_name = "COMPRESSION", default_value = "none", value_parser = parse_compression, env = "TESSERACT_COMPRESSION", help_heading = "Encoding")]
    compression: Compression,

    /// Directory that binref array paths in requests are relative to
    ///
    /// Without it, binref inputs are refused.
    #[arg(
        long,
        value_name = "DIR",
        env = "TESSERACT_INPUT_PATH",
        help_heading = "Encoding"
    )]
    input_path: Option<PathBuf>,

    /// Directory json+binref responses are written under, as run_<ID>/<FILE>.bin
    ///
    /// ID is the request's ?run_id= or a random one. Without this directory, json+binref is
    /// not offered.
    #[arg(
        long,
        value_name = "DIR",
        env = "TESSERACT_OUTPUT_PATH",
        help_heading = "Encoding"
    )]
    output_path: Option<PathBuf>,

    /// Computations running at once [default: number of cores]
    ///
    /// A long one moves off the server's async workers within one 10 ms epoch tick, so /health
    /// answers however long it takes. A looped batch counts once here and fans out to
    /// --loop-parallelism instances.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        env = "TESSERACT_WASM_MAX_CONCURRENCY",
        help_heading = "Limits"
    )]
    max_concurrency: Option<usize>,

    /// Requests that may wait for a computation slot
    ///
    /// One more gets 503 with Retry-After at once, instead of an ever longer queue. A
    /// waiting request holds its body, so this times --max-body-size bounds that memory.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 16,
        env = "TESSERACT_WASM_MAX_QUEUE",
        help_heading = "Limits"
    )]
    max_queue: usize,

    /// Largest request body accepted
    ///
    /// Larger requests get 413, before the body is read when Content-Length says so. Takes
    /// a K, M or G suffix (powers of 1024), e.g. 512K.
    #[arg(long, value_name = "SIZE", default_value = "32M", value_parser = parse_body_size, env = "TESSERACT_WASM_MAX_BODY_SIZE", help_heading = "Limits")]
    max_body_size: usize,

    /// Time a client has to send a request's headers
    ///
    /// Counted from when the server is ready to read them, so it also closes idle keep-alive
    /// connections. A client that dribbles its headers (slow-loris) is disconnected.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, env = "TESSERACT_WASM_HEADER_TIMEOUT", help_heading = "Limits")]
    header_timeout: std::time::Duration,

    /// Time a client has to send a request's body once its headers are in
    ///
    /// Past it the answer is 408 and the connection is closed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, env = "TESSERACT_WASM_BODY_TIMEOUT", help_heading = "Limits")]
    body_timeout: std::time::Duration,

    /// Open connections at once
    ///
    /// Further clients wait in the kernel's accept queue until one closes.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 512,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        env = "TESSERACT_WASM_MAX_CONNECTIONS",
        help_heading = "Limits"
    )]
    max_connections: usize,

    /// Most (co)tangents one jvp/vjp request may carry (the product of its batch axes)
    ///
    /// A larger batch gets a 422 naming the limit.
    #[arg(long, value_name = "N", default_value_t = crate::request::DEFAULT_MAX_BATCH, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), env = "TESSERACT_WASM_MAX_BATCH", help_heading = "Limits")]
    max_batch: usize,

    #[command(flatten)]
    wire: WireArgs,

    #[command(flatten)]
    engine: EngineArgs,
}

/// Resolves when the process gets SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // Without a handler, wait forever rather than shut down at once.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

impl Serve {
    pub fn execute(self, out: &mut dyn Write) -> anyhow::Result<i32> {
        let max_concurrency = self.max_concurrency.unwrap_or_else(default_concurrency);
        let loop_parallelism = self
            .engine
            .loop_parallelism
            .unwrap_or_else(default_concurrency);
        let (instances, wanted) = pool_instances(max_concurrency, loop_parallelism);
        if wanted > u64::from(instances) {
            tracing::warn!(
                wanted,
                instances,
                "--max-concurrency × --loop-parallelism exceeds the instance pool: under full \
                 load some calls will get 503; lower one of them"
            );
        }
        // The engine owns the epoch ticker that enforces deadlines: it lives as long as the
        // server.
        let engine = self.engine.engine_with_pool(instances)?;
        let runtime = self.engine.runtime(&engine, &self.file)?;
        let options = ServeOptions {
            output_format: self.output_format,
            compression: self.compression,
            input_path: self.input_path,
            output_path: self.output_path,
            max_batch: self.max_batch,
        };
        let state = AppState::with_limits(runtime, options, self.wire.limits())?;
        let limits = HttpLimits {
            max_concurrency,
            max_queued: self.max_queue,
            max_body_bytes: self.max_body_size,
            body_read_timeout: self.body_timeout,
        };
        let connections = ConnectionLimits {
            header_read_timeout: self.header_timeout,
            max_connections: self.max_connections,
        };
        tracing::info!(
            max_concurrency,
            loop_parallelism,
            instances,
            "instance pool sized to concurrency × loop parallelism"
        );
        let app = http::router(state, &limits);

        let tokio = http::runtime().context("cannot start the async runtime")?;
        tokio.block_on(async {
            let listener = tokio::net::TcpListener::bind((self.host.as_str(), self.port))
                .await
                .with_context(|| format!("cannot listen on {}:{}", self.host, self.port))?;
            let addr: SocketAddr = listener.local_addr()?;
            tracing::info!(%addr, "listening on http://{addr}");
            writeln!(out, "listening on http://{addr}")?;
            out.flush()?;
            http::serve(listener, app, &connections, shutdown_signal()).await;
            anyhow::Ok(())
        })?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_holds_every_admitted_instance_plus_one() {
        // A 2-core machine's defaults.
        assert_eq!(pool_instances(2, 2), (5, 5));
        assert_eq!(pool_instances(16, 4), (65, 65));
        // Far beyond what address space allows: clamped, and the caller is told.
        assert_eq!(
            pool_instances(128, 128),
            (MAX_POOL_INSTANCES, 128 * 128 + 1)
        );
        assert_eq!(
            pool_instances(usize::MAX, usize::MAX),
            (MAX_POOL_INSTANCES, u64::MAX)
        );
    }
}
