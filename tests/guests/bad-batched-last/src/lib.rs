//! `bad-batched-last`: sine-square with a correct scalar jvp and a batched jvp export that
//! scales the last batch element by 1.5. `check` must fail its batched-jvp checks (against
//! single jvps and against the looped fallback), naming the last element.
use ndarray::{Array1, ArrayView1, Axis, arr0};
use sine_square::{check, wants};
use tesseract_guest::{Arrays, BatchedJvp, Error, Inputs, Jvp, Outputs, Schema, Tesseract, Vjp};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct BadBatchedLast;

impl Tesseract for BadBatchedLast {
    fn schema() -> Schema {
        sine_square::schema(
            "bad-batched-last",
            "sine-square whose batched jvp is wrong in its last element",
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

impl Jvp for BadBatchedLast {
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

impl Vjp for BadBatchedLast {
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

impl BatchedJvp for BadBatchedLast {
    fn batched_jvp(
        &self,
        inputs: &Inputs,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangents: &Arrays,
        count: usize,
    ) -> Result<Arrays, Error> {
        let mut ys = Vec::with_capacity(count);
        let mut ss = Vec::with_capacity(count);
        for k in 0..count {
            let mut one = Arrays::new();
            for p in jvp_inputs {
                one.insert(p, tangents.get::<f64>(p)?.index_axis(Axis(0), k).to_owned());
            }
            let out = jvp(inputs, jvp_inputs, jvp_outputs, &one)?;
            let scale = if k + 1 == count { 1.5 } else { 1.0 };
            if wants(jvp_outputs, "y") {
                ys.push(out.get::<f64>("y")?.mapv(|v| v * scale));
            }
            if wants(jvp_outputs, "s") {
                ss.push(out.get::<f64>("s")?.mapv(|v| v * scale));
            }
        }
        let stack = |parts: &[ndarray::ArrayD<f64>]| {
            let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
            ndarray::stack(Axis(0), &views).map_err(|e| Error::failed(e.to_string()))
        };
        let mut out = Arrays::new();
        if wants(jvp_outputs, "y") {
            out.insert("y", stack(&ys)?);
        }
        if wants(jvp_outputs, "s") {
            out.insert("s", stack(&ss)?);
        }
        Ok(out)
    }
}

tesseract_guest::export!(BadBatchedLast: jvp, vjp, batched_jvp);
