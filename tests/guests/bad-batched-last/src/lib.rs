//! `bad-batched-last`: sine-square with a correct scalar jvp and a batched jvp export that
//! scales the last batch element by 1.5. `check` must fail its batched-jvp checks (against
//! single jvps and against the looped fallback), naming the last element.
use tesseract_guest::ndarray::Axis;
use tesseract_guest::{Arrays, BatchedJvp, Error, Inputs, Jvp, Outputs, Schema, Tesseract, Vjp};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct BadBatchedLast;

impl Tesseract for BadBatchedLast {
    fn schema() -> Schema {
        sine_square::schema(
            "bad-batched-last",
            "sine-square whose batched jvp is wrong in its last element",
        )
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        sine_square::apply(inputs)
    }
}

impl Jvp for BadBatchedLast {
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

impl Vjp for BadBatchedLast {
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

impl BatchedJvp for BadBatchedLast {
    /// The fault: the correct batched jvp with its last element scaled by 1.5.
    fn batched_jvp(
        &self,
        inputs: &Inputs,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangents: &Arrays,
        count: usize,
    ) -> Result<Arrays, Error> {
        let right = sine_square::batched_jvp(inputs, jvp_inputs, jvp_outputs, tangents, count)?;
        let mut out = Arrays::new();
        for p in jvp_outputs {
            let mut stacked = right.get::<f64>(p)?.to_owned();
            if let Some(last) = count.checked_sub(1) {
                stacked
                    .index_axis_mut(Axis(0), last)
                    .mapv_inplace(|v| v * 1.5);
            }
            out.insert(p, stacked);
        }
        Ok(out)
    }
}

tesseract_guest::export!(BadBatchedLast: jvp, vjp, batched_jvp);
