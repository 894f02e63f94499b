//! Benchmark 6, looped-fallback scaling: one batched jvp request served by looping the scalar
//! export on fresh instances, in parallel (`--loop-parallelism` = cores) vs on one thread.

use std::time::Duration;

use serde_json::json;

use super::Ctx;
use crate::stats::{Contender, interleaved, ms};
use crate::wire;

#[derive(Debug, Clone)]
pub struct Looped {
    pub n: usize,
    pub k: usize,
    pub threads: usize,
    /// Parallel, then one thread.
    pub times: [Duration; 2],
}

/// # Errors
/// When a server fails.
pub fn run(ctx: &Ctx) -> anyhow::Result<Looped> {
    let (n, k) = (ctx.plan.looped_n, ctx.plan.looped_k);
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let steady = &ctx.components.steady_state;
    let threads_arg = threads.to_string();
    let parallel = ctx
        .wasm_spec(
            "wasm-steady-state-looped-parallel",
            steady,
            &[
                "--ignore-batched-exports",
                "--loop-parallelism",
                &threads_arg,
            ],
        )
        .start(&ctx.client, &ctx.log_dir)?;
    let single = ctx
        .wasm_spec(
            "wasm-steady-state-looped-1",
            steady,
            &["--ignore-batched-exports", "--loop-parallelism", "1"],
        )
        .start(&ctx.client, &ctx.log_dir)?;
    let f = wire::steady_f(n);
    let body = wire::body(&json!({
        "inputs": {"f": wire::b64_f64(&[n], &f), "coupling": 0.5},
        "jvp_inputs": ["f"],
        "jvp_outputs": ["u"],
        "tangent_vector": {"f": wire::b64_f64(&[k, n], &wire::directions(n, k))},
    }));
    let route = "jacobian_vector_product";
    let urls = [parallel.url(route), single.url(route)];
    let client = &ctx.client;
    let check = |url: &str| -> anyhow::Result<()> {
        let reply = client.post(url, &body, "application/json+base64")?;
        anyhow::ensure!(
            reply.route.as_deref() == Some("looped"),
            "{url} served by {:?}, expected the looped route",
            reply.route
        );
        Ok(())
    };
    let mut p = || check(&urls[0]);
    let mut s = || check(&urls[1]);
    let mut contenders: [Contender<'_>; 2] =
        [("looped, parallel", &mut p), ("looped, one thread", &mut s)];
    let m = interleaved(ctx.plan.rounds, ctx.plan.min_sample, &mut contenders)?;
    println!(
        "  looped jvp n={n} K={k}: {threads} threads {:.1} ms, one thread {:.1} ms",
        ms(m[0]),
        ms(m[1])
    );
    Ok(Looped {
        n,
        k,
        threads,
        times: [m[0], m[1]],
    })
}
