//! `core`: the in-process numbers (no HTTP): batched export vs looped fallback vs the native
//! build of steady-state, one apply in wasm vs native (steady-state n, and rosenbrock's tiny
//! one), and the cost of instantiating a fresh instance, which every call pays.

use std::sync::Arc;
use std::time::Duration;

use example_rosenbrock::Rosenbrock;
use example_steady_state::SteadyState;
use tesseract_guest::dispatch;
use tesseract_model::{Tree, Vectors};
use tesseract_wasm::component::Tesseract;
use tesseract_wasm::engine::{Engine, EngineOptions};
use tesseract_wasm::runtime::{Runtime, RuntimeOptions};

use crate::setup::{build_components, workspace_root};
use crate::stats::{interleaved, ms};
use crate::suites::MIN_SAMPLE;

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

/// # Errors
/// When building or loading the components fails, or a call fails.
pub fn run(n: usize, k: usize, rounds: usize) -> anyhow::Result<()> {
    let root = workspace_root();
    let components = build_components(&root)?;
    let (steady_wasm, rosen_wasm) = (components.steady_state, components.rosenbrock);
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
        "tesseract-wasm core benchmark: steady-state n = {n}, K = {k}, {rounds} interleaved rounds of samples lasting at least {} ms, medians",
        MIN_SAMPLE.as_millis()
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
            MIN_SAMPLE,
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

    let mut wasm_apply = || {
        batched
            .apply(tree.clone())
            .map(drop)
            .map_err(anyhow::Error::from)
    };
    let mut native_apply = || {
        dispatch::apply::<SteadyState>(tree.clone())
            .map(drop)
            .map_err(|e| anyhow::anyhow!("{e}"))
    };
    let m = interleaved(
        rounds,
        MIN_SAMPLE,
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
            rosen_rt.apply(rosen_tree.clone())?;
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
        MIN_SAMPLE,
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
