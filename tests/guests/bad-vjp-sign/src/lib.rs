//! `bad-vjp-sign`: sine-square (`y = w·sin(x)`, `s = Σx²`) whose vjp returns the negated
//! gradient. `check` must fail its vjp-against-finite-differences and dot-product checks.
use tesseract_guest::{Arrays, Error, Inputs, Jvp, Outputs, Schema, Tesseract, Vjp};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct BadVjpSign;

impl Tesseract for BadVjpSign {
    fn schema() -> Schema {
        sine_square::schema("bad-vjp-sign", "sine-square whose vjp has a flipped sign")
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        sine_square::apply(inputs)
    }
}

impl Jvp for BadVjpSign {
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

impl Vjp for BadVjpSign {
    /// The fault: the correct vjp, negated.
    fn vjp(
        &self,
        inputs: &Inputs,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangent: &Arrays,
    ) -> Result<Arrays, Error> {
        let right = sine_square::vjp(inputs, vjp_inputs, vjp_outputs, cotangent)?;
        let mut out = Arrays::new();
        for p in vjp_inputs {
            out.insert(p, right.get::<f64>(p)?.mapv(|v| -v));
        }
        Ok(out)
    }
}

tesseract_guest::export!(BadVjpSign: jvp, vjp);
