//! Endpoints a component does not export, derived by the host, on test guests that each export
//! only part of the contract. Maths (all three guests): `y = w·sin(x)` (shape `[n]`),
//! `s = Σ x²` (scalar); the expected derivatives are computed by hand here.
//!
//! - `derive-from-products` (jvp + vjp only): jacobian from basis vectors, both directions.
//! - `derive-from-jacobian` (jacobian only): jvp and vjp, single and batched, contracted from it.
//! - `batched-only` (batched jvp + vjp only): single jvp/vjp through the batched export, K = 1.
//! - all three: abstract_eval from apply on zeros.

use serde_json::json;
use tesseract_model::{DType, JacobianBlocks, Tree, Vectors};
use tesseract_wasm::planner::{self, Direction, Endpoint, Route};
use tesseract_wasm::runtime::Runtime;
use tesseract_wasm_tests::{BATCHED_ONLY, DERIVE_FROM_JACOBIAN, DERIVE_FROM_PRODUCTS};

use crate::support::*;

const N: usize = 5;

fn point() -> (Vec<f64>, f64) {
    (wave(N, 1.3, 0.4).iter().map(|v| 2.0 * v).collect(), -1.7)
}

fn inputs(rt: &Runtime) -> Tree {
    let (x, w) = point();
    tree(rt.component(), json!({ "x": x, "w": w }))
}

/// The hand-written jacobian of (y, s) with respect to (x, w), restricted to `ins` × `outs`.
fn hand_jacobian(ins: &[String], outs: &[String]) -> JacobianBlocks {
    let (x, w) = point();
    let mut blocks = JacobianBlocks::new();
    for o in outs {
        for i in ins {
            let b = match (o.as_str(), i.as_str()) {
                ("y", "x") => {
                    let mut d = vec![0.0; N * N];
                    for (j, xj) in x.iter().enumerate() {
                        d[j * N + j] = w * xj.cos();
                    }
                    t64(&[N, N], d)
                }
                ("y", "w") => t64(&[N], x.iter().map(|v| v.sin()).collect()),
                ("s", "x") => t64(&[N], x.iter().map(|v| 2.0 * v).collect()),
                ("s", "w") => s64(0.0),
                other => panic!("no such block {other:?}"),
            };
            blocks.insert((o.clone(), i.clone()), b);
        }
    }
    blocks
}

/// Hand jvp: dy = w·cos(x)⊙dx + dw·sin(x), ds = 2x·dx, over the inputs present in `t`.
fn hand_jvp(t: &Vectors, outs: &[String]) -> Vectors {
    let (x, w) = point();
    let dx = t.get("x").map_or(vec![0.0; N], f64s);
    let dw = t.get("w").map_or(0.0, scalar_of);
    let dy: Vec<f64> = (0..N)
        .map(|j| w * x[j].cos() * dx[j] + dw * x[j].sin())
        .collect();
    let ds = 2.0 * dot(&x, &dx);
    outs.iter()
        .map(|o| {
            (
                o.clone(),
                if o == "y" {
                    t64(&[N], dy.clone())
                } else {
                    s64(ds)
                },
            )
        })
        .collect()
}

/// Hand vjp: x̄ = w·cos(x)⊙ȳ + 2x·s̄, w̄ = sin(x)·ȳ, over the outputs present in `c`.
fn hand_vjp(c: &Vectors, ins: &[String]) -> Vectors {
    let (x, w) = point();
    let y_bar = c.get("y").map_or(vec![0.0; N], f64s);
    let s_bar = c.get("s").map_or(0.0, scalar_of);
    let x_bar: Vec<f64> = (0..N)
        .map(|j| w * x[j].cos() * y_bar[j] + 2.0 * x[j] * s_bar)
        .collect();
    let w_bar = dot(&x.iter().map(|v| v.sin()).collect::<Vec<_>>(), &y_bar);
    ins.iter()
        .map(|i| {
            (
                i.clone(),
                if i == "x" {
                    t64(&[N], x_bar.clone())
                } else {
                    s64(w_bar)
                },
            )
        })
        .collect()
}

fn assert_blocks(got: &JacobianBlocks, want: &JacobianBlocks, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: blocks"
    );
    for (k, w) in want {
        assert_tensor_rel(&got[k], w, 1e-14, format!("{what}: block {k:?}"));
    }
}

fn assert_products(got: &Vectors, want: &Vectors, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: keys"
    );
    for (p, w) in want {
        assert_tensor_rel(&got[p], w, 1e-14, format!("{what}: `{p}`"));
    }
}

fn tangent() -> Vectors {
    vectors([("x", t64(&[N], wave(N, 0.7, -0.3))), ("w", s64(0.45))])
}

fn cotangent() -> Vectors {
    vectors([("y", t64(&[N], wave(N, 1.9, 0.8))), ("s", s64(-0.6))])
}

/// (jac_inputs, jac_outputs) cases: everything (a tie: n+1 inputs, n+1 outputs), few outputs
/// (reverse is cheaper) and few inputs (forward is cheaper).
fn subsets() -> [(Vec<String>, Vec<String>); 3] {
    [
        (strs(&["x", "w"]), strs(&["y", "s"])),
        (strs(&["x", "w"]), strs(&["s"])),
        (strs(&["w"]), strs(&["y", "s"])),
    ]
}

#[test]
fn jacobian_is_assembled_from_jvp_and_vjp_exports() {
    let rt = runtime(DERIVE_FROM_PRODUCTS);
    let caps = rt.capabilities();
    assert!(
        caps.jvp
            && caps.vjp
            && !caps.jacobian
            && !caps.abstract_eval
            && !caps.batched_jvp
            && !caps.batched_vjp,
        "{caps:?}"
    );
    let inputs = inputs(&rt);
    // Both directions are taken across the subsets; the planner picks the smaller basis.
    assert_eq!(
        planner::basis_direction(caps, 1, N + 1),
        Some(Direction::Forward)
    );
    assert_eq!(
        planner::basis_direction(caps, N + 1, 1),
        Some(Direction::Reverse)
    );
    for (ins, outs) in subsets() {
        let jac = rt.jacobian(&inputs, &ins, &outs).expect("derived jacobian");
        assert_eq!(
            jac.route,
            Route::Basis {
                forward: true,
                reverse: true
            }
        );
        assert_blocks(
            &jac.value,
            &hand_jacobian(&ins, &outs),
            &format!("jacobian {ins:?} × {outs:?}"),
        );
    }
    // The batches that build it are loops of the scalar exports.
    assert_eq!(rt.route(Endpoint::BatchedJvp), Some(Route::Looped));
    assert_eq!(rt.route(Endpoint::BatchedVjp), Some(Route::Looped));
}

#[test]
fn jvp_and_vjp_are_contracted_from_the_jacobian_export() {
    let rt = runtime(DERIVE_FROM_JACOBIAN);
    let caps = rt.capabilities();
    assert!(
        caps.jacobian
            && !caps.jvp
            && !caps.vjp
            && !caps.abstract_eval
            && !caps.batched_jvp
            && !caps.batched_vjp,
        "{caps:?}"
    );
    let inputs = inputs(&rt);
    for (ins, outs) in subsets() {
        let t: Vectors = tangent()
            .into_iter()
            .filter(|(p, _)| ins.contains(p))
            .collect();
        let c: Vectors = cotangent()
            .into_iter()
            .filter(|(p, _)| outs.contains(p))
            .collect();
        let what = format!("{ins:?} × {outs:?}");

        let jvp = rt.jvp(&inputs, &ins, &outs, &t).expect("derived jvp");
        assert_eq!(jvp.route, Route::FromJacobian);
        assert_products(&jvp.value, &hand_jvp(&t, &outs), &format!("jvp {what}"));

        let vjp = rt.vjp(&inputs, &ins, &outs, &c).expect("derived vjp");
        assert_eq!(vjp.route, Route::FromJacobian);
        assert_products(&vjp.value, &hand_vjp(&c, &ins), &format!("vjp {what}"));

        // Batched: K = 3 scaled copies, each contracted on its own.
        let scales = [1.0, -2.0, 0.5];
        let scaled = |v: &Vectors, s: f64| -> Vectors {
            v.iter()
                .map(|(p, x)| {
                    (
                        p.clone(),
                        t64(x.shape(), f64s(x).iter().map(|e| s * e).collect()),
                    )
                })
                .collect()
        };
        let ts: Vec<Vectors> = scales.iter().map(|&s| scaled(&t, s)).collect();
        let cs: Vec<Vectors> = scales.iter().map(|&s| scaled(&c, s)).collect();
        let bj = rt
            .batched_jvp(&inputs, &ins, &outs, &stack(&ts), 3)
            .expect("derived batched jvp");
        assert_eq!(bj.route, Route::FromJacobian);
        let bv = rt
            .batched_vjp(&inputs, &ins, &outs, &stack(&cs), 3)
            .expect("derived batched vjp");
        assert_eq!(bv.route, Route::FromJacobian);
        for k in 0..3 {
            let row_of = |v: &Vectors| -> Vectors {
                v.iter().map(|(p, t)| (p.clone(), row(t, k))).collect()
            };
            assert_products(
                &row_of(&bj.value),
                &hand_jvp(&ts[k], &outs),
                &format!("batched jvp {what} row {k}"),
            );
            assert_products(
                &row_of(&bv.value),
                &hand_vjp(&cs[k], &ins),
                &format!("batched vjp {what} row {k}"),
            );
        }
    }
    let (lhs, rhs) = dot_product_sides(
        &rt,
        &inputs,
        &strs(&["x", "w"]),
        &strs(&["y", "s"]),
        &tangent(),
        &cotangent(),
    );
    assert!(
        rel_diff(lhs, rhs) <= 1e-10,
        "derived routes: ⟨c, J·t⟩ = {lhs}, ⟨Jᵀ·c, t⟩ = {rhs}"
    );
}

/// A derived jacobian is a result like a native one: one of 6001 × 6001 float64 (288 MB) is
/// more than `--max-result-size` (256 MiB by default) and is refused before any basis vector
/// is built, though it would fit in guest memory (512 MiB).
#[test]
fn a_derived_jacobian_larger_than_a_result_may_be_is_refused_up_front() {
    let rt = runtime(DERIVE_FROM_PRODUCTS);
    let x = wave(6000, 1.3, 0.4);
    let inputs = tree(rt.component(), json!({ "x": x, "w": 0.5 }));
    let err = rt
        .jacobian(&inputs, &strs(&["x", "w"]), &strs(&["y", "s"]))
        .expect_err("288 MB of jacobian");
    let msg = err.to_string();
    assert!(msg.contains("--max-result-size"), "{msg}");
    assert!(msg.contains("6001 output by 6001 input"), "{msg}");
}

#[test]
fn abstract_eval_runs_apply_on_zeros() {
    for path in [DERIVE_FROM_PRODUCTS, DERIVE_FROM_JACOBIAN, BATCHED_ONLY] {
        let rt = runtime(path);
        assert!(!rt.capabilities().abstract_eval);
        for n in [1, 7] {
            let shapes = abstract_tree([
                ("x", &[n][..], DType::Float64),
                ("w", &[][..], DType::Float64),
            ]);
            let out = rt.abstract_eval(&shapes).expect("abstract_eval");
            assert_eq!(out.route, Route::ApplyOnZeros, "{path}");
            assert_eq!(
                out.value,
                abstract_tree([
                    ("s", &[][..], DType::Float64),
                    ("y", &[n][..], DType::Float64)
                ]),
                "{path}, n={n}"
            );
        }
    }
}

#[test]
fn single_products_go_through_the_batched_export() {
    let rt = runtime(BATCHED_ONLY);
    let caps = rt.capabilities();
    assert!(
        caps.batched_jvp
            && caps.batched_vjp
            && !caps.jvp
            && !caps.vjp
            && !caps.jacobian
            && !caps.abstract_eval,
        "{caps:?}"
    );
    let inputs = inputs(&rt);
    for (ins, outs) in subsets() {
        let t: Vectors = tangent()
            .into_iter()
            .filter(|(p, _)| ins.contains(p))
            .collect();
        let c: Vectors = cotangent()
            .into_iter()
            .filter(|(p, _)| outs.contains(p))
            .collect();
        let what = format!("{ins:?} × {outs:?}");

        let jvp = rt
            .jvp(&inputs, &ins, &outs, &t)
            .expect("jvp via batched export");
        assert_eq!(jvp.route, Route::BatchedExport);
        assert_products(&jvp.value, &hand_jvp(&t, &outs), &format!("jvp {what}"));

        let vjp = rt
            .vjp(&inputs, &ins, &outs, &c)
            .expect("vjp via batched export");
        assert_eq!(vjp.route, Route::BatchedExport);
        assert_products(&vjp.value, &hand_vjp(&c, &ins), &format!("vjp {what}"));

        let jac = rt
            .jacobian(&inputs, &ins, &outs)
            .expect("jacobian from batched exports");
        assert_eq!(
            jac.route,
            Route::Basis {
                forward: true,
                reverse: true
            }
        );
        assert_blocks(
            &jac.value,
            &hand_jacobian(&ins, &outs),
            &format!("jacobian {what}"),
        );
    }
    assert_eq!(rt.route(Endpoint::BatchedJvp), Some(Route::Native));
    assert_eq!(rt.route(Endpoint::BatchedVjp), Some(Route::Native));
}
