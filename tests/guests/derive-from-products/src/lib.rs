//! `derive-from-products`: exports ONLY `jvp` and `vjp` (no jacobian, no abstract_eval, no
//! batched exports), so the host must derive the jacobian from basis vectors, batches by
//! looping, and abstract_eval from apply on zeros.
//!
//! Maths (schema, apply and derivatives come from the `sine-square` crate, shared by the
//! `derive-*`, `batched-only` and `bad-*` test guests):
//! `y = w·sin(x)` (shape `[n]`) and `s = Σ x²` (scalar), for `x` a float64 vector and `w` a
//! float64 scalar, both differentiable; the jvp and vjp are sine-square's hand-written ones.

use tesseract_guest::{Arrays, Error, Inputs, Jvp, Outputs, Schema, Tesseract, Vjp};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct DeriveFromProducts;

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
        sine_square::jvp(inputs, jvp_inputs, jvp_outputs, tangent)
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
        sine_square::vjp(inputs, vjp_inputs, vjp_outputs, cotangent)
    }
}

tesseract_guest::export!(DeriveFromProducts: jvp, vjp);
