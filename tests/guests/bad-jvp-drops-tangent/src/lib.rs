//! `bad-jvp-drops-tangent`: sine-square whose jvp ignores the tangent of `w`. `check` must fail
//! its jvp-against-finite-differences check.
use sine_square::check;
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

impl Jvp for BadJvpDropsTangent {
    /// The fault: the correct jvp as if `w` had not been asked for.
    fn jvp(
        &self,
        inputs: &Inputs,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangent: &Arrays,
    ) -> Result<Arrays, Error> {
        check("input", jvp_inputs, &["x", "w"])?;
        let without_w: Vec<String> = jvp_inputs.iter().filter(|p| *p != "w").cloned().collect();
        sine_square::jvp(inputs, &without_w, jvp_outputs, tangent)
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
        sine_square::vjp(inputs, vjp_inputs, vjp_outputs, cotangent)
    }
}

tesseract_guest::export!(BadJvpDropsTangent: jvp, vjp);
