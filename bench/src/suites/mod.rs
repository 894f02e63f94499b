//! The six benchmarks of the performance issue, each a function from the shared [`Ctx`] to
//! its results. Targets are judged in `report`, not here.

pub mod cold_start;
pub mod compute;
pub mod large_arrays;
pub mod looped;
pub mod overhead;
pub mod tangents;

use std::path::PathBuf;

use crate::client::Client;
use crate::servers::Spec;
use crate::setup::{Components, Upstream};

/// The shortest timed sample of a full run: long enough that a sub-millisecond request is
/// timed warm, as every request but the first of a slow contender's K is.
pub const MIN_SAMPLE: std::time::Duration = std::time::Duration::from_millis(20);

/// Sizes and repetitions: the full run and the smoke run differ only here.
#[derive(Debug, Clone)]
pub struct Plan {
    pub ns: Vec<usize>,
    pub ks: Vec<usize>,
    pub rounds: usize,
    /// The shortest timed sample: faster contenders repeat back to back within one
    /// ([`crate::stats::interleaved`]).
    pub min_sample: std::time::Duration,
    /// Closed-loop single-connection requests per round, tesseract-wasm and upstream.
    pub latency_requests: (usize, usize),
    pub latency_rounds: usize,
    pub connections: usize,
    pub throughput_window: std::time::Duration,
    pub throughput_rounds: usize,
    pub large_len: usize,
    pub large_rounds: usize,
    pub cold_reps: usize,
    pub compute_n: usize,
    pub lu_reps: usize,
    pub looped_n: usize,
    pub looped_k: usize,
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            ns: vec![64, 256],
            ks: vec![1, 8, 64],
            rounds: 7,
            min_sample: MIN_SAMPLE,
            latency_requests: (2000, 300),
            latency_rounds: 3,
            connections: 32,
            throughput_window: std::time::Duration::from_secs(3),
            throughput_rounds: 2,
            large_len: 1_000_000,
            large_rounds: 5,
            cold_reps: 3,
            compute_n: 256,
            lu_reps: 21,
            looped_n: 256,
            looped_k: 64,
        }
    }

    /// Tiny sizes: exercises every code path in seconds; its numbers mean nothing.
    pub fn smoke() -> Plan {
        Plan {
            ns: vec![8],
            ks: vec![1, 2],
            rounds: 1,
            min_sample: std::time::Duration::ZERO,
            latency_requests: (20, 5),
            latency_rounds: 1,
            connections: 4,
            throughput_window: std::time::Duration::from_millis(200),
            throughput_rounds: 1,
            large_len: 1000,
            large_rounds: 1,
            cold_reps: 1,
            compute_n: 16,
            lu_reps: 1,
            looped_n: 8,
            looped_k: 2,
        }
    }
}

/// Everything the benchmarks share.
pub struct Ctx {
    pub client: Client,
    pub plan: Plan,
    pub components: Components,
    pub bin: PathBuf,
    pub upstream: Upstream,
    /// Server logs.
    pub log_dir: PathBuf,
    /// The precompiled-component cache the long-running servers use (warm after the first start).
    pub cache_dir: PathBuf,
    /// Where upstream writes its per-request run directories.
    pub scratch: PathBuf,
}

impl Ctx {
    pub fn wasm_spec(&self, name: &str, wasm: &std::path::Path, extra: &[&str]) -> Spec {
        Spec::wasm(name, &self.bin, wasm, &self.cache_dir, extra)
    }

    pub fn upstream_spec(&self, name: &str, api: &std::path::Path) -> Spec {
        Spec::upstream(name, &self.upstream.runtime, api, &self.scratch.join(name))
    }
}
