//! `derive-from-products`: exports ONLY `jvp` and `vjp` (no jacobian, no abstract_eval, no
//! batched exports), so the host must derive the jacobian from basis vectors, batches by
//! looping, and abstract_eval from apply on zeros.
//!
//! Maths (schema and apply come from the `sine-square` crate, shared by the three
//! `derive-*`/`batched-only` test guests):
//! `y = w·sin(x)` (shape `[n]`) and `s = Σ x²` (scalar), for `x` a float64 vector and `w` a
//! float64 scalar, both differentiable. Derivatives are written by hand:
//! `dy = w·cos(x)⊙dx + dw·sin(x)`, `ds = 2x·dx`; `x̄ = w·cos(x)⊙ȳ + 2x·s̄`, `w̄ = sin(x)·ȳ`.

use ndarray::{Array1, ArrayView1, arr0};
use sine_square::{check, wants};
use tesseract_guest::{Arrays, Error, Inputs, Jvp, Outputs, Schema, Tesseract, Vjp};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct DeriveFromProducts;

fn scalar(arrays: &Arrays, path: &str) -> Result<f64, Error> {
    let v = arrays.get::<f64>(path)?;
    match (v.ndim(), v.iter().next()) {
        (0, Some(&x)) => Ok(x),
        _ => Err(Error::invalid_input(format!(
            "`{path}` must be a scalar, got shape {:?}",
            v.shape()
        ))),
    }
}

fn vector<'a>(arrays: &'a Arrays, path: &str, n: usize) -> Result<ArrayView1<'a, f64>, Error> {
    let v = arrays.get::<f64>(path)?;
    match v.into_dimensionality() {
        Ok(v) if v.len() == n => Ok(v),
        _ => Err(Error::invalid_input(format!(
            "`{path}` must be a vector of length {n}"
        ))),
    }
}

impl Tesseract for DeriveFromProducts {
    fn schema() -> Schema {
        sine_square::schema(
            "derive-from-products",
            "y = w·sin(x), s = Σx²; exports only jvp and vjp.",
        )
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        sine_square::apply(inputs)
    }
}

impl Jvp for DeriveFromProducts {
    fn jvp(
        &self,
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
}

impl Vjp for DeriveFromProducts {
    fn vjp(
        &self,
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
}

tesseract_guest::export!(DeriveFromProducts: jvp, vjp);
