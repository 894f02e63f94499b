//! `bad-abstract-shape`: sine-square whose abstract_eval says `y` has one element more than
//! apply returns. `check` must fail its abstract_eval-equals-apply check.
use tesseract_guest::{
    AbstractEval, AbstractInputs, AbstractOutputs, Arrays, DType, Error, Inputs, Jvp, Outputs,
    Schema, Tesseract, Vjp,
};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct BadAbstractShape;

impl Tesseract for BadAbstractShape {
    fn schema() -> Schema {
        sine_square::schema(
            "bad-abstract-shape",
            "sine-square whose abstract_eval has the wrong shape",
        )
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        sine_square::apply(inputs)
    }
}

impl Jvp for BadAbstractShape {
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

impl Vjp for BadAbstractShape {
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

impl AbstractEval for BadAbstractShape {
    /// The fault: `y` one element longer than `x`.
    fn abstract_eval(&self, inputs: &AbstractInputs) -> Result<AbstractOutputs, Error> {
        let n = inputs.shape("x")?.first().copied().unwrap_or(0);
        Ok(AbstractOutputs::new()
            .with_array("y", DType::Float64, vec![n + 1])
            .with_array("s", DType::Float64, vec![]))
    }
}

tesseract_guest::export!(BadAbstractShape: jvp, vjp, abstract_eval);
