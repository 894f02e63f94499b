//! `bad-loops`: sine-square with a correct jvp and a vjp that never returns. `check` must
//! report the vjp checks as timed out and still run (and pass) the others.
use ndarray::{Array1, ArrayView1, arr0};
use sine_square::{check, wants};
use tesseract_guest::{Arrays, Error, Inputs, Jvp, Outputs, Schema, Tesseract, Vjp};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct BadLoops;

impl Tesseract for BadLoops {
    fn schema() -> Schema {
        sine_square::schema("bad-loops", "sine-square whose vjp loops forever")
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

impl Jvp for BadLoops {
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

impl Vjp for BadLoops {
    fn vjp(
        &self,
        inputs: &Inputs,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangent: &Arrays,
    ) -> Result<Arrays, Error> {
        let _ = (inputs, vjp_inputs, vjp_outputs, cotangent);
        // Spins until the host's deadline interrupts it.
        let mut i: u64 = 0;
        loop {
            i = std::hint::black_box(i.wrapping_add(1));
        }
    }
}

tesseract_guest::export!(BadLoops: jvp, vjp);
