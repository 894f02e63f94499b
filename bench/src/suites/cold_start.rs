//! Benchmark 4, cold start: from spawning the server process to its first successful
//! `/apply`, for tesseract-wasm with its precompiled cache warm and cold, and for
//! tesseract-core's `tesseract-runtime serve`.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;

use super::Ctx;
use crate::servers::Spec;
use crate::stats::{median, ms};
use crate::wire;

/// Give up on one start after this long.
const LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct Cold {
    pub example: &'static str,
    /// tesseract-wasm with a warm cache, with an empty one, and tesseract-core.
    pub times: [Duration; 3],
}

/// Spawns the server and POSTs `body` to `/apply` until the answer is 200.
fn time_to_first_apply(ctx: &Ctx, spec: &Spec, body: &Bytes) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut server = spec.spawn(&ctx.log_dir)?;
    let url = server.url("apply");
    loop {
        if let Ok(reply) = ctx.client.post_any(&url, body, "application/json") {
            anyhow::ensure!(
                reply.status.is_success(),
                "{} answered its first /apply with {}",
                spec.name,
                reply.status
            );
            return Ok(start.elapsed());
        }
        server.check_alive()?;
        anyhow::ensure!(
            start.elapsed() < LIMIT,
            "{} did not start within {LIMIT:?}",
            spec.name
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn one(
    ctx: &Ctx,
    example: &'static str,
    wasm: &Path,
    api: &Path,
    body: &Bytes,
) -> anyhow::Result<Cold> {
    let warm = ctx.wasm_spec(&format!("cold-start-{example}-warm"), wasm, &[]);
    // Make sure the cache really is warm.
    time_to_first_apply(ctx, &warm, body)?;
    let upstream = ctx.upstream_spec(&format!("cold-start-{example}-upstream"), api);
    let mut t = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..ctx.plan.cold_reps.max(1) {
        t[0].push(time_to_first_apply(ctx, &warm, body)?);
        let empty = tempfile::tempdir()?;
        let cold = Spec::wasm(
            &format!("cold-start-{example}-cold"),
            &ctx.bin,
            wasm,
            empty.path(),
            &[],
        );
        t[1].push(time_to_first_apply(ctx, &cold, body)?);
        t[2].push(time_to_first_apply(ctx, &upstream, body)?);
    }
    let out = Cold {
        example,
        times: [median(&t[0]), median(&t[1]), median(&t[2])],
    };
    println!(
        "  {example}: tesseract-wasm warm cache {:.1} ms, cold cache {:.1} ms; tesseract-core {:.0} ms",
        ms(out.times[0]),
        ms(out.times[1]),
        ms(out.times[2])
    );
    Ok(out)
}

/// # Errors
/// When a server never answers.
pub fn run(ctx: &Ctx) -> anyhow::Result<Vec<Cold>> {
    let rosen = Bytes::from_static(br#"{"inputs": {"x": 0.5, "y": 1.0}}"#);
    let steady = wire::body(
        &json!({"inputs": {"f": wire::b64_f64(&[64], &wire::steady_f(64)), "coupling": 0.5}}),
    );
    Ok(vec![
        one(
            ctx,
            "rosenbrock",
            &ctx.components.rosenbrock,
            &ctx.upstream.rosenbrock,
            &rosen,
        )?,
        one(
            ctx,
            "steady-state",
            &ctx.components.steady_state,
            &ctx.upstream.steady_state,
            &steady,
        )?,
    ])
}
