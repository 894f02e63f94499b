//! `derive-from-jacobian`: exports ONLY `jacobian`, so the host must derive jvp and vjp (single
//! and batched) by contracting it, and abstract_eval from apply on zeros.
//!
//! Maths as `derive-from-products`: `y = w·sin(x)` (shape `[n]`), `s = Σ x²` (scalar).
//! Blocks: ∂y/∂x = diag(w·cos x) `[n, n]`, ∂y/∂w = sin x `[n]`, ∂s/∂x = 2x `[n]`, ∂s/∂w = 0 `[]`.

use ndarray::{Array2, arr0};
use sine_square::check;
use tesseract_guest::{Error, Inputs, Jacobian, JacobianBlocks, Outputs, Schema, Tesseract};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct DeriveFromJacobian;

impl Tesseract for DeriveFromJacobian {
    fn schema() -> Schema {
        sine_square::schema(
            "derive-from-jacobian",
            "y = w·sin(x), s = Σx²; exports only jacobian.",
        )
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        sine_square::apply(inputs)
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
