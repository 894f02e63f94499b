//! tesseract-core request bodies through `request::handle`: 422 bodies in pydantic's shape
//! (`type`, `loc`), and (co)tangents with extra leading axes served as one batch whose
//! response keeps those axes.

use serde_json::{Value, json};
use tesseract_model::Tensor;
use tesseract_wasm::codec::{DecodeOptions, decode_array};
use tesseract_wasm::planner::{Endpoint, Route};
use tesseract_wasm::request::{CodecOptions, RequestError, Response, handle};
use tesseract_wasm::runtime::Runtime;
use tesseract_wasm_tests::{
    DERIVE_FROM_PRODUCTS, EXAMPLE_ROSENBROCK, EXAMPLE_STEADY_STATE, EXAMPLE_VECTORADD,
};

use crate::examples::source;
use crate::support::*;

fn serve(rt: &Runtime, endpoint: Endpoint, body: &Value) -> Result<Response, RequestError> {
    handle(rt, endpoint, body, &CodecOptions::default())
}

/// The `detail` list of a 422.
fn rejected(rt: &Runtime, endpoint: Endpoint, body: Value) -> Vec<Value> {
    let err = serve(rt, endpoint, &body).expect_err("the request is invalid");
    assert_eq!(err.status(), 422, "{err}");
    let detail = err.body()["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("422 body has a detail list: {}", err.body()))
        .clone();
    for d in &detail {
        assert!(
            d["type"].is_string() && d["loc"].is_array() && d["msg"].is_string(),
            "pydantic-style error: {d}"
        );
    }
    detail
}

/// Asserts `detail` has an error of `kind` at `loc`.
fn assert_has(detail: &[Value], kind: &str, loc: Value) {
    assert!(
        detail.iter().any(|d| d["type"] == kind && d["loc"] == loc),
        "no {kind} at {loc} in {}",
        Value::from(detail.to_vec())
    );
}

/// A response array, decoded.
fn decoded(body: &Value, path: &str) -> Tensor {
    decode_array(&body[path], &DecodeOptions::default())
        .unwrap_or_else(|e| panic!("`{path}` in {body} is an array: {e}"))
}

#[test]
fn wrong_rank_is_a_422_array_dimensionality_mismatch() {
    let rt = runtime(EXAMPLE_VECTORADD);
    let detail = rejected(
        &rt,
        Endpoint::Apply,
        json!({ "inputs": { "a": [[1.0, 2.0], [3.0, 4.0]], "b": [1.0, 2.0] } }),
    );
    assert_has(
        &detail,
        "array_dimensionality_mismatch",
        json!(["body", "inputs", "a"]),
    );
}

#[test]
fn extra_input_field_is_a_422_extra_forbidden() {
    let rt = runtime(EXAMPLE_VECTORADD);
    let detail = rejected(
        &rt,
        Endpoint::Apply,
        json!({ "inputs": { "a": [1.0], "b": [2.0], "c": 3.0 } }),
    );
    assert_has(&detail, "extra_forbidden", json!(["body", "inputs", "c"]));
}

#[test]
fn extra_body_field_is_a_422_extra_forbidden() {
    let inputs = json!({ "a": [1.0], "b": [2.0] });
    let rt = runtime(EXAMPLE_VECTORADD);
    let detail = rejected(
        &rt,
        Endpoint::Jacobian,
        json!({ "inputs": inputs, "jac_inputs": ["a"], "jac_outputs": ["result"], "extra": 1 }),
    );
    assert_has(&detail, "extra_forbidden", json!(["body", "extra"]));
    let detail = rejected(
        &rt,
        Endpoint::AbstractEval,
        json!({ "inputs": { "a": { "shape": [1], "dtype": "float32" }, "b": { "shape": [1], "dtype": "float32" } }, "extra": 1 }),
    );
    assert_has(&detail, "extra_forbidden", json!(["body", "extra"]));
    let detail = rejected(
        &rt,
        Endpoint::Apply,
        json!({ "inputs": inputs, "extra": 1 }),
    );
    assert_has(&detail, "extra_forbidden", json!(["body", "extra"]));
}

#[test]
fn missing_input_field_is_a_422() {
    let rt = runtime(EXAMPLE_VECTORADD);
    let detail = rejected(&rt, Endpoint::Apply, json!({ "inputs": { "a": [1.0] } }));
    assert_has(&detail, "missing", json!(["body", "inputs", "b"]));
    let detail = rejected(&rt, Endpoint::Apply, json!({}));
    assert_has(&detail, "missing", json!(["body", "inputs"]));
}

#[test]
fn tangent_keys_must_match_jvp_inputs() {
    let rt = runtime(EXAMPLE_ROSENBROCK);
    let detail = rejected(
        &rt,
        Endpoint::Jvp,
        json!({ "inputs": { "x": 0.5, "y": 1.0 }, "jvp_inputs": ["x", "y"], "jvp_outputs": ["result"], "tangent_vector": { "x": 1.0 } }),
    );
    assert_has(&detail, "value_error", json!(["body", "tangent_vector"]));
    let detail = rejected(
        &rt,
        Endpoint::Vjp,
        json!({ "inputs": { "x": 0.5, "y": 1.0 }, "vjp_inputs": ["x"], "vjp_outputs": ["result"], "cotangent_vector": { "result": 1.0, "x": 2.0 } }),
    );
    assert_has(
        &detail,
        "literal_error",
        json!(["body", "cotangent_vector", "x", "[key]"]),
    );
}

/// A path naming no differentiable field gets upstream's errors: one `literal_error` per
/// allowed path, and the tangent-key message quotes sets as Python does.
#[test]
fn non_differentiable_paths_are_literal_errors_as_upstream() {
    let rt = runtime(EXAMPLE_ROSENBROCK);
    let detail = rejected(
        &rt,
        Endpoint::Jacobian,
        json!({ "inputs": { "x": 0.5, "y": 1.0 }, "jac_inputs": ["a"], "jac_outputs": ["result"] }),
    );
    assert_has(
        &detail,
        "literal_error",
        json!(["body", "jac_inputs", 0, "literal['x']"]),
    );
    assert_has(
        &detail,
        "literal_error",
        json!(["body", "jac_inputs", 0, "literal['y']"]),
    );
    let detail = rejected(
        &rt,
        Endpoint::Jvp,
        json!({ "inputs": { "x": 0.5, "y": 1.0 }, "jvp_inputs": ["x"], "jvp_outputs": ["result"], "tangent_vector": { "y": 1.0 } }),
    );
    assert_eq!(
        detail[0]["msg"],
        "Value error, Expected tangent vector with keys conforming to jvp_inputs: {'x'}, got {'y'}."
    );
}

/// A jvp request body for steady-state at `f` with these tangents.
fn steady_jvp(f: &[f64], df: Value, dc: Value) -> Value {
    json!({ "inputs": { "f": f, "coupling": 0.6 }, "jvp_inputs": ["f", "coupling"], "jvp_outputs": ["u"], "tangent_vector": { "f": df, "coupling": dc } })
}

fn steady_vjp(f: &[f64], u_bar: Value) -> Value {
    json!({ "inputs": { "f": f, "coupling": 0.6 }, "vjp_inputs": ["f", "coupling"], "vjp_outputs": ["u"], "cotangent_vector": { "u": u_bar } })
}

/// Splits a flat list into rows of `n`.
fn rows(values: &[f64], n: usize) -> Vec<Vec<f64>> {
    values.chunks(n).map(<[f64]>::to_vec).collect()
}

#[test]
fn jvp_tangent_with_a_leading_axis_of_3_is_served_as_a_batch() {
    // steady-state: batched export.
    let rt = runtime(EXAMPLE_STEADY_STATE);
    let n = 4;
    let f = source(n);
    let df = rows(&wave(3 * n, 0.7, 0.2), n);
    let dc = wave(3, 1.1, -0.4);
    let batch = serve(&rt, Endpoint::Jvp, &steady_jvp(&f, json!(df), json!(dc)))
        .expect("batched jvp request");
    assert_eq!(batch.route, Route::Native);
    let u = decoded(&batch.body, "u");
    assert_eq!(u.shape(), [3, n]);
    for k in 0..3 {
        let single = serve(
            &rt,
            Endpoint::Jvp,
            &steady_jvp(&f, json!(df[k]), json!(dc[k])),
        )
        .expect("single jvp request");
        assert_tensor_rel(
            &row(&u, k),
            &decoded(&single.body, "u"),
            1e-12,
            format!("steady-state row {k}"),
        );
    }

    // rosenbrock: looped scalar export.
    let rt = runtime(EXAMPLE_ROSENBROCK);
    let body = |dx: Value, dy: Value| json!({ "inputs": { "x": 0.5, "y": 1.0 }, "jvp_inputs": ["x", "y"], "jvp_outputs": ["result"], "tangent_vector": { "x": dx, "y": dy } });
    let (dx, dy) = (wave(3, 0.3, 0.1), wave(3, 0.9, 1.0));
    let batch =
        serve(&rt, Endpoint::Jvp, &body(json!(dx), json!(dy))).expect("batched jvp request");
    assert_eq!(batch.route, Route::Looped);
    let result = decoded(&batch.body, "result");
    assert_eq!(result.shape(), [3]);
    for k in 0..3 {
        let single = serve(&rt, Endpoint::Jvp, &body(json!(dx[k]), json!(dy[k])))
            .expect("single jvp request");
        assert_tensor_rel(
            &row(&result, k),
            &decoded(&single.body, "result"),
            1e-12,
            format!("rosenbrock row {k}"),
        );
    }
}

#[test]
fn two_leading_batch_axes_round_trip() {
    let rt = runtime(EXAMPLE_STEADY_STATE);
    let n = 3;
    let f = source(n);
    let df: Vec<Vec<Vec<f64>>> = rows(&wave(6 * n, 0.41, 0.3), n)
        .chunks(3)
        .map(<[Vec<f64>]>::to_vec)
        .collect();
    let dc: Vec<Vec<f64>> = rows(&wave(6, 1.3, 0.0), 3);
    let u_bar: Vec<Vec<Vec<f64>>> = rows(&wave(6 * n, 0.77, -1.2), n)
        .chunks(3)
        .map(<[Vec<f64>]>::to_vec)
        .collect();

    let jvp = serve(&rt, Endpoint::Jvp, &steady_jvp(&f, json!(df), json!(dc)))
        .expect("jvp with batch (2, 3)");
    let u = decoded(&jvp.body, "u");
    assert_eq!(u.shape(), [2, 3, n]);
    let vjp =
        serve(&rt, Endpoint::Vjp, &steady_vjp(&f, json!(u_bar))).expect("vjp with batch (2, 3)");
    let (f_bar, c_bar) = (decoded(&vjp.body, "f"), decoded(&vjp.body, "coupling"));
    assert_eq!(
        (f_bar.shape(), c_bar.shape()),
        (&[2, 3, n][..], &[2, 3][..])
    );

    for i in 0..2 {
        for j in 0..3 {
            let single = serve(
                &rt,
                Endpoint::Jvp,
                &steady_jvp(&f, json!(df[i][j]), json!(dc[i][j])),
            )
            .expect("single jvp");
            assert_tensor_rel(
                &row(&row(&u, i), j),
                &decoded(&single.body, "u"),
                1e-12,
                format!("jvp ({i}, {j})"),
            );
            let single =
                serve(&rt, Endpoint::Vjp, &steady_vjp(&f, json!(u_bar[i][j]))).expect("single vjp");
            assert_tensor_rel(
                &row(&row(&f_bar, i), j),
                &decoded(&single.body, "f"),
                1e-12,
                format!("vjp f ({i}, {j})"),
            );
            assert_tensor_rel(
                &row(&row(&c_bar, i), j),
                &decoded(&single.body, "coupling"),
                1e-12,
                format!("vjp coupling ({i}, {j})"),
            );
        }
    }
}

/// Requests whose (co)tangents would make the host allocate far more than they carry are
/// refused before allocating: a batch over `max_batch`, an empty batch, a broadcast or a copy
/// across the batch past the byte budget (the guest memory cap), and a derived jacobian whose
/// basis could not fit in a guest.
#[test]
fn oversized_batches_are_refused_before_allocating() {
    let rt = runtime(EXAMPLE_STEADY_STATE);
    let f: Vec<f64> = (0..64).map(|i| i as f64 / 64.0).collect();
    let body = steady_jvp(&f, json!(vec![vec![0.0; 64]; 3]), json!(0.0));
    let small = CodecOptions {
        max_batch: 2,
        ..CodecOptions::default()
    };
    let err = handle(&rt, Endpoint::Jvp, &body, &small).expect_err("3 > max_batch 2");
    assert_eq!(err.status(), 422);
    assert!(
        err.body().to_string().contains("--max-batch"),
        "{}",
        err.body()
    );

    let empty = json!({ "shape": [0, 64], "dtype": "float64", "data": { "buffer": "", "encoding": "base64" } });
    let body = steady_jvp(&f, empty, json!(0.0));
    let detail = rejected(&rt, Endpoint::Jvp, body);
    assert!(
        detail[0]["msg"]
            .as_str()
            .is_some_and(|m| m.contains("at least one")),
        "{detail:?}"
    );

    // [4, 1] broadcasts to [4, 64] float64 = 2048 bytes; an unbatched `coupling` copied
    // across a batch of 4 adds 32 more.
    let tight = CodecOptions {
        max_vector_bytes: 1000,
        ..CodecOptions::default()
    };
    let body = steady_jvp(&f, json!(vec![vec![1.0]; 4]), json!(0.0));
    let err = handle(&rt, Endpoint::Jvp, &body, &tight).expect_err("over the byte budget");
    assert_eq!(err.status(), 422);
    assert!(err.body().to_string().contains("bytes"), "{}", err.body());

    // derive-from-products has no jacobian export: 3000 inputs need 3000² f64 basis values,
    // 72 MB, more than the 64 MiB guest cap of the sandbox engine.
    let sandboxed = Runtime::new(load_sandboxed(DERIVE_FROM_PRODUCTS), Default::default());
    let x: Vec<f64> = (0..3000).map(|i| i as f64).collect();
    let body = json!({ "inputs": { "x": x, "w": 1.0 }, "jac_inputs": ["x"], "jac_outputs": ["y"] });
    let err = handle(
        &sandboxed,
        Endpoint::Jacobian,
        &body,
        &CodecOptions::default(),
    )
    .expect_err("basis too large");
    assert_eq!(err.status(), 422, "{}", err.body());
    assert!(
        err.body().to_string().contains("basis vectors"),
        "{}",
        err.body()
    );
}
