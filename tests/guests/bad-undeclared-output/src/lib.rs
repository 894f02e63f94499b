//! `bad-undeclared-output`: sine-square whose apply also returns `z`, which the schema does not
//! declare. `check` must fail its apply contract check, naming `z`.

use tesseract_guest::{Error, Inputs, Outputs, Schema, Tesseract};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct BadUndeclaredOutput;

impl Tesseract for BadUndeclaredOutput {
    fn schema() -> Schema {
        sine_square::schema(
            "bad-undeclared-output",
            "sine-square whose apply returns an undeclared output",
        )
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        Ok(sine_square::apply(inputs)?.with_scalar("z", 1.0f64))
    }
}

tesseract_guest::export!(BadUndeclaredOutput);
