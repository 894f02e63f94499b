//! steady-state's LU kernel inside the sandbox: the `lu_kernel` example built as a WASI command
//! and run on a wasmtime engine, printing the guest-measured seconds per factorisation.
//!
//! The time is taken inside the guest, around exactly the call Newton makes, so neither
//! instantiation nor the host's clock enters it. The `lu` and `compute` suites and the `lu`
//! group of `benches/micro.rs` all go through [`WasmKernel`].

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use tesseract_wasm::engine::Limits;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::Command as WasiCommand;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Builds the `lu_kernel` example of steady-state as a WASI command, with the flags
/// `tesseract-wasm build` uses for components (simd128, fat LTO, one codegen unit).
///
/// # Errors
/// When cargo cannot run or the build fails.
pub fn build_kernel(root: &Path) -> anyhow::Result<PathBuf> {
    let target_dir = root.join("target").join("guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            tesseract_wasm_build::TARGET,
            "-p",
            "example-steady-state",
            "--example",
            "lu_kernel",
            "--target-dir",
        ])
        .arg(&target_dir);
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_TARGET_DIR"] {
        cmd.env_remove(var);
    }
    for (k, v) in tesseract_wasm_build::profile_env() {
        cmd.env(k, v);
    }
    cmd.env(
        "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
        tesseract_wasm_build::RUSTFLAGS,
    );
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("building the lu_kernel example failed ({status})");
    }
    Ok(target_dir
        .join(tesseract_wasm_build::TARGET)
        .join("release")
        .join("examples")
        .join("lu_kernel.wasm"))
}

struct CommandState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for CommandState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The kernel command compiled once on one engine; each [`WasmKernel::seconds`] runs it on a
/// fresh instance.
pub struct WasmKernel {
    engine: wasmtime::Engine,
    linker: Linker<CommandState>,
    component: Component,
}

impl WasmKernel {
    /// On an engine configured exactly as the server's (pooling allocator, epoch checks).
    ///
    /// # Errors
    /// When the engine cannot start or `wasm` does not compile.
    pub fn server(wasm: &Path) -> anyhow::Result<WasmKernel> {
        WasmKernel::new(&tesseract_wasm::engine::config(&Limits::default()), wasm)
    }

    /// On an engine built from `config`, for the `lu` diagnostic's relaxed settings.
    ///
    /// # Errors
    /// When the engine cannot start or `wasm` does not compile.
    pub fn new(config: &wasmtime::Config, wasm: &Path) -> anyhow::Result<WasmKernel> {
        let mut config = config.clone();
        if std::env::var_os("TESSERACT_BENCH_PERFMAP").is_some() {
            // Names JIT code for `perf report` (/tmp/perf-<pid>.map).
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = wasmtime::Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let component = Component::from_file(&engine, wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling {}", wasm.display()))?;
        Ok(WasmKernel {
            engine,
            linker,
            component,
        })
    }

    /// Runs `lu_kernel n reps` and returns what it printed: the median seconds of one
    /// factorisation of the n×n Jacobian over `reps`.
    ///
    /// # Errors
    /// When the command traps, fails, or prints something else.
    pub fn seconds(&self, n: usize, reps: usize) -> anyhow::Result<f64> {
        let stdout = MemoryOutputPipe::new(4096);
        let wasi = WasiCtxBuilder::new()
            .args(&["lu_kernel".to_owned(), n.to_string(), reps.to_string()])
            .stdout(stdout.clone())
            .build();
        let mut store = wasmtime::Store::new(
            &self.engine,
            CommandState {
                wasi,
                table: ResourceTable::new(),
            },
        );
        // No ticker runs on this engine, so the deadline is never reached; the checks stay
        // compiled in.
        store.set_epoch_deadline(u64::MAX / 2);
        let command = WasiCommand::instantiate(&mut store, &self.component, &self.linker)?;
        if command.wasi_cli_run().call_run(&mut store)?.is_err() {
            bail!("the lu_kernel command failed");
        }
        drop(store);
        let text = String::from_utf8_lossy(&stdout.contents())
            .trim()
            .to_owned();
        text.parse()
            .with_context(|| format!("lu_kernel printed {text:?}"))
    }
}
