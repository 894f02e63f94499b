//! `refuses-generated-inputs`: sine-square with one more input, `count`, a float64 scalar
//! setting (not differentiable, no default) that must hold a whole number: a domain
//! constraint the schema cannot state, so apply answers anything else with `invalid-input`.
//! Random generated inputs never qualify: `check` cannot test it without `--inputs` and must
//! say so (inconclusive) instead of passing; with a case giving a whole `count`, every check
//! runs there. The maths ignores `count`.

use tesseract_guest::{Arrays, DType, Error, Field, Inputs, Jvp, Outputs, Schema, Tesseract, Vjp};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct RefusesGeneratedInputs;

impl Tesseract for RefusesGeneratedInputs {
    fn schema() -> Schema {
        sine_square::schema(
            "refuses-generated-inputs",
            "sine-square with a whole-number `count` setting",
        )
        .input(Field::scalar("count", DType::Float64))
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        if inputs.scalar::<f64>("count")?.fract() != 0.0 {
            return Err(Error::invalid_input("`count` must be a whole number"));
        }
        sine_square::apply(inputs)
    }
}

impl Jvp for RefusesGeneratedInputs {
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

impl Vjp for RefusesGeneratedInputs {
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

tesseract_guest::export!(RefusesGeneratedInputs: jvp, vjp);
