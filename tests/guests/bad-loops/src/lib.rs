//! `bad-loops`: sine-square with a correct jvp and a vjp that never returns. `check` must
//! report the vjp checks as timed out and still run (and pass) the others.
use tesseract_guest::{Arrays, Error, Inputs, Jvp, Outputs, Schema, Tesseract, Vjp};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct BadLoops;

impl Tesseract for BadLoops {
    fn schema() -> Schema {
        sine_square::schema("bad-loops", "sine-square whose vjp loops forever")
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        sine_square::apply(inputs)
    }
}

impl Jvp for BadLoops {
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

impl Vjp for BadLoops {
    /// The fault: never returns.
    fn vjp(
        &self,
        inputs: &Inputs,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangent: &Arrays,
    ) -> Result<Arrays, Error> {
        let _ = (inputs, vjp_inputs, vjp_outputs, cotangent);
        // Spins until the host's deadline interrupts it.
        let mut i: u64 = 0;
        loop {
            i = std::hint::black_box(i.wrapping_add(1));
        }
    }
}

tesseract_guest::export!(BadLoops: jvp, vjp);
