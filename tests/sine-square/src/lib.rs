//! The Tesseract the `derive-*`, `batched-only` and `bad-*` test guests share: `y = w·sin(x)`
//! (shape `[n]`) and `s = Σ x²` (scalar), for `x` a float64 vector and `w` a float64 scalar,
//! both differentiable. This crate holds the schema, apply and the correct derivatives, written
//! by hand:
//! `dy = w·cos(x)⊙dx + dw·sin(x)`, `ds = 2x·dx`; `x̄ = w·cos(x)⊙ȳ + 2x·s̄`, `w̄ = sin(x)·ȳ`.
//! Each guest exports the subset it is about, so the `derive-*`/`batched-only` guests differ
//! only in which exports the host has to work around, and each `bad-*` guest only in its one
//! fault.

use tesseract_guest::ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Ix2, arr0};
use tesseract_guest::{Arrays, DType, Error, Field, Inputs, Outputs, Schema};

/// The schema, under the guest's own name.
pub fn schema(name: &str, description: &str) -> Schema {
    Schema::new(name, "0.1.0")
        .description(description)
        .input(Field::array("x", DType::Float64, [None]).differentiable())
        .input(Field::scalar("w", DType::Float64).differentiable())
        .output(Field::array("y", DType::Float64, [None]).differentiable())
        .output(Field::scalar("s", DType::Float64).differentiable())
}

/// `y = w·sin(x)`, `s = Σ x²`.
///
/// # Errors
/// `invalid-input` when `x` or `w` is missing or mistyped.
pub fn apply(inputs: &Inputs) -> Result<Outputs, Error> {
    let x = inputs.array1::<f64>("x")?;
    let w = inputs.scalar::<f64>("w")?;
    Ok(Outputs::new()
        .with_array("y", x.mapv(|v| w * v.sin()))
        .with_scalar("s", x.dot(&x)))
}

/// Refuses paths outside `allowed` (`kind` is "input" or "output").
///
/// # Errors
/// `invalid-input` naming the first unknown path.
pub fn check(kind: &str, paths: &[String], allowed: &[&str]) -> Result<(), Error> {
    match paths.iter().find(|p| !allowed.contains(&p.as_str())) {
        Some(p) => Err(Error::invalid_input(format!(
            "`{p}` is not a differentiable {kind}"
        ))),
        None => Ok(()),
    }
}

/// Whether `name` is among the requested `paths`.
pub fn wants(paths: &[String], name: &str) -> bool {
    paths.iter().any(|p| p == name)
}

/// The scalar (co)tangent at `path`.
///
/// # Errors
/// `invalid-input` when it is missing or not a float64 scalar.
pub fn scalar(arrays: &Arrays, path: &str) -> Result<f64, Error> {
    let v = arrays.get::<f64>(path)?;
    match (v.ndim(), v.iter().next()) {
        (0, Some(&x)) => Ok(x),
        _ => Err(Error::invalid_input(format!(
            "`{path}` must be a scalar, got shape {:?}",
            v.shape()
        ))),
    }
}

/// The vector (co)tangent of length `n` at `path`.
///
/// # Errors
/// `invalid-input` when it is missing or not a float64 vector of length `n`.
pub fn vector<'a>(arrays: &'a Arrays, path: &str, n: usize) -> Result<ArrayView1<'a, f64>, Error> {
    match arrays.get::<f64>(path)?.into_dimensionality() {
        Ok(v) if v.len() == n => Ok(v),
        _ => Err(Error::invalid_input(format!(
            "`{path}` must be a vector of length {n}"
        ))),
    }
}

/// A batch of scalars: shape `[K]`.
fn scalars<'a>(arrays: &'a Arrays, path: &str, k: usize) -> Result<ArrayView1<'a, f64>, Error> {
    match arrays.get::<f64>(path)?.into_dimensionality() {
        Ok(v) if v.len() == k => Ok(v),
        _ => Err(Error::invalid_input(format!(
            "`{path}` must have shape [{k}]"
        ))),
    }
}

/// A batch of vectors: shape `[K, n]`.
fn vectors<'a>(
    arrays: &'a Arrays,
    path: &str,
    k: usize,
    n: usize,
) -> Result<ArrayView2<'a, f64>, Error> {
    match arrays.get::<f64>(path)?.into_dimensionality::<Ix2>() {
        Ok(v) if v.dim() == (k, n) => Ok(v),
        _ => Err(Error::invalid_input(format!(
            "`{path}` must have shape [{k}, {n}]"
        ))),
    }
}

/// The jvp: `dy = w·cos(x)⊙dx + dw·sin(x)`, `ds = 2x·dx`.
///
/// # Errors
/// `invalid-input` for an unknown path or a mistyped input or tangent.
pub fn jvp(
    inputs: &Inputs,
    jvp_inputs: &[String],
    jvp_outputs: &[String],
    tangent: &Arrays,
) -> Result<Arrays, Error> {
    check("input", jvp_inputs, &["x", "w"])?;
    check("output", jvp_outputs, &["y", "s"])?;
    let x = inputs.array1::<f64>("x")?;
    let w = inputs.scalar::<f64>("w")?;
    let mut dy = Array1::<f64>::zeros(x.len());
    let mut ds = 0.0;
    if wants(jvp_inputs, "x") {
        let tx = vector(tangent, "x", x.len())?;
        dy += &(&x.mapv(|v| w * v.cos()) * &tx);
        ds += 2.0 * x.dot(&tx);
    }
    if wants(jvp_inputs, "w") {
        let tw = scalar(tangent, "w")?;
        dy += &x.mapv(|v| tw * v.sin());
    }
    let mut out = Arrays::new();
    if wants(jvp_outputs, "y") {
        out.insert("y", dy);
    }
    if wants(jvp_outputs, "s") {
        out.insert("s", arr0(ds));
    }
    Ok(out)
}

/// The vjp: `x̄ = w·cos(x)⊙ȳ + 2x·s̄`, `w̄ = sin(x)·ȳ`.
///
/// # Errors
/// `invalid-input` for an unknown path or a mistyped input or cotangent.
pub fn vjp(
    inputs: &Inputs,
    vjp_inputs: &[String],
    vjp_outputs: &[String],
    cotangent: &Arrays,
) -> Result<Arrays, Error> {
    check("input", vjp_inputs, &["x", "w"])?;
    check("output", vjp_outputs, &["y", "s"])?;
    let x = inputs.array1::<f64>("x")?;
    let w = inputs.scalar::<f64>("w")?;
    let mut x_bar = Array1::<f64>::zeros(x.len());
    let mut w_bar = 0.0;
    if wants(vjp_outputs, "y") {
        let y_bar = vector(cotangent, "y", x.len())?;
        x_bar += &(&x.mapv(|v| w * v.cos()) * &y_bar);
        w_bar += x.mapv(f64::sin).dot(&y_bar);
    }
    if wants(vjp_outputs, "s") {
        let s_bar = scalar(cotangent, "s")?;
        x_bar += &x.mapv(|v| 2.0 * v * s_bar);
    }
    let mut out = Arrays::new();
    if wants(vjp_inputs, "x") {
        out.insert("x", x_bar);
    }
    if wants(vjp_inputs, "w") {
        out.insert("w", arr0(w_bar));
    }
    Ok(out)
}

/// [`jvp`] for `count` tangents at once, vectorised: every tangent and result carries a
/// leading batch axis of length `count`.
///
/// # Errors
/// As [`jvp`], and when a tangent lacks the batch axis.
pub fn batched_jvp(
    inputs: &Inputs,
    jvp_inputs: &[String],
    jvp_outputs: &[String],
    tangents: &Arrays,
    count: usize,
) -> Result<Arrays, Error> {
    check("input", jvp_inputs, &["x", "w"])?;
    check("output", jvp_outputs, &["y", "s"])?;
    let x = inputs.array1::<f64>("x")?;
    let w = inputs.scalar::<f64>("w")?;
    let n = x.len();
    let mut dy = Array2::<f64>::zeros((count, n));
    let mut ds = Array1::<f64>::zeros(count);
    if wants(jvp_inputs, "x") {
        let tx = vectors(tangents, "x", count, n)?;
        let w_cos = x.mapv(|v| w * v.cos());
        dy += &(&tx * &w_cos.view().insert_axis(Axis(0)));
        ds += &tx.dot(&x).mapv(|v| 2.0 * v);
    }
    if wants(jvp_inputs, "w") {
        let tw = scalars(tangents, "w", count)?;
        let sin = x.mapv(f64::sin);
        for (mut row, &t) in dy.outer_iter_mut().zip(&tw) {
            row.scaled_add(t, &sin);
        }
    }
    let mut out = Arrays::new();
    if wants(jvp_outputs, "y") {
        out.insert("y", dy);
    }
    if wants(jvp_outputs, "s") {
        out.insert("s", ds);
    }
    Ok(out)
}

/// [`vjp`] for `count` cotangents at once, vectorised: every cotangent and result carries a
/// leading batch axis of length `count`.
///
/// # Errors
/// As [`vjp`], and when a cotangent lacks the batch axis.
pub fn batched_vjp(
    inputs: &Inputs,
    vjp_inputs: &[String],
    vjp_outputs: &[String],
    cotangents: &Arrays,
    count: usize,
) -> Result<Arrays, Error> {
    check("input", vjp_inputs, &["x", "w"])?;
    check("output", vjp_outputs, &["y", "s"])?;
    let x = inputs.array1::<f64>("x")?;
    let w = inputs.scalar::<f64>("w")?;
    let n = x.len();
    let mut x_bar = Array2::<f64>::zeros((count, n));
    let mut w_bar = Array1::<f64>::zeros(count);
    if wants(vjp_outputs, "y") {
        let y_bar = vectors(cotangents, "y", count, n)?;
        let w_cos = x.mapv(|v| w * v.cos());
        x_bar += &(&y_bar * &w_cos.view().insert_axis(Axis(0)));
        w_bar += &y_bar.dot(&x.mapv(f64::sin));
    }
    if wants(vjp_outputs, "s") {
        let s_bar = scalars(cotangents, "s", count)?;
        let two_x = x.mapv(|v| 2.0 * v);
        for (mut row, &c) in x_bar.outer_iter_mut().zip(&s_bar) {
            row.scaled_add(c, &two_x);
        }
    }
    let mut out = Arrays::new();
    if wants(vjp_inputs, "x") {
        out.insert("x", x_bar);
    }
    if wants(vjp_inputs, "w") {
        out.insert("w", w_bar);
    }
    Ok(out)
}
