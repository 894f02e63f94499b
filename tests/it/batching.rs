//! A batch of K (co)tangents equals K single calls, on both batch routes: rosenbrock loops its
//! scalar jvp/vjp over fresh instances (`Route::Looped`), steady-state has batched exports
//! (`Route::Native`), and forcing steady-state onto the loop agrees with its batched export.

use tesseract_model::{Tree, Vectors};
use tesseract_wasm::planner::Route;
use tesseract_wasm::runtime::Runtime;
use tesseract_wasm_tests::{EXAMPLE_ROSENBROCK, EXAMPLE_STEADY_STATE};

use crate::examples::{fc, source, steady_state_at, u};
use crate::support::*;

/// Asserts a batched result equals the K single results, row by row.
fn assert_rows_match(batched: &Vectors, singles: &[Vectors], tol: f64, what: &str) {
    assert_eq!(
        batched.keys().collect::<Vec<_>>(),
        singles[0].keys().collect::<Vec<_>>(),
        "{what}: keys"
    );
    for (p, t) in batched {
        assert_eq!(
            t.shape()[0],
            singles.len(),
            "{what}: `{p}` has a leading axis of K"
        );
        for (k, single) in singles.iter().enumerate() {
            assert_tensor_rel(
                &row(t, k),
                &single[p],
                tol,
                format!("{what}: `{p}` row {k}"),
            );
        }
    }
}

/// K stacked tangents and K stacked cotangents.
struct Batch {
    tangents: Vectors,
    cotangents: Vectors,
    k: usize,
}

/// Batched jvp and vjp against K single calls; returns the batched results.
fn check_batch_equals_singles(
    rt: &Runtime,
    inputs: &Tree,
    (ins, outs): (&[String], &[String]),
    batch: &Batch,
    route: Route,
) -> (Vectors, Vectors) {
    let Batch {
        tangents,
        cotangents,
        k,
    } = batch;
    let k = *k;
    let jvp = rt
        .batched_jvp(inputs, ins, outs, tangents, k)
        .expect("batched jvp");
    assert_eq!(jvp.route, route, "batched jvp route");
    let singles: Vec<Vectors> = unstack(tangents, k)
        .iter()
        .map(|t| rt.jvp(inputs, ins, outs, t).expect("single jvp").value)
        .collect();
    assert_rows_match(&jvp.value, &singles, 1e-12, "batched jvp");

    let vjp = rt
        .batched_vjp(inputs, ins, outs, cotangents, k)
        .expect("batched vjp");
    assert_eq!(vjp.route, route, "batched vjp route");
    let singles: Vec<Vectors> = unstack(cotangents, k)
        .iter()
        .map(|c| rt.vjp(inputs, ins, outs, c).expect("single vjp").value)
        .collect();
    assert_rows_match(&vjp.value, &singles, 1e-12, "batched vjp");
    (jvp.value, vjp.value)
}

#[test]
fn rosenbrock_batches_loop_and_equal_single_calls() {
    let rt = runtime(EXAMPLE_ROSENBROCK);
    let inputs = tree(rt.component(), serde_json::json!({ "x": -1.2, "y": 1.0 }));
    let k = 7;
    let batch = Batch {
        tangents: vectors([
            ("x", t64(&[k], wave(k, 0.8, 0.2))),
            ("y", t64(&[k], wave(k, 1.3, -0.9))),
        ]),
        cotangents: vectors([("result", t64(&[k], wave(k, 2.1, 0.5)))]),
        k,
    };
    let paths = (&strs(&["x", "y"])[..], &strs(&["result"])[..]);
    check_batch_equals_singles(&rt, &inputs, paths, &batch, Route::Looped);
}

fn steady_state_batch(n: usize, k: usize) -> Batch {
    Batch {
        tangents: vectors([
            ("f", t64(&[k, n], wave(k * n, 0.37, 0.0))),
            ("coupling", t64(&[k], wave(k, 0.9, 0.3))),
        ]),
        cotangents: vectors([("u", t64(&[k, n], wave(k * n, 0.53, 1.0)))]),
        k,
    }
}

#[test]
fn steady_state_batches_use_the_batched_exports_and_equal_single_calls() {
    let rt = runtime(EXAMPLE_STEADY_STATE);
    let n = 9;
    let inputs = steady_state_at(&rt, &source(n), 0.6, 1e-12);
    let batch = steady_state_batch(n, 5);
    check_batch_equals_singles(&rt, &inputs, (&fc(), &u()), &batch, Route::Native);
}

#[test]
fn steady_state_forced_loop_agrees_with_its_batched_exports() {
    let native = runtime(EXAMPLE_STEADY_STATE);
    let looping = looping_runtime(EXAMPLE_STEADY_STATE);
    let n = 12;
    let inputs = steady_state_at(&native, &source(n), -0.8, 1e-12);
    let batch = steady_state_batch(n, 6);

    let (jvp_looped, vjp_looped) =
        check_batch_equals_singles(&looping, &inputs, (&fc(), &u()), &batch, Route::Looped);
    let jvp_native = native
        .batched_jvp(&inputs, &fc(), &u(), &batch.tangents, batch.k)
        .expect("batched jvp");
    let vjp_native = native
        .batched_vjp(&inputs, &fc(), &u(), &batch.cotangents, batch.k)
        .expect("batched vjp");
    assert_eq!(
        (jvp_native.route, vjp_native.route),
        (Route::Native, Route::Native)
    );
    for (p, t) in &jvp_native.value {
        assert_tensor_rel(
            &jvp_looped[p],
            t,
            1e-12,
            format!("jvp `{p}`: looped vs batched export"),
        );
    }
    for (p, t) in &vjp_native.value {
        assert_tensor_rel(
            &vjp_looped[p],
            t,
            1e-12,
            format!("vjp `{p}`: looped vs batched export"),
        );
    }
}
