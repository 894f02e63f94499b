//! The Tesseract the `derive-*` and `batched-only` test guests share: `y = w·sin(x)` (shape
//! `[n]`) and `s = Σ x²` (scalar), for `x` a float64 vector and `w` a float64 scalar, both
//! differentiable. Each guest adds the derivatives it exports; this crate holds what they have
//! in common, so they differ only in which exports the host has to work around.

use tesseract_guest::{DType, Error, Field, Inputs, Outputs, Schema};

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
