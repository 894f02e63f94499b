//! `bad-jvp-drops-tangent`: sine-square whose jvp ignores the tangent of `w`. `check` must fail
//! its jvp-against-finite-differences check.
use ndarray::{Array1, ArrayView1, arr0};
use sine_square::{check, wants};
use tesseract_guest::{Arrays, Error, Inputs, Jvp, Outputs, Schema, Tesseract, Vjp};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct BadJvpDropsTangent;

impl Tesseract for BadJvpDropsTangent {
    fn schema() -> Schema {
        sine_square::schema(
            "bad-jvp-drops-tangent",
            "sine-square whose jvp drops the tangent of w",
        )
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        sine_square::apply(inputs)
    }
}

fn scalar(arrays: &Arrays, path: &str) -> Result<f64, Error> {
    let v = arrays.get::<f64>(path)?;
    match (v.ndim(), v.iter().next()) {
        (0, Some(&x)) => Ok(x),
        _ => Err(Error::invalid_input(format!("`{path}` must be a scalar"))),
    }
}

fn vector<'a>(arrays: &'a Arrays, path: &str, n: usize) -> Result<ArrayView1<'a, f64>, Error> {
    match arrays.get::<f64>(path)?.into_dimensionality() {
        Ok(v) if v.len() == n => Ok(v),
        _ => Err(Error::invalid_input(format!(
            "`{path}` must be a vector of length {n}"
        ))),
    }
}

/// `dy = w·cos(x)⊙dx + dw·sin(x)`, `ds = 2x·dx`.
fn jvp(
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
    let mut out = Arrays::new();
    if wants(jvp_outputs, "y") {
        out.insert("y", dy);
    }
    if wants(jvp_outputs, "s") {
        out.insert("s", arr0(ds));
    }
    Ok(out)
}

/// `x̄ = w·cos(x)⊙ȳ + 2x·s̄`, `w̄ = sin(x)·ȳ`.
fn vjp(
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

impl Jvp for BadJvpDropsTangent {
    fn jvp(
        &self,
        inputs: &Inputs,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangent: &Arrays,
    ) -> Result<Arrays, Error> {
        jvp(inputs, jvp_inputs, jvp_outputs, tangent)
    }
}

impl Vjp for BadJvpDropsTangent {
    fn vjp(
        &self,
        inputs: &Inputs,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangent: &Arrays,
    ) -> Result<Arrays, Error> {
        vjp(inputs, vjp_inputs, vjp_outputs, cotangent)
    }
}

tesseract_guest::export!(BadJvpDropsTangent: jvp, vjp);
