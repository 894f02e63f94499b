//! The sandbox, through the `sandbox-probe` guest on an engine with small limits (1 s deadline,
//! 64 MiB memory, 2 loop workers): deadlines, the memory cap, traps, stack overflow, denied
//! WASI capabilities, truncated stdio, and a host whose memory stays flat over many calls.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde_json::json;
use tesseract_model::{ErrorKind, GuestError, Plain, Tree};
use tesseract_wasm::sandbox::CallError;
use tesseract_wasm_tests::{EXAMPLE_STEADY_STATE, SANDBOX_PROBE};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

use crate::examples::{source, steady_state_at};
use crate::support::*;

const MIB: u64 = 1 << 20;

/// Runs the probe in `mode` on the small-limits engine.
fn probe(mode: &str, n: u64) -> Result<Tree, CallError> {
    let component = load_sandboxed(SANDBOX_PROBE);
    let inputs = tree(&component, json!({ "mode": mode, "n": n }));
    component.call_apply(inputs)
}

/// The probe's `report`, as `key → value`.
fn report(out: &Tree) -> BTreeMap<String, String> {
    let Plain::Text(text) = plain(out, "report") else {
        panic!("report is a string")
    };
    text.split(';')
        .map(|entry| {
            let (k, v) = entry
                .split_once('=')
                .unwrap_or_else(|| panic!("malformed report entry `{entry}`"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// Runs the probe in `mode`, which must not finish within the deadline, and checks that it is
/// stopped as a timeout at the deadline: not before, and not long after.
fn assert_stopped_at_the_deadline(mode: &str, n: u64) {
    let limit = sandbox_limits().timeout;
    let start = Instant::now();
    let err = probe(mode, n).expect_err("the call cannot finish within its deadline");
    let elapsed = start.elapsed();
    assert_eq!(err, CallError::Timeout { limit }, "{mode}");
    assert!(
        elapsed >= limit.mul_f64(0.9),
        "{mode}: stopped after {elapsed:?}, before its {limit:?} deadline"
    );
    assert!(
        elapsed < limit.mul_f64(1.5),
        "{mode}: took {elapsed:?} to stop a call with a {limit:?} deadline"
    );
}

#[test]
fn infinite_loop_is_stopped_by_the_deadline() {
    assert_stopped_at_the_deadline("loop", 0);
    // The next call gets a fresh instance and its own deadline.
    assert_eq!(
        scalar_of(array(&probe("ok", 3).expect("a call after a timeout"), "x")),
        3.0
    );
}

#[test]
fn a_guest_that_sleeps_past_its_deadline_is_stopped_at_the_deadline() {
    // Sleeping is a WASI host call (`wasi:io/poll`); epoch interruption only reaches wasm code,
    // so without a bounded wait the guest would hold its thread and slot for the whole minute.
    assert_stopped_at_the_deadline("sleep", 60_000);
    // Time spent waiting counts: a guest that sleeps through most of its deadline and then
    // spins is stopped at the deadline, not one full timeout after it woke.
    assert_stopped_at_the_deadline("sleep_then_loop", 900);
    // A short sleep inside the deadline is legal and returns normally.
    let out = probe("sleep", 10).expect("a 10 ms sleep fits a 1 s deadline");
    assert_eq!(report(&out)["slept"], "10");
}

#[test]
fn allocation_past_the_memory_cap_is_a_memory_limit_error() {
    let cap = sandbox_limits().max_memory_bytes;
    assert_eq!(
        probe("alloc", 2 * cap).expect_err("128 MiB cannot fit in 64 MiB"),
        CallError::MemoryLimit { limit_bytes: cap }
    );
    // Below the cap the same code runs fine, so the error is the cap, not the mode.
    let out = probe("alloc", 16 * MIB).expect("16 MiB fits");
    assert_eq!(report(&out)["allocated"], (16 * MIB).to_string());
}

#[test]
fn fallible_allocation_past_the_cap_fails_cleanly_in_the_guest() {
    let cap = sandbox_limits().max_memory_bytes;
    match probe("try_alloc", 2 * cap) {
        Err(CallError::Guest(GuestError {
            kind: ErrorKind::Failed,
            message,
        })) => {
            assert!(
                message.contains(&format!("cannot reserve {} bytes", 2 * cap)),
                "{message}"
            );
        }
        other => panic!("expected the guest's own `failed` error, got {other:?}"),
    }
    assert_eq!(
        report(&probe("try_alloc", MIB).expect("1 MiB fits"))["reserved"],
        MIB.to_string()
    );
}

#[test]
fn panic_is_a_trap_with_its_message_and_the_component_keeps_working() {
    match probe("panic", 0) {
        Err(CallError::Trap {
            message: Some(message),
            ..
        }) => {
            assert!(message.contains("deliberate guest panic"), "{message}");
        }
        other => panic!("expected a trap carrying the panic message, got {other:?}"),
    }
    let again = probe("ok", 5).expect("the same loaded component serves the next call");
    assert_eq!(report(&again)["mode"], "ok");
    assert_eq!(scalar_of(array(&again, "x")), 5.0);
}

#[test]
fn filesystem_access_is_denied() {
    let r = report(&probe("fs", 0).expect("fs probe returns"));
    assert_eq!(r.keys().collect::<Vec<_>>(), ["create", "read", "read_dir"]);
    for (attempt, outcome) in &r {
        assert!(outcome.starts_with("denied"), "{attempt}: {outcome}");
    }
}

#[test]
fn network_access_is_denied() {
    let r = report(&probe("net", 0).expect("net probe returns"));
    assert_eq!(r.keys().collect::<Vec<_>>(), ["tcp_connect", "udp_bind"]);
    for (attempt, outcome) in &r {
        assert!(outcome.starts_with("denied"), "{attempt}: {outcome}");
    }
}

#[test]
fn environment_and_arguments_are_empty() {
    let r = report(&probe("env", 0).expect("env probe returns"));
    assert_eq!((r["vars"].as_str(), r["args"].as_str()), ("0", "0"));
}

#[test]
fn unbounded_recursion_is_a_stack_overflow() {
    assert_eq!(
        probe("recurse", 0).expect_err("recursion without end"),
        CallError::StackOverflow
    );
}

/// Records the fields of every event logged under the `guest` target.
#[derive(Clone, Default)]
struct GuestLog(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for GuestLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "guest" {
            let mut fields = Fields::default();
            event.record(&mut fields);
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(fields.0);
        }
    }
}

#[test]
fn stdout_spam_is_truncated_and_the_call_succeeds() {
    let n: u64 = 10_000_000;
    let log = GuestLog::default();
    let subscriber = tracing_subscriber::registry().with(log.clone());
    let out = tracing::subscriber::with_default(subscriber, || probe("stdout", n))
        .expect("printing 10 MB is not an error");
    assert_eq!(report(&out)["written"], n.to_string());

    let kept = sandbox_limits().max_output_bytes as u64;
    let events = log.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
    for stream in ["stdout", "stderr"] {
        let event = events
            .iter()
            .find(|e| e.get("stream").map(String::as_str) == Some(stream))
            .unwrap_or_else(|| panic!("no {stream} log event in {events:?}"));
        assert_eq!(
            event["dropped_bytes"],
            (n - kept).to_string(),
            "{stream}: all but the first {kept} bytes are dropped"
        );
        let x_count = event["message"].bytes().filter(|&b| b == b'x').count() as u64;
        assert_eq!(
            x_count, kept,
            "{stream}: the log keeps exactly {kept} bytes of output"
        );
    }
}

const RSS_CHILD: &str = "TESSERACT_WASM_TESTS_RSS_CHILD";

/// Resident set size of this process, from `/proc/self/status` (`VmRSS`, in kB).
fn rss_bytes() -> u64 {
    let status =
        std::fs::read_to_string("/proc/self/status").expect("/proc/self/status is readable");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS is reported");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS is a number of kB");
    kb * 1024
}

/// Measured in a child process running only this test, so that no other test's memory moves
/// the numbers: 50 warm-up calls, then 1,000 calls must add less than 32 MiB.
#[test]
fn host_rss_stays_flat_over_1000_calls() {
    if std::env::var_os(RSS_CHILD).is_some() {
        let rt = runtime(EXAMPLE_STEADY_STATE);
        let inputs = steady_state_at(&rt, &source(32), 0.7, 1e-12);
        let probe_component = load(SANDBOX_PROBE);
        let probe_inputs = tree(&probe_component, json!({ "mode": "stdout", "n": 100_000 }));
        let call = |i: usize| {
            rt.apply(inputs.clone()).expect("steady-state apply");
            if i.is_multiple_of(10) {
                probe_component
                    .call_apply(probe_inputs.clone())
                    .expect("probe apply");
            }
        };
        (0..50).for_each(call);
        let before = rss_bytes();
        (0..1000).for_each(call);
        let after = rss_bytes();
        println!("RSS before: {before} B, after 1000 calls: {after} B");
        assert!(
            after < before + 32 * MIB,
            "RSS grew by {} MiB over 1000 calls",
            (after - before) / MIB
        );
        return;
    }
    let name = format!(
        "{}::host_rss_stays_flat_over_1000_calls",
        module_path!().split_once("::").map_or("", |(_, m)| m)
    );
    let child =
        std::process::Command::new(std::env::current_exe().expect("the test binary's path"))
            .args(["--exact", &name, "--test-threads=1", "--nocapture"])
            .env(RSS_CHILD, "1")
            .output()
            .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(
        child.status.success(),
        "the child measurement failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed") && stdout.contains("RSS before"),
        "the child did not run the measurement:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
}
