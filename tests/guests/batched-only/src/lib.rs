//! `batched-only`: exports ONLY `batched_jvp` and `batched_vjp`, so the host must serve a
//! single jvp/vjp through the batched export with K = 1, and derive the jacobian from basis
//! vectors.
//!
//! Maths as `derive-from-products`: `y = w·sin(x)` (shape `[n]`), `s = Σ x²` (scalar). Every
//! (co)tangent and result carries a leading batch axis of length K.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use sine_square::{check, wants};
use tesseract_guest::{Arrays, BatchedJvp, BatchedVjp, Error, Inputs, Outputs, Schema, Tesseract};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct BatchedOnly;

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
    match arrays
        .get::<f64>(path)?
        .into_dimensionality::<ndarray::Ix2>()
    {
        Ok(v) if v.dim() == (k, n) => Ok(v),
        _ => Err(Error::invalid_input(format!(
            "`{path}` must have shape [{k}, {n}]"
        ))),
    }
}

impl Tesseract for BatchedOnly {
    fn schema() -> Schema {
        sine_square::schema(
            "batched-only",
            "y = w·sin(x), s = Σx²; exports only batched jvp and vjp.",
        )
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        sine_square::apply(inputs)
    }
}

impl BatchedJvp for BatchedOnly {
    fn batched_jvp(
        &self,
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
}

impl BatchedVjp for BatchedOnly {
    fn batched_vjp(
        &self,
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
}

tesseract_guest::export!(BatchedOnly: batched_jvp, batched_vjp);
