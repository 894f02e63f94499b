//! `tesseract-wasm-bench`: the numbers behind the core claims, measured in one run.
//!
//! `cargo run --release -p tesseract-wasm-bench -- core` builds the example components,
//! then times, in interleaved rounds (these machines are noisy, so only ratios within one run
//! mean anything):
//!
//! - steady-state n×K jvp/vjp: the batched export vs the looped fallback vs the native build
//!   of the same crate, through the same batched API;
//! - one apply in wasm vs native (steady-state n, and rosenbrock's tiny one);
//! - instantiating a fresh instance, which every call pays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use example_rosenbrock::Rosenbrock;
use example_steady_state::SteadyState;
use tesseract_guest::dispatch;
use tesseract_model::{Tree, Vectors};
use tesseract_wasm::component::Tesseract;
use tesseract_wasm::engine::{Engine, EngineOptions};
use tesseract_wasm::runtime::{Runtime, RuntimeOptions};

/// Measure tesseract-wasm against the native build of the same guest crates
#[derive(Debug, Parser)]
enum Cli {
    /// Batched vs looped vs native (steady-state), wasm vs native apply, instantiation
    Core {
        /// Length of steady-state's vector
        #[arg(long, default_value_t = 256)]
        n: usize,
        /// Number of (co)tangents in one batch
        #[arg(long, default_value_t = 64)]
        k: usize,
        /// Interleaved rounds; each contender's median over them is reported
        #[arg(long, default_value_t = 9)]
        rounds: usize,
    },
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn build_examples(root: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let artifacts = tesseract_wasm_build::Build::new(root)?
        .packages(["example-steady-state", "example-rosenbrock"])
        .target_dir(root.join("target").join("guests"))
        .run()?;
    let find = |name: &str| {
        artifacts
            .iter()
            .find(|a| a.package == name)
            .map(|a| a.path.clone())
            .with_context(|| format!("{name} was not built"))
    };
    Ok((find("example-steady-state")?, find("example-rosenbrock")?))
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Runs each contender once per round, in turn, and returns each one's median.
fn interleaved(
    rounds: usize,
    contenders: &mut [(&str, &mut dyn FnMut() -> anyhow::Result<()>)],
) -> anyhow::Result<Vec<Duration>> {
    for (name, f) in contenders.iter_mut() {
        f().with_context(|| format!("warm-up of {name}"))?;
    }
    let mut times = vec![Vec::with_capacity(rounds); contenders.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in contenders.iter_mut().enumerate() {
            let t = Instant::now();
            f()?;
            times[i].push(t.elapsed());
        }
    }
    Ok(times.into_iter().map(median).collect())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn steady_inputs(component: &Tesseract, n: usize) -> anyhow::Result<Tree> {
    let f: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() * 2.0).collect();
    let body = serde_json::json!({ "f": f, "coupling": 0.5 });
    tesseract_wasm::schema::validate_inputs(component.info(), &body, &Default::default(), &[])
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn tangents(n: usize, k: usize, for_vjp: bool) -> anyhow::Result<Vectors> {
    let dense: Vec<f64> = (0..k * n)
        .map(|i| ((i * 7919 % 1000) as f64 / 500.0) - 1.0)
        .collect();
    let main = tesseract_model::Tensor::new(vec![k, n], tesseract_model::Data::Float64(dense))?;
    let key = if for_vjp { "u" } else { "f" };
    let mut v = Vectors::from([(key.to_owned(), main)]);
    if !for_vjp {
        let c: Vec<f64> = (0..k).map(|i| (i as f64 * 0.5).cos()).collect();
        v.insert(
            "coupling".to_owned(),
            tesseract_model::Tensor::new(vec![k], tesseract_model::Data::Float64(c))?,
        );
    }
    Ok(v)
}

fn max_rel_diff(a: &Vectors, b: &Vectors) -> f64 {
    let mut worst: f64 = 0.0;
    for (k, ta) in a {
        let Some(tb) = b.get(k) else {
            return f64::INFINITY;
        };
        for (x, y) in ta.data().to_f64().iter().zip(tb.data().to_f64()) {
            worst = worst.max((x - y).abs() / x.abs().max(y.abs()).max(1e-300));
        }
    }
    worst
}

fn core(n: usize, k: usize, rounds: usize) -> anyhow::Result<()> {
    let root = workspace_root();
    let (steady_wasm, rosen_wasm) = build_examples(&root)?;
    let engine = Engine::new(EngineOptions {
        cache_dir: Some(root.join("target").join("bench-cache")),
        ..Default::default()
    })?;
    let steady = Tesseract::load(&engine, &steady_wasm)?;
    let rosen = Tesseract::load(&engine, &rosen_wasm)?;
    let batched = Runtime::new(Arc::clone(&steady), RuntimeOptions::default());
    let looped = Runtime::new(
        Arc::clone(&steady),
        RuntimeOptions {
            ignore_batched_exports: true,
        },
    );

    let tree = steady_inputs(&steady, n)?;
    let both = ["f".to_owned(), "coupling".to_owned()];
    let u = ["u".to_owned()];
    let t = tangents(n, k, false)?;
    let c = tangents(n, k, true)?;

    println!(
        "tesseract-wasm core benchmark: steady-state n = {n}, K = {k}, {rounds} interleaved rounds, medians"
    );
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );

    // Agreement first: a fast wrong answer is worth nothing.
    let native_jvp = dispatch::batched_jvp::<SteadyState>(tree.clone(), &both, &u, t.clone(), k)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let wasm_jvp = batched.batched_jvp(&tree, &both, &u, &t, k)?.value;
    let looped_jvp = looped.batched_jvp(&tree, &both, &u, &t, k)?.value;
    println!(
        "agreement (max relative difference): batched export vs native {:.1e}, looped vs batched {:.1e}",
        max_rel_diff(&wasm_jvp, &native_jvp),
        max_rel_diff(&looped_jvp, &wasm_jvp)
    );

    for (what, vjp) in [("jvp", false), ("vjp", true)] {
        let dirs = if vjp { &c } else { &t };
        let call = |rt: &Runtime| -> anyhow::Result<()> {
            if vjp {
                rt.batched_vjp(&tree, &both, &u, dirs, k)?;
            } else {
                rt.batched_jvp(&tree, &both, &u, dirs, k)?;
            }
            Ok(())
        };
        let native = || -> anyhow::Result<()> {
            let r = if vjp {
                dispatch::batched_vjp::<SteadyState>(tree.clone(), &both, &u, dirs.clone(), k)
            } else {
                dispatch::batched_jvp::<SteadyState>(tree.clone(), &both, &u, dirs.clone(), k)
            };
            r.map(drop).map_err(|e| anyhow::anyhow!("{e}"))
        };
        let (mut a, mut b, mut nat) = (|| call(&batched), || call(&looped), native);
        let m = interleaved(
            rounds,
            &mut [
                ("batched export", &mut a),
                ("looped", &mut b),
                ("native", &mut nat),
            ],
        )?;
        println!("\n{what}, n = {n}, K = {k}");
        println!("  (d) wasm, batched export   {:>9.3} ms", ms(m[0]));
        println!("  (c) wasm, looped fallback  {:>9.3} ms", ms(m[1]));
        println!("  (e) native, batched API    {:>9.3} ms", ms(m[2]));
        println!(
            "  looped / batched export = {:.1}x   batched export / native = {:.2}x",
            ms(m[1]) / ms(m[0]),
            ms(m[0]) / ms(m[2])
        );
    }

    let mut wasm_apply = || batched.apply(&tree).map(drop).map_err(anyhow::Error::from);
    let mut native_apply = || {
        dispatch::apply::<SteadyState>(tree.clone())
            .map(drop)
            .map_err(|e| anyhow::anyhow!("{e}"))
    };
    let m = interleaved(
        rounds,
        &mut [
            ("wasm apply", &mut wasm_apply),
            ("native apply", &mut native_apply),
        ],
    )?;
    println!(
        "\napply, steady-state n = {n}: wasm {:.3} ms, native {:.3} ms, wasm / native = {:.2}x",
        ms(m[0]),
        ms(m[1]),
        ms(m[0]) / ms(m[1])
    );

    let rosen_rt = Runtime::new(Arc::clone(&rosen), RuntimeOptions::default());
    let rosen_tree = tesseract_wasm::schema::validate_inputs(
        rosen.info(),
        &serde_json::json!({"x": 0.5, "y": 1.0}),
        &Default::default(),
        &[],
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    const CALLS: u32 = 1000;
    let mut wasm_small = || -> anyhow::Result<()> {
        for _ in 0..CALLS {
            rosen_rt.apply(&rosen_tree)?;
        }
        Ok(())
    };
    let mut native_small = || -> anyhow::Result<()> {
        for _ in 0..CALLS {
            dispatch::apply::<Rosenbrock>(rosen_tree.clone())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    };
    let mut instantiate = || -> anyhow::Result<()> {
        for _ in 0..CALLS {
            rosen.instantiate()?;
        }
        Ok(())
    };
    let m = interleaved(
        rounds,
        &mut [
            ("wasm small apply", &mut wasm_small),
            ("native small apply", &mut native_small),
            ("instantiate", &mut instantiate),
        ],
    )?;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(CALLS);
    println!(
        "\nrosenbrock apply (tiny): wasm {:.1} µs per call (fresh instance each), native {:.2} µs per call",
        per(m[0]),
        per(m[1])
    );
    println!(
        "instantiation alone (fresh store + instance, rosenbrock): {:.1} µs per call",
        per(m[2])
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Core { n, k, rounds } => core(n, k, rounds),
    }
}
