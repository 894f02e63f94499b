//! The `tesseract-wasm` binary: logging setup and exit code around [`tesseract_wasm::cli::run`].

use std::io::IsTerminal;
use std::process::ExitCode;

// glibc maps every block above its mmap threshold anew, so each large request paid page
// faults on fresh multi-megabyte buffers; mimalloc keeps freed pages for reuse.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // https://no-color.org: set and not empty.
    let color = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERACT_WASM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .init();
    if let Err(e) = tesseract_wasm::alloc_trim::spawn_purger() {
        tracing::warn!("idle memory will not be returned to the OS: {e}");
    }
    let code = tesseract_wasm::cli::run_styled(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        color,
    );
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
