//! Results whose lists alias one guest buffer (issue 5): the canonical ABI lets a guest hand
//! back many (pointer, length) pairs over the same bytes, and lifting would copy them once
//! each. The host gives each call's lift a budget of `--max-result-size` host bytes, charged
//! before each list or string is allocated, so the `sandbox-probe` modes `alias` (64 arrays
//! over one 16 MiB buffer: 1 GiB if lifted) and `alias_text` (the same with strings) are
//! refused with a contract error, and the budget is fresh for the next call.
//!
//! In process through [`Tesseract`], and against the shipped `serve` binary, whose peak RSS
//! must stay far below what the aliases would cost.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tesseract_wasm::component::Tesseract;
use tesseract_wasm::engine::{Engine, Limits};
use tesseract_wasm::sandbox::CallError;
use tesseract_wasm_tests::{SANDBOX_PROBE, ServeProcess};

use crate::support::*;

const MIB: u64 = 1 << 20;
/// Guest memory of the small engine and server: the 16 MiB buffer fits.
const GUEST_MEMORY: u64 = 48 * MIB;
/// Result budget of the small engine and server: below wasmtime's own default (128 MiB), so
/// the message shows ours.
const BUDGET: u64 = 96 * MIB;
/// What lifting the 64 aliases of the probe's 16 MiB buffer would take.
const ALIASED_BYTES: u64 = 64 * 16 * MIB;

/// An engine with [`limits`], sharing the test suite's precompiled cache.
fn engine_with(max_memory_bytes: u64, max_result_bytes: u64) -> Engine {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("precompiled");
    new_engine(limits(max_memory_bytes, max_result_bytes), Some(cache))
}

fn limits(max_memory_bytes: u64, max_result_bytes: u64) -> Limits {
    Limits {
        max_memory_bytes,
        timeout: Duration::from_secs(10),
        max_output_bytes: 64 << 10,
        loop_parallelism: 1,
        max_result_bytes,
    }
}

/// The probe on an engine with [`GUEST_MEMORY`]. The engine lives as long as the process: its
/// epoch ticker stops when it is dropped.
fn small_probe() -> Arc<Tesseract> {
    static PROBE: OnceLock<(Engine, Arc<Tesseract>)> = OnceLock::new();
    let (_, probe) = PROBE.get_or_init(|| {
        let engine = engine_with(GUEST_MEMORY, BUDGET);
        let probe = Tesseract::load(&engine, std::path::Path::new(SANDBOX_PROBE))
            .unwrap_or_else(|e| panic!("cannot load the probe: {e}"));
        (engine, probe)
    });
    Arc::clone(probe)
}

fn apply(component: &Tesseract, mode: &str, n: u64) -> Result<tesseract_model::Tree, CallError> {
    component.call_apply(tree(component, json!({ "mode": mode, "n": n })))
}

fn over_budget(budget: u64) -> CallError {
    CallError::Contract(format!(
        "its result would take more than {budget} bytes of host memory"
    ))
}

#[test]
fn aliased_arrays_are_refused_and_each_call_has_a_fresh_budget() {
    let probe = small_probe();
    for attempt in 0..2 {
        let err = apply(&probe, "alias", 0).expect_err("1 GiB of aliases cannot be lifted");
        assert_eq!(err, over_budget(BUDGET), "attempt {attempt}");
        assert_eq!(
            err.to_string(),
            "the component broke its contract: its result would take more than 100663296 \
             bytes of host memory"
        );
    }
    let out = apply(&probe, "ok", 3).expect("a healthy call after refused ones");
    assert_eq!(scalar_of(array(&out, "x")), 3.0);
}

#[test]
fn aliased_strings_are_refused() {
    let probe = small_probe();
    assert_eq!(
        apply(&probe, "alias_text", 0).expect_err("1 GiB of aliased text cannot be lifted"),
        over_budget(BUDGET)
    );
    let out = apply(&probe, "ok", 4).expect("a healthy call after a refused one");
    assert_eq!(scalar_of(array(&out, "x")), 4.0);
}

#[test]
fn the_budget_is_the_operators_past_wasmtimes_default() {
    // 136 MB of float64s in one honest array: more than the 128 MiB wasmtime allows a lift by
    // default, within a 160 MiB budget. (In process: the host side holds it once, ~136 MB.)
    let engine = engine_with(160 * MIB, 160 * MIB);
    let probe = Tesseract::load(&engine, std::path::Path::new(SANDBOX_PROBE))
        .unwrap_or_else(|e| panic!("cannot load the probe: {e}"));
    let n = 17_000_000;
    let out = apply(&probe, "big_output", n).expect("an honest result within the budget");
    assert_eq!(array(&out, "v").shape(), [n as usize]);
    drop(out);
    // The same engine still refuses aliases: 64 × 16 MiB is more than 160 MiB.
    assert_eq!(
        apply(&probe, "alias", 0).expect_err("aliases past 160 MiB"),
        over_budget(160 * MIB)
    );
}

/// The served probe.
struct Server(ServeProcess);

impl Server {
    fn start(flags: &[&str]) -> Server {
        Server(ServeProcess::start(
            SANDBOX_PROBE,
            &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("precompiled"),
            flags,
            &[],
        ))
    }

    /// `POST /apply` on a fresh connection: (status, JSON body, time to answer).
    fn apply(&self, inputs: Value) -> (u16, Value, Duration) {
        let body = json!({ "inputs": inputs }).to_string();
        let started = Instant::now();
        let mut stream = TcpStream::connect(self.0.addr).expect("connect to the server");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("set a read timeout");
        write!(
            stream,
            "POST /apply HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send the request");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).expect("read the response");
        let elapsed = started.elapsed();
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("a complete response, got {raw:?}"));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a status line, got {head:?}"));
        let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON ({e}): {body}"));
        (status, body, elapsed)
    }
}

#[test]
fn a_served_aliasing_result_is_a_500_in_bounded_time_and_memory() {
    // The guest returns at once; the deadline only bounds the wait (the rule:
    // deadline + 200 ms). 2 s leaves room for a loaded 2-core machine (0.7 s seen).
    let deadline = Duration::from_secs(2);
    let server = Server::start(&[
        "--timeout",
        "2s",
        "--max-memory",
        "48M",
        "--max-result-size",
        "96M",
        "--max-concurrency",
        "1",
        "--loop-parallelism",
        "1",
    ]);
    for i in 0..5 {
        let (status, body, _) = server.apply(json!({ "mode": "ok", "n": i }));
        assert_eq!(status, 200, "warm-up: {body}");
    }
    let baseline = server.0.rss();
    for mode in ["alias", "alias_text"] {
        server.0.reset_peak();
        let (status, body, elapsed) = server.apply(json!({ "mode": mode }));
        let peak = server.0.peak_rss();
        eprintln!(
            "{mode}: {status} in {elapsed:?}; RSS baseline {} MiB, peak {} MiB (budget {} MiB, \
             aliases {} MiB)",
            baseline / MIB,
            peak / MIB,
            BUDGET / MIB,
            ALIASED_BYTES / MIB
        );
        assert_eq!(status, 500, "{mode}: {body}");
        assert_eq!(
            body["detail"],
            format!(
                "the component broke its contract: its result would take more than {BUDGET} \
                 bytes of host memory"
            ),
            "{mode}"
        );
        assert!(
            elapsed <= deadline + Duration::from_millis(200),
            "{mode}: answered in {elapsed:?}"
        );
        // At most the guest's memory plus the budget, nowhere near the 1 GiB of aliases.
        assert!(
            peak < baseline + GUEST_MEMORY + BUDGET,
            "{mode}: peak RSS {peak} B over a baseline of {baseline} B"
        );
        let (status, body, _) = server.apply(json!({ "mode": "ok", "n": 7 }));
        assert_eq!(status, 200, "a healthy request after {mode}: {body}");
        assert_eq!(body["x"]["data"]["buffer"], json!(7.0), "{body}");
    }
}
