//! Benchmark 2, per-request overhead: rosenbrock apply with scalar inputs, so nearly all of
//! the time is the server's. Closed-loop latency on one connection, then throughput with many.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Ctx;
use crate::client::Client;
use crate::stats::percentile;

#[derive(Debug, Clone)]
pub struct Overhead {
    /// p50 and p99 latency, (a) tesseract-core and (b) tesseract-wasm.
    pub p50: [Duration; 2],
    pub p99: [Duration; 2],
    /// Requests per second with `connections` closed-loop clients.
    pub throughput: [f64; 2],
    pub connections: usize,
    /// The `--max-queue` (b) was started with, reported beside the throughput.
    pub max_queue: usize,
    pub samples: [usize; 2],
}

fn latencies(
    client: &Client,
    url: &str,
    body: &Bytes,
    count: usize,
    into: &mut Vec<Duration>,
) -> anyhow::Result<()> {
    for _ in 0..count {
        let t = Instant::now();
        client.post(url, body, "application/json")?;
        into.push(t.elapsed());
    }
    Ok(())
}

/// # Errors
/// When a server fails to start or answers anything but 200.
pub fn run(ctx: &Ctx) -> anyhow::Result<Overhead> {
    let plan = &ctx.plan;
    // Queue room for every connection: tesseract-wasm answers 503 past its queue (upstream's
    // uvicorn queues without limit), and the throughput run counts only 200s.
    let max_queue = plan.connections * 2;
    let queue = max_queue.to_string();
    let wasm = ctx
        .wasm_spec(
            "wasm-rosenbrock",
            &ctx.components.rosenbrock,
            &["--max-queue", &queue],
        )
        .start(&ctx.client, &ctx.log_dir)?;
    let upstream = ctx
        .upstream_spec("upstream-rosenbrock", &ctx.upstream.rosenbrock)
        .start(&ctx.client, &ctx.log_dir)?;
    let body = Bytes::from_static(br#"{"inputs": {"x": 0.5, "y": 1.0}}"#);
    let urls = [upstream.url("apply"), wasm.url("apply")];
    let counts = [plan.latency_requests.1, plan.latency_requests.0];

    // Warm-up, and a check that both compute the same thing.
    let answers: Vec<serde_json::Value> = urls
        .iter()
        .map(|u| ctx.client.post(u, &body, "application/json")?.json())
        .collect::<anyhow::Result<_>>()?;
    let values: Vec<f64> = answers
        .iter()
        .map(|a| {
            a.get("result")
                .ok_or_else(|| anyhow::anyhow!("no `result` in {a}"))
                .and_then(crate::wire::read_array)
                .map(|(_, v)| v.first().copied().unwrap_or(f64::NAN))
        })
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(
        (values[0] - values[1]).abs() <= 1e-12 * values[0].abs().max(1.0),
        "rosenbrock apply disagrees: tesseract-core {} vs tesseract-wasm {}",
        values[0],
        values[1]
    );
    for (u, &c) in urls.iter().zip(&counts) {
        latencies(&ctx.client, u, &body, c / 10 + 1, &mut Vec::new())?;
    }

    let mut lat = [Vec::new(), Vec::new()];
    for _ in 0..plan.latency_rounds {
        for i in 0..2 {
            latencies(&ctx.client, &urls[i], &body, counts[i], &mut lat[i])?;
        }
    }
    let mut done = [0u64; 2];
    let mut elapsed = [Duration::ZERO; 2];
    for _ in 0..plan.throughput_rounds {
        for i in 0..2 {
            let t = Instant::now();
            done[i] +=
                ctx.client
                    .saturate(&urls[i], &body, plan.connections, plan.throughput_window)?;
            elapsed[i] += t.elapsed();
        }
    }
    let out = Overhead {
        p50: [percentile(&lat[0], 50.0), percentile(&lat[1], 50.0)],
        p99: [percentile(&lat[0], 99.0), percentile(&lat[1], 99.0)],
        throughput: [0, 1].map(|i| done[i] as f64 / elapsed[i].as_secs_f64()),
        connections: plan.connections,
        max_queue,
        samples: [lat[0].len(), lat[1].len()],
    };
    println!(
        "  latency p50/p99: (a) {:.0}/{:.0} µs, (b) {:.0}/{:.0} µs; throughput at {} connections: (a) {:.0}/s, (b) {:.0}/s",
        crate::stats::us(out.p50[0]),
        crate::stats::us(out.p99[0]),
        crate::stats::us(out.p50[1]),
        crate::stats::us(out.p99[1]),
        out.connections,
        out.throughput[0],
        out.throughput[1]
    );
    Ok(out)
}
