//! Benchmark 3, large arrays: vectoradd apply on two float32 vectors of 10⁶ elements sent as
//! base64, answered as json+base64 and as json, against the physical floor measured in the
//! same run: base64-decoding the inputs, encoding the output, and one memcpy of each.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use super::Ctx;
use crate::stats::{Contender, interleaved, ms};
use crate::wire;

#[derive(Debug, Clone)]
pub struct Large {
    /// "json+base64" or "json".
    pub format: &'static str,
    pub len: usize,
    /// (a) tesseract-core, (b) tesseract-wasm, and the floor.
    pub times: [Duration; 3],
}

fn inputs(len: usize) -> (Vec<f32>, Vec<f32>) {
    let a = (0..len).map(|i| (i % 1000) as f32 * 0.001).collect();
    let b = (0..len).map(|i| 1.0 - (i % 777) as f32 * 0.002).collect();
    (a, b)
}

/// The floor for one request: decode both inputs, copy them once, compute nothing, copy the
/// output once (into its byte form) and encode it in `format`, with the fastest crates the
/// server itself uses (SIMD base64), so the floor is not inflated by a slower codec.
fn floor(a_b64: &str, b_b64: &str, output: &[f64], format: &str) -> anyhow::Result<()> {
    let base64 = base64_simd::STANDARD;
    let a = base64.decode_to_vec(a_b64)?;
    let b = base64.decode_to_vec(b_b64)?;
    black_box((a.to_vec(), b.to_vec()));
    let encoded = if format == "json" {
        serde_json::to_vec(&output.to_vec())?
    } else {
        let bytes: Vec<u8> = output.iter().flat_map(|x| x.to_le_bytes()).collect();
        base64.encode_to_string(bytes).into_bytes()
    };
    black_box(encoded);
    Ok(())
}

/// # Errors
/// When a server fails or the two disagree.
pub fn run(ctx: &Ctx) -> anyhow::Result<Vec<Large>> {
    let len = ctx.plan.large_len;
    let wasm = ctx
        .wasm_spec("wasm-vectoradd", &ctx.components.vectoradd, &[])
        .start(&ctx.client, &ctx.log_dir)?;
    let upstream = ctx
        .upstream_spec("upstream-vectoradd", &ctx.upstream.vectoradd)
        .start(&ctx.client, &ctx.log_dir)?;
    let (a, b) = inputs(len);
    let (ea, eb) = (wire::b64_f32(&[len], &a), wire::b64_f32(&[len], &b));
    let a_b64 = ea["data"]["buffer"].as_str().unwrap_or_default().to_owned();
    let b_b64 = eb["data"]["buffer"].as_str().unwrap_or_default().to_owned();
    let body: Bytes = wire::body(&json!({"inputs": {"a": ea, "b": eb}}));
    let expected: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| f64::from(x * 1.0 + y))
        .collect();
    let urls = [upstream.url("apply"), wasm.url("apply")];

    let mut out = Vec::new();
    for (format, accept) in [
        ("json+base64", "application/json+base64"),
        ("json", "application/json"),
    ] {
        for (who, url) in ["tesseract-core", "tesseract-wasm"].iter().zip(&urls) {
            let v = ctx.client.post(url, &body, accept)?.json()?;
            let (shape, got) = wire::read_array(&v["result"])?;
            let diff = wire::max_rel_diff(&got, &expected);
            anyhow::ensure!(
                shape == [len] && diff == 0.0,
                "vectoradd ({format}) from {who}: shape {shape:?}, max relative difference {diff:e}"
            );
        }
        let client = &ctx.client;
        let mut ua = || client.post(&urls[0], &body, accept).map(drop);
        let mut ub = || client.post(&urls[1], &body, accept).map(drop);
        let mut fl = || floor(&a_b64, &b_b64, &expected, format);
        let mut contenders: [Contender<'_>; 3] = [
            ("(a) tesseract-core", &mut ua),
            ("(b) tesseract-wasm", &mut ub),
            ("floor", &mut fl),
        ];
        let m = interleaved(ctx.plan.large_rounds, ctx.plan.min_sample, &mut contenders)?;
        println!(
            "  vectoradd {len} × 2 float32, answer {format}: (a) {:.1} ms, (b) {:.1} ms, floor {:.2} ms",
            ms(m[0]),
            ms(m[1]),
            ms(m[2])
        );
        out.push(Large {
            format,
            len,
            times: [m[0], m[1], m[2]],
        });
    }
    Ok(out)
}
