//! `tesseract-wasm run`: one request, tesseract-core's JSON in and out.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{EngineArgs, WireArgs};
use crate::codec::{Compression, DecodeOptions, OutputFormat};
use crate::planner::Endpoint;
use crate::request::{self, CodecOptions, Format};

/// Run one endpoint of a component on a JSON payload
///
/// The payload is the body tesseract-core's HTTP API takes, e.g. '{"inputs": {"x": 0.5}}';
/// the response goes to stdout in tesseract-core's format. (Co)tangents with extra leading
/// axes are a batch: one call serves them all, and the response keeps the leading axes.
///
/// Example: tesseract-wasm run rosenbrock.wasm apply '{"inputs": {"x": 0.5, "y": 1.0}}'
#[derive(Debug, clap::Args)]
pub struct Run {
    /// The component (.wasm)
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// The endpoint to call
    #[arg(value_name = "ENDPOINT", value_parser = ["apply", "jacobian", "jacobian_vector_product", "vector_jacobian_product", "abstract_eval"])]
    endpoint: String,

    /// The JSON payload; @FILE reads it from a file and - from stdin
    #[arg(value_name = "PAYLOAD")]
    payload: String,

    /// Array encoding of the response
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "json",
        value_parser = ["json", "json+base64"],
        env = "TESSERACT_OUTPUT_FORMAT"
    )]
    output_format: String,

    /// Compress base64 arrays with lz4 (with --output-format json+base64)
    #[arg(long)]
    lz4: bool,

    /// Directory that binref array paths in the payload are relative to
    #[arg(long, value_name = "DIR", env = "TESSERACT_INPUT_PATH")]
    input_path: Option<PathBuf>,

    /// Most (co)tangents one request may carry (the product of its batch axes)
    #[arg(long, value_name = "N", default_value_t = request::DEFAULT_MAX_BATCH, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), env = "TESSERACT_WASM_MAX_BATCH")]
    max_batch: usize,

    #[command(flatten)]
    wire: WireArgs,

    #[command(flatten)]
    engine: EngineArgs,
}

fn read_payload(arg: &str) -> anyhow::Result<String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the payload from stdin")?;
        Ok(s)
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the payload file {path}"))
    } else {
        Ok(arg.to_owned())
    }
}

impl Run {
    pub fn execute(self, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
        let Some(endpoint) = request::endpoint_from_name(&self.endpoint) else {
            bail!(
                "unknown endpoint {:?}: use apply, jacobian, jacobian_vector_product, vector_jacobian_product or abstract_eval",
                self.endpoint
            );
        };
        let output = match self.output_format.as_str() {
            "json" => OutputFormat::Json,
            "json+base64" => OutputFormat::JsonBase64,
            other => bail!("unsupported output format {other:?}: use json or json+base64"),
        };
        if self.lz4 && output != OutputFormat::JsonBase64 {
            bail!("--lz4 compresses base64 arrays: it needs --output-format json+base64");
        }
        let text = read_payload(&self.payload)?;
        let limits = self.wire.limits();
        // The parse `serve` runs on a request body, Python's NaN and Infinity included: a deep
        // or huge payload would otherwise build a tree of that size (or overflow the stack)
        // before any other limit is checked.
        let body =
            match crate::http::body::parse(Some("application/json"), text.as_bytes(), &limits) {
                Ok(body) => body,
                Err(e) => {
                    return failed(
                        err,
                        endpoint,
                        e.status(),
                        "the payload is refused",
                        &e.body(),
                    );
                }
            };
        let engine = self.engine.engine()?;
        let runtime = self.engine.runtime(&engine, &self.file)?;
        let compression = if self.lz4 {
            Compression::Lz4
        } else {
            Compression::None
        };
        let opts = CodecOptions {
            decode: DecodeOptions {
                binref_root: self.input_path,
                limits,
                ..DecodeOptions::default()
            },
            format: Format {
                output,
                compression,
            },
            max_batch: self.max_batch,
            // The guest memory cap bounds it (see `request::handle`).
            max_vector_bytes: u64::MAX,
        };
        match request::handle(&runtime, endpoint, &body, &opts) {
            Ok(response) => {
                tracing::info!(endpoint = %endpoint, route = response.route.name(), "served");
                out.write_all(&response.body.to_json_vec()?)?;
                writeln!(out)?;
                Ok(0)
            }
            Err(e) => failed(err, endpoint, e.status(), &e, &e.body()),
        }
    }
}

/// Reports a refused or failed call as `serve` would answer it: status and reason, then the
/// response body; exit code 1.
fn failed(
    err: &mut dyn Write,
    endpoint: Endpoint,
    status: impl std::fmt::Display,
    reason: impl std::fmt::Display,
    body: &serde_json::Value,
) -> anyhow::Result<i32> {
    writeln!(
        err,
        "tesseract-wasm: {endpoint} failed ({status}): {reason}"
    )?;
    writeln!(err, "{}", serde_json::to_string(body)?)?;
    Ok(1)
}
