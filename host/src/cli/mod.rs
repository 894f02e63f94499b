//! The `tesseract-wasm` command line: clap definitions and one module per command. `main.rs`
//! is only glue around [`run`], which tests call in-process.

mod build;
mod check;
mod inspect;
mod options;
mod run;
mod serve;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

pub use options::{parse_duration, parse_nonzero_size, parse_size};

/// Package, inspect and run Tesseracts compiled to WebAssembly components
///
/// A Tesseract is a differentiable component (apply, jacobian, jvp, vjp, abstract_eval).
/// tesseract-wasm runs it as one sandboxed .wasm file, wire-compatible with tesseract-core.
#[derive(Debug, Parser)]
#[command(
    name = "tesseract-wasm",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Build(build::Build),
    Check(check::Check),
    Inspect(inspect::Inspect),
    Run(run::Run),
    Serve(serve::Serve),
}

/// Limits on a request's wire data, for `run` and `serve`. Each is checked before the memory
/// it guards is allocated; a request over one gets a 422 naming the flag.
#[derive(Debug, Clone, clap::Args)]
struct WireArgs {
    /// Largest array a request may send, once decoded (shape times dtype size)
    ///
    /// Checked from the declared shape before a base64, lz4 or binref buffer is decoded.
    /// Takes a K, M or G suffix.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_nonzero_size, env = "TESSERACT_WASM_MAX_ARRAY_SIZE", help_heading = "Request limits")]
    max_array_size: u64,

    /// Most tensor elements all arrays of one request may hold together
    #[arg(long, value_name = "N", default_value_t = crate::codec::DecodeLimits::default().max_request_elements, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..), env = "TESSERACT_WASM_MAX_REQUEST_ELEMENTS", help_heading = "Request limits")]
    max_request_elements: u64,

    /// Longest path in a request, in bytes: binref paths, path sets, (co)tangent and object keys
    #[arg(long, value_name = "BYTES", default_value_t = crate::codec::DecodeLimits::default().max_path_bytes, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), env = "TESSERACT_WASM_MAX_PATH_LENGTH", help_heading = "Request limits")]
    max_path_length: usize,

    /// Deepest nesting of a request body's JSON (1 to 128)
    #[arg(long, value_name = "N", default_value_t = crate::codec::DecodeLimits::default().max_json_depth, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=crate::codec::MAX_JSON_DEPTH as u64), env = "TESSERACT_WASM_MAX_JSON_DEPTH", help_heading = "Request limits")]
    max_json_depth: usize,

    /// Most JSON values (numbers, strings, lists, objects) in a request body
    ///
    /// Large arrays belong in base64, as tesseract-core's clients send them.
    #[arg(long, value_name = "N", default_value_t = crate::codec::DecodeLimits::default().max_json_values, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), env = "TESSERACT_WASM_MAX_JSON_VALUES", help_heading = "Request limits")]
    max_json_values: usize,
}

impl WireArgs {
    fn limits(&self) -> crate::codec::DecodeLimits {
        crate::codec::DecodeLimits {
            max_array_bytes: self.max_array_size,
            max_request_elements: self.max_request_elements,
            max_path_bytes: self.max_path_length,
            max_json_depth: self.max_json_depth,
            max_json_values: self.max_json_values,
        }
    }
}

/// Guest limits and engine settings shared by every command that loads a component.
#[derive(Debug, Clone, clap::Args)]
struct EngineArgs {
    /// Largest linear memory one guest instance may use
    ///
    /// Each call gets a fresh instance, so this is also the most one call can hold. Takes a
    /// K, M or G suffix (powers of 1024), e.g. 512M.
    #[arg(long, value_name = "SIZE", default_value = "512M", value_parser = parse_nonzero_size, env = "TESSERACT_WASM_MAX_MEMORY", help_heading = "Limits")]
    max_memory: u64,

    /// Wall-clock budget of one guest call
    ///
    /// A guest past its deadline is interrupted and the call fails with a timeout. Takes a
    /// number with a unit: 500ms, 60s, 2m (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration, env = "TESSERACT_WASM_TIMEOUT", help_heading = "Limits")]
    timeout: std::time::Duration,

    /// Guest stdout and stderr bytes kept for the log, per call and stream
    ///
    /// The rest is dropped; the guest still sees its writes succeed. Takes a K, M or G
    /// suffix.
    #[arg(long, value_name = "SIZE", default_value = "64K", value_parser = parse_size, env = "TESSERACT_WASM_MAX_GUEST_OUTPUT", help_heading = "Limits")]
    max_guest_output: u64,

    /// Host memory one call's result may take once copied out of the guest
    ///
    /// Charged per list and string before it is copied, so a guest returning many lists over
    /// the same bytes is refused (500) instead of multiplying them. Takes a K, M or G suffix.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_nonzero_size, env = "TESSERACT_WASM_MAX_RESULT_SIZE", help_heading = "Limits")]
    max_result_size: u64,

    /// Parallel fresh instances one looped batch may use [default: number of cores]
    ///
    /// Bounds what one request takes from the others.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        env = "TESSERACT_WASM_LOOP_PARALLELISM",
        help_heading = "Limits"
    )]
    loop_parallelism: Option<usize>,

    /// Directory of precompiled components [default: $XDG_CACHE_HOME/tesseract-wasm, else ~/.cache/tesseract-wasm]
    ///
    /// A component is compiled once per engine configuration and loaded from here after.
    #[arg(
        long,
        value_name = "DIR",
        env = "TESSERACT_WASM_CACHE_DIR",
        help_heading = "Engine"
    )]
    cache_dir: Option<PathBuf>,

    /// Compile on every load instead of using the precompiled cache
    #[arg(long, help_heading = "Engine")]
    no_cache: bool,

    /// Serve batches by looping the scalar jvp/vjp even when a batched export exists
    ///
    /// For debugging a batched export, and for benchmarks that compare the two routes.
    #[arg(long, help_heading = "Engine")]
    ignore_batched_exports: bool,
}

impl EngineArgs {
    fn engine(&self) -> anyhow::Result<crate::engine::Engine> {
        self.engine_with_pool(crate::engine::POOL_INSTANCES)
    }

    /// The engine, with `instances` slots in its instance pool.
    fn engine_with_pool(&self, instances: u32) -> anyhow::Result<crate::engine::Engine> {
        let mut limits = crate::engine::Limits {
            max_memory_bytes: self.max_memory,
            timeout: self.timeout,
            max_output_bytes: usize::try_from(self.max_guest_output).unwrap_or(usize::MAX),
            max_result_bytes: self.max_result_size,
            ..Default::default()
        };
        if let Some(n) = self.loop_parallelism {
            limits.loop_parallelism = n;
        }
        let cache_dir = if self.no_cache {
            None
        } else {
            self.cache_dir
                .clone()
                .or_else(crate::cache::Cache::default_dir)
        };
        crate::engine::Engine::with_pool(
            crate::engine::EngineOptions { limits, cache_dir },
            instances,
        )
        .context("cannot start the wasm engine")
    }

    fn runtime(
        &self,
        engine: &crate::engine::Engine,
        path: &std::path::Path,
    ) -> anyhow::Result<crate::runtime::Runtime> {
        let component = crate::component::Tesseract::load(engine, path)?;
        let options = crate::runtime::RuntimeOptions {
            ignore_batched_exports: self.ignore_batched_exports,
        };
        Ok(crate::runtime::Runtime::new(component, options))
    }
}

/// Runs the CLI with `args` (including the program name), writing plain text to `stdout` and
/// `stderr`. Returns the process exit code: 0 on success, 1 on failure, 2 on bad usage, 3 when
/// `check` could test nothing.
pub fn run(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    run_styled(args, stdout, stderr, false)
}

/// [`run`], with usage errors in colour when `color` (the binary's stderr is a terminal and
/// `NO_COLOR` is unset).
pub fn run_styled(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    color: bool,
) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = e.exit_code();
            let text = if e.use_stderr() && color {
                e.render().ansi().to_string()
            } else {
                e.render().to_string()
            };
            let sink: &mut dyn Write = if e.use_stderr() { stderr } else { stdout };
            let _ = write!(sink, "{text}");
            return code;
        }
    };
    let result = match cli.command {
        Command::Build(cmd) => cmd.execute(stdout, stderr),
        Command::Check(cmd) => cmd.execute(stdout),
        Command::Inspect(cmd) => cmd.execute(stdout),
        Command::Run(cmd) => cmd.execute(stdout, stderr),
        Command::Serve(cmd) => cmd.execute(stdout),
    };
    match result {
        Ok(code) => code,
        // The reader went away (`inspect | head`): it has what it wanted, as with any Unix
        // filter, so stop quietly.
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let _ = writeln!(stderr, "tesseract-wasm: {e:#}");
            1
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
