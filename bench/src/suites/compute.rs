//! Benchmark 5, wasm vs native compute: steady-state apply in-process (no HTTP), and the LU
//! kernel inside it timed in the guest, natively and in wasm, in GFLOP/s.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use example_steady_state::SteadyState;
use serde_json::json;
use tesseract_guest::dispatch;
use tesseract_wasm::component::Tesseract;
use tesseract_wasm::engine::{Engine, EngineOptions, Limits};
use tesseract_wasm::runtime::{Runtime, RuntimeOptions};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::Command as WasiCommand;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::stats::{Contender, interleaved, ms};
use crate::suites::Plan;

#[derive(Debug, Clone)]
pub struct Compute {
    pub n: usize,
    /// steady-state apply: wasm (fresh instance, as served) and native.
    pub apply: [Duration; 2],
    /// LU of the n×n Jacobian, seconds per factorisation: wasm and native (same crate).
    pub lu: [f64; 2],
}

impl Compute {
    pub fn gflops(&self, i: usize) -> f64 {
        let n = self.n as f64;
        2.0 * n * n * n / 3.0 / self.lu[i] / 1e9
    }
}

/// Builds the `lu_kernel` example of steady-state as a WASI command, with the flags
/// `tesseract-wasm build` uses for components.
pub fn build_lu_kernel(root: &Path) -> anyhow::Result<PathBuf> {
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

/// Runs the kernel command on an engine configured exactly as the server's (epoch checks
/// included) and returns what it printed: seconds per factorisation.
fn lu_in_wasm(wasm: &Path, n: usize, reps: usize) -> anyhow::Result<f64> {
    lu_in_wasm_with(
        &tesseract_wasm::engine::config(&Limits::default()),
        wasm,
        n,
        reps,
    )
}

/// [`lu_in_wasm`] on an engine built from `config`, for the `lu` diagnostic.
pub fn lu_in_wasm_with(
    config: &wasmtime::Config,
    wasm: &Path,
    n: usize,
    reps: usize,
) -> anyhow::Result<f64> {
    let mut config = config.clone();
    if std::env::var_os("TESSERACT_BENCH_PERFMAP").is_some() {
        // Names JIT code for `perf report` (/tmp/perf-<pid>.map).
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine = wasmtime::Engine::new(&config)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let component = Component::from_file(&engine, wasm)?;
    let stdout = MemoryOutputPipe::new(4096);
    let wasi = WasiCtxBuilder::new()
        .args(&["lu_kernel".to_owned(), n.to_string(), reps.to_string()])
        .stdout(stdout.clone())
        .build();
    let mut store = wasmtime::Store::new(
        &engine,
        CommandState {
            wasi,
            table: ResourceTable::new(),
        },
    );
    // No ticker runs on this engine, so the deadline is never reached; the checks stay compiled in.
    store.set_epoch_deadline(u64::MAX / 2);
    let command = WasiCommand::instantiate(&mut store, &component, &linker)?;
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

/// # Errors
/// When the component or the kernel command fails to build or run.
pub fn run(
    root: &Path,
    steady_wasm: &Path,
    cache_dir: &Path,
    plan: &Plan,
) -> anyhow::Result<Compute> {
    let n = plan.compute_n;
    let engine = Engine::new(EngineOptions {
        cache_dir: Some(cache_dir.to_path_buf()),
        ..Default::default()
    })?;
    let steady = Tesseract::load(&engine, steady_wasm)?;
    let runtime = Runtime::new(Arc::clone(&steady), RuntimeOptions::default());
    let tree = tesseract_wasm::schema::validate_inputs(
        steady.info(),
        &json!({"f": crate::wire::steady_f(n), "coupling": 0.5}),
        &Default::default(),
        &[],
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut wasm_apply = || {
        runtime
            .apply(tree.clone())
            .map(drop)
            .map_err(anyhow::Error::from)
    };
    let mut native_apply = || {
        dispatch::apply::<SteadyState>(tree.clone())
            .map(drop)
            .map_err(|e| anyhow::anyhow!("{e}"))
    };
    let mut contenders: [Contender<'_>; 2] = [
        ("wasm apply", &mut wasm_apply),
        ("native apply", &mut native_apply),
    ];
    let m = interleaved(plan.rounds, plan.min_sample, &mut contenders)?;

    let kernel = build_lu_kernel(root)?;
    let mut lu = [Vec::new(), Vec::new()];
    for _ in 0..3 {
        lu[0].push(lu_in_wasm(&kernel, n, plan.lu_reps)?);
        lu[1].push(example_steady_state::lu_kernel_seconds(n, plan.lu_reps));
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let out = Compute {
        n,
        apply: [m[0], m[1]],
        lu: [med(&mut lu[0]), med(&mut lu[1])],
    };
    println!(
        "  steady-state apply n={n}: wasm {:.3} ms, native {:.3} ms; LU: wasm {:.1} GFLOP/s, native {:.1} GFLOP/s",
        ms(out.apply[0]),
        ms(out.apply[1]),
        out.gflops(0),
        out.gflops(1)
    );
    Ok(out)
}

/// Prints the LU kernel's speed natively and in wasm under the server's engine settings and
/// with each of them relaxed in turn, so the cost of each sandbox feature is visible.
///
/// # Errors
/// When the kernel fails to build or run.
pub fn lu_settings(n: usize, reps: usize, server_only: bool) -> anyhow::Result<()> {
    let root = crate::setup::workspace_root();
    let kernel = build_lu_kernel(&root)?;
    let flops = 2.0 * (n as f64).powi(3) / 3.0;
    let report = |what: &str, secs: f64| {
        println!(
            "  {what:<58} {:>8.3} ms {:>6.1} GFLOP/s",
            secs * 1e3,
            flops / secs / 1e9
        );
    };
    println!("LU of steady-state's n={n} Jacobian, median of {reps}:");
    report(
        "native (same crate)",
        example_steady_state::lu_kernel_seconds(n, reps),
    );
    let limits = Limits::default();
    report(
        "wasm, server config (pooling, epochs)",
        lu_in_wasm_with(&tesseract_wasm::engine::config(&limits), &kernel, n, reps)?,
    );
    if server_only {
        return Ok(());
    }
    let mut no_epoch = tesseract_wasm::engine::config(&limits);
    no_epoch.epoch_interruption(false);
    report(
        "wasm, server config without epoch checks",
        lu_in_wasm_with(&no_epoch, &kernel, n, reps)?,
    );
    let mut plain = wasmtime::Config::new();
    plain.epoch_interruption(true);
    report(
        "wasm, on-demand allocator, epochs",
        lu_in_wasm_with(&plain, &kernel, n, reps)?,
    );
    plain.epoch_interruption(false);
    report(
        "wasm, wasmtime defaults",
        lu_in_wasm_with(&plain, &kernel, n, reps)?,
    );
    Ok(())
}
