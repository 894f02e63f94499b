//! `derive-from-jacobian`: exports ONLY `jacobian`, so the host must derive jvp and vjp (single
//! and batched) by contracting it, and abstract_eval from apply on zeros.
//!
//! Maths as `derive-from-products`: `y = w·sin(x)` (shape `[n]`), `s = Σ x²` (scalar).
//! Blocks: ∂y/∂x = diag(w·cos x) `[n, n]`, ∂y/∂w = sin x `[n]`, ∂s/∂x = 2x `[n]`, ∂s/∂w = 0 `[]`.

use ndarray::{Array2, arr0};
use tesseract_guest::{
    DType, Error, Field, Inputs, Jacobian, JacobianBlocks, Outputs, Schema, Tesseract,
};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct DeriveFromJacobian;

fn check(kind: &str, paths: &[String], allowed: &[&str]) -> Result<(), Error> {
    match paths.iter().find(|p| !allowed.contains(&p.as_str())) {
        Some(p) => Err(Error::invalid_input(format!(
            "`{p}` is not a differentiable {kind}"
        ))),
        None => Ok(()),
    }
}

impl Tesseract for DeriveFromJacobian {
    fn schema() -> Schema {
        Schema::new("derive-from-jacobian", "0.1.0")
            .description("y = w·sin(x), s = Σx²; exports only jacobian.")
            .input(Field::array("x", DType::Float64, [None]).differentiable())
            .input(Field::scalar("w", DType::Float64).differentiable())
            .output(Field::array("y", DType::Float64, [None]).differentiable())
            .output(Field::scalar("s", DType::Float64).differentiable())
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        let x = inputs.array1::<f64>("x")?;
        let w = inputs.scalar::<f64>("w")?;
        Ok(Outputs::new()
            .with_array("y", x.mapv(|v| w * v.sin()))
            .with_scalar("s", x.dot(&x)))
    }
}

impl Jacobian for DeriveFromJacobian {
    fn jacobian(
        &self,
        inputs: &Inputs,
        jac_inputs: &[String],
        jac_outputs: &[String],
    ) -> Result<JacobianBlocks, Error> {
        check("input", jac_inputs, &["x", "w"])?;
        check("output", jac_outputs, &["y", "s"])?;
        let x = inputs.array1::<f64>("x")?;
        let w = inputs.scalar::<f64>("w")?;
        let mut blocks = JacobianBlocks::new();
        for out in jac_outputs {
            for input in jac_inputs {
                match (out.as_str(), input.as_str()) {
                    ("y", "x") => {
                        blocks.insert(out, input, Array2::from_diag(&x.mapv(|v| w * v.cos())))
                    }
                    ("y", _) => blocks.insert(out, input, x.mapv(f64::sin)),
                    (_, "x") => blocks.insert(out, input, x.mapv(|v| 2.0 * v)),
                    _ => blocks.insert(out, input, arr0(0.0)),
                }
            }
        }
        Ok(blocks)
    }
}

tesseract_guest::export!(DeriveFromJacobian: jacobian);
