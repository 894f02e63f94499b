//! Benchmark 5, wasm vs native compute: steady-state apply in-process (no HTTP), and the LU
//! kernel inside it timed in the guest, natively and in wasm, in GFLOP/s.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use example_steady_state::SteadyState;
use serde_json::json;
use tesseract_guest::dispatch;
use tesseract_wasm::component::Tesseract;
use tesseract_wasm::engine::{Engine, EngineOptions, Limits};
use tesseract_wasm::runtime::{Runtime, RuntimeOptions};
use tesseract_wasm_bench::lu::{WasmKernel, build_kernel};

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

    let kernel = WasmKernel::server(&build_kernel(root)?)?;
    let mut lu = [Vec::new(), Vec::new()];
    for _ in 0..3 {
        lu[0].push(kernel.seconds(n, plan.lu_reps)?);
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
    let kernel = build_kernel(&root)?;
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
        WasmKernel::new(&tesseract_wasm::engine::config(&limits), &kernel)?.seconds(n, reps)?,
    );
    if server_only {
        return Ok(());
    }
    let mut no_epoch = tesseract_wasm::engine::config(&limits);
    no_epoch.epoch_interruption(false);
    report(
        "wasm, server config without epoch checks",
        WasmKernel::new(&no_epoch, &kernel)?.seconds(n, reps)?,
    );
    let mut plain = wasmtime::Config::new();
    plain.epoch_interruption(true);
    report(
        "wasm, on-demand allocator, epochs",
        WasmKernel::new(&plain, &kernel)?.seconds(n, reps)?,
    );
    plain.epoch_interruption(false);
    report(
        "wasm, wasmtime defaults",
        WasmKernel::new(&plain, &kernel)?.seconds(n, reps)?,
    );
    Ok(())
}
