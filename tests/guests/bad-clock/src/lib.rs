//! `bad-clock`: sine-square whose `s` carries a trace of the wall clock (WASI clocks are
//! available to guests), so two identical calls differ. `check` must fail its determinism check.

use std::time::{SystemTime, UNIX_EPOCH};

use tesseract_guest::{Error, Inputs, Outputs, Schema, Tesseract};

/// The test Tesseract.
#[derive(Debug, Default)]
pub struct BadClock;

/// Nanoseconds of the wall clock, as a tiny offset.
fn clock_noise() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos) * 1e-18
}

impl Tesseract for BadClock {
    fn schema() -> Schema {
        sine_square::schema("bad-clock", "sine-square that reads the clock")
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        let x = inputs.array1::<f64>("x")?;
        let w = inputs.scalar::<f64>("w")?;
        Ok(Outputs::new()
            .with_array("y", x.mapv(|v| w * v.sin()))
            .with_scalar("s", x.dot(&x) + clock_noise()))
    }
}

tesseract_guest::export!(BadClock);
