//! The three examples' maths, through their `.wasm` components: known values, jvp and vjp
//! against central finite differences, the dot-product test, and jacobian against stacked jvps.

use serde_json::json;
use tesseract_model::{Plain, Tree};
use tesseract_wasm::planner::Route;
use tesseract_wasm::runtime::Runtime;
use tesseract_wasm_tests::{EXAMPLE_ROSENBROCK, EXAMPLE_STEADY_STATE, EXAMPLE_VECTORADD};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// rosenbrock: (a − x)² + b·(y − x²)², exports jacobian, jvp, vjp, abstract_eval
// ---------------------------------------------------------------------------------------------

const ROSENBROCK_POINTS: [(f64, f64); 4] = [(0.5, 1.0), (-1.2, 1.0), (1.0, 1.0), (2.0, -0.3)];

fn rosenbrock_at(rt: &Runtime, x: f64, y: f64) -> Tree {
    tree(rt.component(), json!({ "x": x, "y": y }))
}

fn xy() -> Vec<String> {
    strs(&["x", "y"])
}

fn result() -> Vec<String> {
    strs(&["result"])
}

#[test]
fn rosenbrock_known_values() {
    let rt = runtime(EXAMPLE_ROSENBROCK);
    let inputs = rosenbrock_at(&rt, 0.5, 1.0);
    let applied = rt.apply(inputs.clone()).expect("apply");
    assert_eq!(applied.route, Route::Native);
    assert_eq!(scalar_of(array(&applied.value, "result")), 56.5);
    assert_eq!(
        scalar_of(array(
            &rt.apply(rosenbrock_at(&rt, 1.0, 1.0)).expect("apply").value,
            "result"
        )),
        0.0
    );

    let jac = rt.jacobian(&inputs, &xy(), &result()).expect("jacobian");
    assert_eq!(jac.route, Route::Native);
    assert_eq!(scalar_of(block(&jac.value, "result", "x")), -151.0);
    assert_eq!(scalar_of(block(&jac.value, "result", "y")), 150.0);

    let grad = rt
        .vjp(&inputs, &xy(), &result(), &vectors([("result", s64(1.0))]))
        .expect("vjp");
    assert_eq!(grad.route, Route::Native);
    assert_eq!(
        (scalar_of(&grad.value["x"]), scalar_of(&grad.value["y"])),
        (-151.0, 150.0)
    );
    let dx = rt
        .jvp(
            &inputs,
            &xy(),
            &result(),
            &vectors([("x", s64(1.0)), ("y", s64(0.0))]),
        )
        .expect("jvp");
    assert_eq!(dx.route, Route::Native);
    assert_eq!(scalar_of(&dx.value["result"]), -151.0);
}

#[test]
fn rosenbrock_jvp_and_vjp_match_central_differences() {
    let rt = runtime(EXAMPLE_ROSENBROCK);
    let h = 1e-6;
    for (x, y) in ROSENBROCK_POINTS {
        let inputs = rosenbrock_at(&rt, x, y);
        for (tx, ty) in [(1.0, 0.0), (0.0, 1.0), (0.3, -0.7)] {
            let t = vectors([("x", s64(tx)), ("y", s64(ty))]);
            let got =
                scalar_of(&rt.jvp(&inputs, &xy(), &result(), &t).expect("jvp").value["result"]);
            let fd = scalar_of(&fd_jvp(&rt, &inputs, &result(), &t, h)["result"]);
            assert!(
                (got - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
                "jvp at ({x}, {y}) along ({tx}, {ty}): {got} vs {fd}"
            );
        }
        let c = vectors([("result", s64(2.0))]);
        let got = rt.vjp(&inputs, &xy(), &result(), &c).expect("vjp").value;
        let fd = fd_vjp(&rt, &inputs, &xy(), &c, h);
        for p in ["x", "y"] {
            let (g, f) = (scalar_of(&got[p]), scalar_of(&fd[p]));
            assert!(
                (g - f).abs() <= 1e-6 * (1.0 + f.abs()),
                "vjp[{p}] at ({x}, {y}): {g} vs {f}"
            );
        }
    }
}

#[test]
fn rosenbrock_passes_the_dot_product_test() {
    let rt = runtime(EXAMPLE_ROSENBROCK);
    for (x, y) in ROSENBROCK_POINTS {
        let inputs = rosenbrock_at(&rt, x, y);
        let t = vectors([("x", s64(0.37)), ("y", s64(-1.3))]);
        let c = vectors([("result", s64(0.9))]);
        let (lhs, rhs) = dot_product_sides(&rt, &inputs, &xy(), &result(), &t, &c);
        assert!(
            rel_diff(lhs, rhs) <= 1e-10,
            "at ({x}, {y}): ⟨c, J·t⟩ = {lhs}, ⟨Jᵀ·c, t⟩ = {rhs}"
        );
    }
}

#[test]
fn rosenbrock_jacobian_matches_stacked_jvps() {
    let rt = runtime(EXAMPLE_ROSENBROCK);
    for (x, y) in ROSENBROCK_POINTS {
        let inputs = rosenbrock_at(&rt, x, y);
        let jac = rt
            .jacobian(&inputs, &xy(), &result())
            .expect("jacobian")
            .value;
        let stacked = jacobian_from_jvps(&rt, &inputs, &xy(), &result());
        for p in ["x", "y"] {
            assert_tensor_rel(
                block(&jac, "result", p),
                block(&stacked, "result", p),
                1e-15,
                format!("∂result/∂{p} at ({x}, {y})"),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// vectoradd: s·a + b in float32, optionally normalised; exports only jacobian
// ---------------------------------------------------------------------------------------------

fn vectoradd_at(rt: &Runtime, a: &[f32], b: &[f32], s: f32, normalize: bool) -> Tree {
    tree(
        rt.component(),
        json!({ "a": a, "b": b, "s": s, "normalize": normalize }),
    )
}

fn abs_() -> Vec<String> {
    strs(&["a", "b", "s"])
}

fn vectoradd_result(rt: &Runtime, inputs: Tree) -> Vec<f64> {
    let out = rt.apply(inputs.clone()).expect("apply").value;
    let t = array(&out, "result");
    assert_eq!(t.dtype(), tesseract_model::DType::Float64);
    f64s(t)
}

#[test]
fn vectoradd_known_values() {
    let rt = runtime(EXAMPLE_VECTORADD);
    let a = [1.0, 2.0, 3.0];
    let b = [4.0, 5.0, 6.0];
    let defaulted = tree(rt.component(), json!({ "a": a, "b": b }));
    assert_eq!(vectoradd_result(&rt, defaulted), [5.0, 7.0, 9.0]);
    assert_eq!(
        vectoradd_result(&rt, vectoradd_at(&rt, &a, &b, 2.0, false)),
        [6.0, 9.0, 12.0]
    );
}

/// (inputs, finite-difference step, tolerance): with small dyadic values and no normalisation
/// the float32 maths and the differences are exact; normalised, float32 rounding of apply
/// limits finite differences to about 1e-5.
fn vectoradd_cases(rt: &Runtime) -> [(Tree, f64, f64); 2] {
    let (a, b) = ([0.5, -1.25, 2.0, 0.75], [1.5, 0.25, -0.5, 3.0]);
    [
        (vectoradd_at(rt, &a, &b, 1.75, false), 0.25, 1e-12),
        (vectoradd_at(rt, &a, &b, 1.75, true), 1e-2, 1e-3),
    ]
}

#[test]
fn vectoradd_derivatives_match_central_differences() {
    let rt = runtime(EXAMPLE_VECTORADD);
    for (inputs, h, tol) in vectoradd_cases(&rt) {
        let jac = rt.jacobian(&inputs, &abs_(), &result()).expect("jacobian");
        assert_eq!(jac.route, Route::Native);
        for (p, e, tangent) in basis_tangents(&inputs, &abs_()) {
            let column = f64s(&fd_jvp(&rt, &inputs, &result(), &tangent, h)["result"]);
            let b = block(&jac.value, "result", &p);
            let n = b.shape().get(1).copied().unwrap_or(1);
            let got: Vec<f64> = f64s(b).iter().skip(e).step_by(n).copied().collect();
            assert_rel(&got, &column, tol, format!("∂result/∂{p}[{e}]"));
        }

        let t = vectors([
            ("a", t32(&[4], vec![0.25, -0.5, 1.0, 0.125])),
            ("b", t32(&[4], vec![-1.0, 0.5, 0.75, 0.25])),
            ("s", t32(&[], vec![0.5])),
        ]);
        let jvp = rt.jvp(&inputs, &abs_(), &result(), &t).expect("jvp");
        assert_eq!(jvp.route, Route::FromJacobian);
        assert_tensor_rel(
            &jvp.value["result"],
            &fd_jvp(&rt, &inputs, &result(), &t, h)["result"],
            tol,
            "jvp",
        );

        let c = vectors([("result", t64(&[4], vec![1.0, -0.5, 0.25, 2.0]))]);
        let vjp = rt.vjp(&inputs, &abs_(), &result(), &c).expect("vjp");
        assert_eq!(vjp.route, Route::FromJacobian);
        let fd = fd_vjp(&rt, &inputs, &abs_(), &c, h);
        for p in ["a", "b", "s"] {
            assert_eq!(
                vjp.value[p].dtype(),
                tesseract_model::DType::Float32,
                "vjp results take the input's dtype"
            );
            assert_tensor_rel(&vjp.value[p], &fd[p], tol, format!("vjp[{p}]"));
        }
    }
}

#[test]
fn vectoradd_passes_the_dot_product_test_on_derived_routes() {
    let rt = runtime(EXAMPLE_VECTORADD);
    // Without normalisation every quantity is exact, so the sides agree to 1e-10. Normalised,
    // vjp results are rounded to the inputs' float32, which bounds agreement at ~1e-7.
    for ((inputs, _, _), tol) in vectoradd_cases(&rt).into_iter().zip([1e-10, 1e-6]) {
        let t = vectors([
            ("a", t32(&[4], vec![0.25, -0.5, 1.0, 0.125])),
            ("b", t32(&[4], vec![-1.0, 0.5, 0.75, 0.25])),
            ("s", t32(&[], vec![0.5])),
        ]);
        let c = vectors([("result", t64(&[4], vec![1.0, -0.5, 0.25, 2.0]))]);
        assert_eq!(
            rt.route(tesseract_wasm::planner::Endpoint::Jvp),
            Some(Route::FromJacobian)
        );
        assert_eq!(
            rt.route(tesseract_wasm::planner::Endpoint::Vjp),
            Some(Route::FromJacobian)
        );
        let (lhs, rhs) = dot_product_sides(&rt, &inputs, &abs_(), &result(), &t, &c);
        assert!(
            rel_diff(lhs, rhs) <= tol,
            "⟨c, J·t⟩ = {lhs}, ⟨Jᵀ·c, t⟩ = {rhs}"
        );
    }
}

#[test]
fn vectoradd_jacobian_matches_stacked_jvps() {
    let rt = runtime(EXAMPLE_VECTORADD);
    for (inputs, _, _) in vectoradd_cases(&rt) {
        let jac = rt
            .jacobian(&inputs, &abs_(), &result())
            .expect("jacobian")
            .value;
        let stacked = jacobian_from_jvps(&rt, &inputs, &abs_(), &result());
        for p in ["a", "b", "s"] {
            assert_tensor_rel(
                block(&jac, "result", p),
                block(&stacked, "result", p),
                1e-15,
                format!("∂result/∂{p}"),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// steady-state: Newton solve of u + c·S·tanh(u) = f; exports everything, batched included
// ---------------------------------------------------------------------------------------------

/// A source term with both signs and no symmetry.
pub fn source(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 1.5 * (0.7 * i as f64 + 0.3).sin() + 0.2)
        .collect()
}

pub fn steady_state_at(rt: &Runtime, f: &[f64], c: f64, tol: f64) -> Tree {
    tree(rt.component(), json!({ "f": f, "coupling": c, "tol": tol }))
}

pub fn fc() -> Vec<String> {
    strs(&["f", "coupling"])
}

pub fn u() -> Vec<String> {
    strs(&["u"])
}

/// The sine matrix S[i,j] = √(2/(n+1))·sin(π(i+1)(j+1)/(n+1)), computed independently.
fn sine_matrix(n: usize) -> Vec<Vec<f64>> {
    let scale = (2.0 / (n + 1) as f64).sqrt();
    (1..=n)
        .map(|i| {
            (1..=n)
                .map(|j| scale * (std::f64::consts::PI * (i * j) as f64 / (n + 1) as f64).sin())
                .collect()
        })
        .collect()
}

#[test]
fn steady_state_solves_its_residual_equation() {
    let rt = runtime(EXAMPLE_STEADY_STATE);
    for (n, c) in [(1, 0.5), (12, 0.8), (40, -0.95)] {
        let f = source(n);
        let out = rt
            .apply(steady_state_at(&rt, &f, c, 1e-13))
            .expect("apply")
            .value;
        let u = f64s(array(&out, "u"));
        let Plain::Int(iterations) = *plain(&out, "iterations") else {
            panic!("iterations is an integer")
        };
        assert!(
            iterations > 0,
            "n={n}: the solve took {iterations} Newton updates"
        );
        let s = sine_matrix(n);
        let tanh: Vec<f64> = u.iter().map(|x| x.tanh()).collect();
        let residual: Vec<f64> = (0..n)
            .map(|i| u[i] + c * dot(&s[i], &tanh) - f[i])
            .collect();
        let worst = residual.iter().fold(0.0f64, |m, r| m.max(r.abs()));
        let scale = f.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        assert!(
            worst <= 1e-12 * scale,
            "n={n}: max|u + c·S·tanh(u) − f| = {worst:e}"
        );
    }
}

#[test]
fn steady_state_jvp_and_vjp_match_central_differences() {
    let rt = runtime(EXAMPLE_STEADY_STATE);
    let n = 6;
    for c in [0.7, -0.6] {
        let inputs = steady_state_at(&rt, &source(n), c, 1e-14);
        let t = vectors([("f", t64(&[n], wave(n, 1.1, 0.4))), ("coupling", s64(-0.4))]);
        let jvp = rt.jvp(&inputs, &fc(), &u(), &t).expect("jvp");
        assert_eq!(jvp.route, Route::Native);
        assert_tensor_rel(
            &jvp.value["u"],
            &fd_jvp(&rt, &inputs, &u(), &t, 1e-6)["u"],
            1e-6,
            format!("jvp, c={c}"),
        );

        let cot = vectors([("u", t64(&[n], wave(n, 0.9, -0.2)))]);
        let vjp = rt.vjp(&inputs, &fc(), &u(), &cot).expect("vjp");
        assert_eq!(vjp.route, Route::Native);
        let fd = fd_vjp(&rt, &inputs, &fc(), &cot, 1e-6);
        for p in ["f", "coupling"] {
            assert_tensor_rel(&vjp.value[p], &fd[p], 1e-6, format!("vjp[{p}], c={c}"));
        }
    }
}

#[test]
fn steady_state_passes_the_dot_product_test() {
    let rt = runtime(EXAMPLE_STEADY_STATE);
    for (n, c) in [(1, 0.3), (8, 0.9), (33, -0.95)] {
        let inputs = steady_state_at(&rt, &source(n), c, 1e-12);
        let t = vectors([("f", t64(&[n], wave(n, 0.9, 0.1))), ("coupling", s64(0.77))]);
        let cot = vectors([("u", t64(&[n], wave(n, 1.7, 1.4)))]);
        let (lhs, rhs) = dot_product_sides(&rt, &inputs, &fc(), &u(), &t, &cot);
        assert!(
            rel_diff(lhs, rhs) <= 1e-10,
            "n={n}: ⟨c, J·t⟩ = {lhs}, ⟨Jᵀ·c, t⟩ = {rhs}"
        );
    }
}

#[test]
fn steady_state_jacobian_matches_stacked_jvps() {
    let rt = runtime(EXAMPLE_STEADY_STATE);
    let n = 5;
    let inputs = steady_state_at(&rt, &source(n), 0.45, 1e-12);
    let jac = rt.jacobian(&inputs, &fc(), &u()).expect("jacobian");
    assert_eq!(jac.route, Route::Native);
    let stacked = jacobian_from_jvps(&rt, &inputs, &fc(), &u());
    assert_eq!(block(&jac.value, "u", "f").shape(), [n, n]);
    assert_eq!(block(&jac.value, "u", "coupling").shape(), [n]);
    for p in ["f", "coupling"] {
        assert_tensor_rel(
            block(&jac.value, "u", p),
            block(&stacked, "u", p),
            1e-12,
            format!("∂u/∂{p}"),
        );
    }
}
