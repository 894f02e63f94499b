//! `batched-only`: exports ONLY `batched_jvp` and `batched_vjp`, so the host must serve a
//! single jvp/vjp through the batched export with K = 1, and derive the jacobian from basis
//! vectors.
//!
//! Maths as `derive-from-products`: `y = w·sin(x)` (shape `[n]`), `s = Σ x²` (scalar), with
//! sine-square's vectorised batched derivatives. Every (co)tangent and result carries a
//! leading batch axis of length K.

use tesseract_guest::{Arrays, BatchedJvp, BatchedVjp, Error, Inputs, Outputs, Schema, Tesseract};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct BatchedOnly;

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
        sine_square::batched_jvp(inputs, jvp_inputs, jvp_outputs, tangents, count)
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
        sine_square::batched_vjp(inputs, vjp_inputs, vjp_outputs, cotangents, count)
    }
}

tesseract_guest::export!(BatchedOnly: batched_jvp, batched_vjp);
