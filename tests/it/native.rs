//! The `.wasm` components compute exactly what the native builds of the same crates compute:
//! both get the identical validated input tree (from the component's own schema), and apply
//! and every derivative must agree bit for bit.

use example_rosenbrock::Rosenbrock;
use example_steady_state::SteadyState;
use example_vectoradd::VectorAdd;
use serde_json::json;
use tesseract_guest::dispatch;
use tesseract_wasm::planner::Route;
use tesseract_wasm::runtime::abstract_of;
use tesseract_wasm_tests::{EXAMPLE_ROSENBROCK, EXAMPLE_STEADY_STATE, EXAMPLE_VECTORADD};

use crate::examples::{fc, source, steady_state_at, u};
use crate::support::*;

#[test]
fn metadata_matches_the_native_schema() {
    assert_eq!(
        load(EXAMPLE_ROSENBROCK).info(),
        &dispatch::metadata::<Rosenbrock>()
    );
    assert_eq!(
        load(EXAMPLE_VECTORADD).info(),
        &dispatch::metadata::<VectorAdd>()
    );
    assert_eq!(
        load(EXAMPLE_STEADY_STATE).info(),
        &dispatch::metadata::<SteadyState>()
    );
}

#[test]
fn rosenbrock_wasm_equals_native_bitwise() {
    let rt = runtime(EXAMPLE_ROSENBROCK);
    let (ins, outs) = (strs(&["x", "y"]), strs(&["result"]));
    for (x, y, a, b) in [
        (0.5, 1.0, 1.0, 100.0),
        (-1.2, 1.0, 1.0, 100.0),
        (0.3, -0.7, 2.5, 10.0),
        (1e-3, 1e8, -1.0, 0.1),
    ] {
        let inputs = tree(rt.component(), json!({ "x": x, "y": y, "a": a, "b": b }));
        let here = format!("({x}, {y}, {a}, {b})");

        let wasm = rt.apply(inputs.clone()).expect("wasm apply");
        assert_eq!(wasm.route, Route::Native);
        assert_trees_bitwise(
            &wasm.value,
            &dispatch::apply::<Rosenbrock>(inputs.clone()).expect("native apply"),
            format!("apply {here}"),
        );

        let wasm = rt
            .jacobian(&inputs, &ins, &outs)
            .expect("wasm jacobian")
            .value;
        let native =
            dispatch::jacobian::<Rosenbrock>(inputs.clone(), &ins, &outs).expect("native jacobian");
        assert_vectors_bitwise(&wasm, &native, format!("jacobian {here}"));

        let t = vectors([("x", s64(0.37)), ("y", s64(-1.3))]);
        let wasm = rt.jvp(&inputs, &ins, &outs, &t).expect("wasm jvp").value;
        let native =
            dispatch::jvp::<Rosenbrock>(inputs.clone(), &ins, &outs, t).expect("native jvp");
        assert_vectors_bitwise(&wasm, &native, format!("jvp {here}"));

        let c = vectors([("result", s64(0.9))]);
        let wasm = rt.vjp(&inputs, &ins, &outs, &c).expect("wasm vjp").value;
        let native =
            dispatch::vjp::<Rosenbrock>(inputs.clone(), &ins, &outs, c).expect("native vjp");
        assert_vectors_bitwise(&wasm, &native, format!("vjp {here}"));

        let shapes = abstract_of(&inputs);
        let wasm = rt.abstract_eval(&shapes).expect("wasm abstract_eval");
        assert_eq!(wasm.route, Route::Native);
        assert_eq!(
            wasm.value,
            dispatch::abstract_eval::<Rosenbrock>(shapes).expect("native abstract_eval")
        );
    }
}

#[test]
fn vectoradd_wasm_equals_native_bitwise() {
    let rt = runtime(EXAMPLE_VECTORADD);
    let (ins, outs) = (strs(&["a", "b", "s"]), strs(&["result"]));
    for normalize in [false, true] {
        for (a, b, s) in [
            (vec![0.1, 0.2, 0.3], vec![0.7, -1.3, 2.9], 3.0),
            (wave(17, 0.3, 0.1), wave(17, 1.9, -0.5), -0.37),
        ] {
            let inputs = tree(
                rt.component(),
                json!({ "a": a, "b": b, "s": s, "normalize": normalize }),
            );
            let here = format!("normalize={normalize}, n={}", a.len());
            let wasm = rt.apply(inputs.clone()).expect("wasm apply").value;
            assert_trees_bitwise(
                &wasm,
                &dispatch::apply::<VectorAdd>(inputs.clone()).expect("native apply"),
                format!("apply {here}"),
            );
            let wasm = rt
                .jacobian(&inputs, &ins, &outs)
                .expect("wasm jacobian")
                .value;
            let native = dispatch::jacobian::<VectorAdd>(inputs.clone(), &ins, &outs)
                .expect("native jacobian");
            assert_vectors_bitwise(&wasm, &native, format!("jacobian {here}"));
        }
    }
}

/// steady-state's wasm and native builds agree to rounding, not bitwise: `tanh`/`sin` come
/// from glibc natively and from wasi-libc in wasm, and faer picks AVX2/FMA kernels natively but
/// simd128 ones in wasm, which round differently. Relative to each result's ∞-norm the two
/// differ by a few ulps; 1e-13 leaves room for n = 64 without hiding a real difference.
const STEADY_TOL: f64 = 1e-13;

#[test]
fn steady_state_wasm_equals_native_to_rounding() {
    let rt = runtime(EXAMPLE_STEADY_STATE);
    let (ins, outs) = (fc(), u());
    for (n, c) in [(1, 0.3), (7, 0.8), (64, -0.9)] {
        let inputs = steady_state_at(&rt, &source(n), c, 1e-12);
        let here = format!("n={n}, c={c}");

        let wasm = rt.apply(inputs.clone()).expect("wasm apply").value;
        assert_trees_rel(
            &wasm,
            &dispatch::apply::<SteadyState>(inputs.clone()).expect("native apply"),
            STEADY_TOL,
            format!("apply {here}"),
        );

        let wasm = rt
            .jacobian(&inputs, &ins, &outs)
            .expect("wasm jacobian")
            .value;
        let native = dispatch::jacobian::<SteadyState>(inputs.clone(), &ins, &outs)
            .expect("native jacobian");
        assert_vectors_rel(&wasm, &native, STEADY_TOL, format!("jacobian {here}"));

        let t = vectors([("f", t64(&[n], wave(n, 0.9, 0.1))), ("coupling", s64(0.77))]);
        let wasm = rt.jvp(&inputs, &ins, &outs, &t).expect("wasm jvp").value;
        let native =
            dispatch::jvp::<SteadyState>(inputs.clone(), &ins, &outs, t).expect("native jvp");
        assert_vectors_rel(&wasm, &native, STEADY_TOL, format!("jvp {here}"));

        let cot = vectors([("u", t64(&[n], wave(n, 1.7, 1.4)))]);
        let wasm = rt.vjp(&inputs, &ins, &outs, &cot).expect("wasm vjp").value;
        let native =
            dispatch::vjp::<SteadyState>(inputs.clone(), &ins, &outs, cot).expect("native vjp");
        assert_vectors_rel(&wasm, &native, STEADY_TOL, format!("vjp {here}"));

        let k = 3;
        let tangents = vectors([
            ("f", t64(&[k, n], wave(k * n, 0.37, 0.0))),
            ("coupling", t64(&[k], vec![0.5, 0.0, -0.25])),
        ]);
        let wasm = rt
            .batched_jvp(&inputs, &ins, &outs, &tangents, k)
            .expect("wasm batched jvp");
        assert_eq!(wasm.route, Route::Native);
        let native = dispatch::batched_jvp::<SteadyState>(inputs.clone(), &ins, &outs, tangents, k)
            .expect("native batched jvp");
        assert_vectors_rel(
            &wasm.value,
            &native,
            STEADY_TOL,
            format!("batched jvp {here}"),
        );

        let cotangents = vectors([("u", t64(&[k, n], wave(k * n, 0.53, 1.0)))]);
        let wasm = rt
            .batched_vjp(&inputs, &ins, &outs, &cotangents, k)
            .expect("wasm batched vjp");
        assert_eq!(wasm.route, Route::Native);
        let native =
            dispatch::batched_vjp::<SteadyState>(inputs.clone(), &ins, &outs, cotangents, k)
                .expect("native batched vjp");
        assert_vectors_rel(
            &wasm.value,
            &native,
            STEADY_TOL,
            format!("batched vjp {here}"),
        );

        let shapes = abstract_of(&inputs);
        let wasm = rt.abstract_eval(&shapes).expect("wasm abstract_eval").value;
        assert_eq!(
            wasm,
            dispatch::abstract_eval::<SteadyState>(shapes).expect("native abstract_eval"),
            "abstract_eval {here}"
        );
    }
}
