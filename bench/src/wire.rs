//! Request bodies in tesseract-core's wire format, and reading arrays back out of answers.
//!
//! Every contender gets the same bytes: arrays travel as base64 (the cheapest encoding both
//! servers accept), scalars as JSON numbers.

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};

/// A float64 array as tesseract-core's base64 encoded-array object.
pub fn b64_f64(shape: &[usize], data: &[f64]) -> Value {
    let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    json!({"shape": shape, "dtype": "float64", "data": {"buffer": STANDARD.encode(bytes), "encoding": "base64"}})
}

/// A float32 array as tesseract-core's base64 encoded-array object.
pub fn b64_f32(shape: &[usize], data: &[f32]) -> Value {
    let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    json!({"shape": shape, "dtype": "float32", "data": {"buffer": STANDARD.encode(bytes), "encoding": "base64"}})
}

pub fn body(v: &Value) -> Bytes {
    Bytes::from(v.to_string())
}

/// The elements of an encoded array (json or base64, float64 or float32) as f64, in C order,
/// with its shape.
///
/// # Errors
/// When `v` is not an encoded array of floats.
pub fn read_array(v: &Value) -> anyhow::Result<(Vec<usize>, Vec<f64>)> {
    let shape: Vec<usize> = v
        .get("shape")
        .and_then(Value::as_array)
        .context("no shape")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).context("bad dimension"))
        .collect::<anyhow::Result<_>>()?;
    let dtype = v.get("dtype").and_then(Value::as_str).context("no dtype")?;
    let data = v.get("data").context("no data")?;
    let buffer = data.get("buffer").context("no buffer")?;
    let values = match data.get("encoding").and_then(Value::as_str) {
        Some("base64") => {
            let raw = STANDARD
                .decode(buffer.as_str().context("base64 buffer is not a string")?)
                .context("bad base64")?;
            match dtype {
                "float64" => raw
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
                "float32" => raw
                    .chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap_or([0; 4]))))
                    .collect(),
                other => bail!("unexpected dtype {other}"),
            }
        }
        Some("json") => {
            let mut out = Vec::new();
            flatten(buffer, &mut out)?;
            out
        }
        other => bail!("unexpected encoding {other:?}"),
    };
    Ok((shape, values))
}

fn flatten(v: &Value, out: &mut Vec<f64>) -> anyhow::Result<()> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| flatten(i, out)),
        Value::Number(n) => {
            out.push(n.as_f64().context("not a float")?);
            Ok(())
        }
        // JSON output writes NaN as null.
        Value::Null => {
            out.push(f64::NAN);
            Ok(())
        }
        other => bail!("not a number: {other}"),
    }
}

/// `max|a − b| / max|b|`: the largest difference relative to the reference's scale (an
/// elementwise relative difference would blow up on entries that are rounding noise around 0).
pub fn max_rel_diff(a: &[f64], reference: &[f64]) -> f64 {
    if a.len() != reference.len() {
        return f64::INFINITY;
    }
    let scale = reference
        .iter()
        .fold(0.0f64, |m, x| m.max(x.abs()))
        .max(1e-300);
    let worst = a.iter().zip(reference).fold(0.0f64, |w, (x, y)| {
        if (x - y).is_nan() {
            f64::NAN
        } else {
            w.max((x - y).abs())
        }
    });
    worst / scale
}

/// steady-state's source term of length n, the same in every contender and in `core`.
pub fn steady_f(n: usize) -> Vec<f64> {
    (0..n).map(|i| (i as f64 * 0.37).sin() * 2.0).collect()
}

/// K deterministic directions of length n, stacked C-ordered as [K, n].
pub fn directions(n: usize, k: usize) -> Vec<f64> {
    (0..k * n)
        .map(|i| ((i * 7919 % 1000) as f64 / 500.0) - 1.0)
        .collect()
}

/// K deterministic coupling tangents.
pub fn coupling_tangents(k: usize) -> Vec<f64> {
    (0..k).map(|i| (i as f64 * 0.5).cos()).collect()
}
