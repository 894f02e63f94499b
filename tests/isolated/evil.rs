//! The evil-guest suite, slow-loris and graceful shutdown, against the shipped
//! `tesseract-wasm serve` binary in a child process (see [`Server`]), so the tests read the
//! RSS and file descriptors of the real server, with its own allocator, in `/proc` and send
//! it SIGTERM.
//!
//! Every evil case is sent to one server (1 s deadline, 64 MiB guest memory, two compute
//! slots) while a neighbour keeps sending healthy requests; each case checks its status and
//! message, that it answered within the deadline plus 200 ms, that every healthy request
//! succeeded meanwhile, and that the server's RSS came back within 10% of its baseline. The
//! case → status → time → RSS table is printed (`--nocapture`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tesseract_model::Data;
use tesseract_wasm::codec::{DecodeOptions, decode_array};
use tesseract_wasm_tests::{SANDBOX_PROBE, ServeProcess};

const DEADLINE: Duration = Duration::from_secs(1);
const MIB: u64 = 1 << 20;
const GUEST_MEMORY: u64 = 64 * MIB;
/// Well past the 1 s keep-alive `http::runtime` gives idle blocking-pool threads: guest calls
/// that run past a tick move to extra worker threads from that pool (`block_in_place`), and
/// each holds its stack and allocator pages until it exits.
const IDLE_THREADS_GONE: Duration = Duration::from_secs(12);

/// The served probe, and the requests these tests send it.
struct Server(ServeProcess);

impl Server {
    fn start(wasm: &str, flags: &[&str]) -> Server {
        Server(ServeProcess::start(
            wasm,
            &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("precompiled"),
            flags,
            &[],
        ))
    }

    fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    fn rss(&self) -> u64 {
        self.0.rss()
    }

    /// Waits up to `patience` for RSS to come within 10% of `baseline`; returns the last
    /// reading and how long it waited.
    fn settled_rss(&self, baseline: u64, patience: Duration) -> (u64, Duration) {
        let started = Instant::now();
        loop {
            let rss = self.rss();
            if rss * 10 <= baseline * 11 || started.elapsed() > patience {
                return (rss, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn post(&self, path: &str, body: &Value) -> Reply {
        request(self.addr(), "POST", path, &[], &body.to_string())
    }

    fn apply(&self, inputs: Value) -> Reply {
        self.post("/apply", &json!({ "inputs": inputs }))
    }
}

/// One response.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
    elapsed: Duration,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("a JSON body ({e}): {}", self.body))
    }

    fn detail(&self) -> String {
        self.json()["detail"].to_string()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("set a read timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a complete response, got {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line, got {head:?}"));
    Reply {
        status,
        body: body.to_owned(),
        elapsed,
    }
}

/// Sends healthy requests back to back from another thread until stopped; counts successes
/// and failures.
struct Neighbour {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<std::sync::Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Neighbour {
    fn start(addr: SocketAddr) -> Neighbour {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let thread = std::thread::spawn({
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let body = json!({"inputs": {"mode": "ok", "n": i}}).to_string();
                    let r = request(addr, "POST", "/apply", &[], &body);
                    if r.status == 200 && r.json()["x"]["data"]["buffer"] == json!(f64::from(i)) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(format!("{} {}", r.status, r.body));
                    }
                }
            }
        });
        Neighbour {
            stop,
            ok,
            failed,
            thread: Some(thread),
        }
    }

    /// Lets at least three more healthy requests finish (a fast case may be over before the
    /// first), then stops; returns (successes, failures).
    fn finish(mut self) -> (usize, Vec<String>) {
        let target = self.ok.load(Ordering::Relaxed) + 3;
        let until = Instant::now() + Duration::from_secs(10);
        while self.ok.load(Ordering::Relaxed) < target && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("the neighbour thread");
        }
        let failed = std::mem::take(
            &mut *self
                .failed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        (self.ok.load(Ordering::Relaxed), failed)
    }
}

/// The evil server: short deadline, small guest memory, two compute slots, a deep queue.
fn evil_server() -> Server {
    Server::start(
        SANDBOX_PROBE,
        &[
            "--timeout",
            "1s",
            "--max-memory",
            "64M",
            "--max-concurrency",
            "2",
            "--loop-parallelism",
            "2",
            "--max-queue",
            "64",
        ],
    )
}

/// One row of the table.
struct Row {
    case: &'static str,
    status: u16,
    elapsed: Duration,
    rss_after: u64,
    settled_in: Duration,
}

/// Runs one evil case with a healthy neighbour; checks time, neighbours and RSS; returns the
/// reply for the case's own checks.
fn case(
    server: &Server,
    baseline: u64,
    rows: &mut Vec<Row>,
    name: &'static str,
    send: impl FnOnce() -> Reply,
) -> Reply {
    let neighbour = Neighbour::start(server.addr());
    let reply = send();
    let (ok, failed) = neighbour.finish();
    assert!(
        failed.is_empty(),
        "{name}: healthy requests failed meanwhile: {failed:?}"
    );
    assert!(ok > 0, "{name}: no healthy request completed meanwhile");
    let (rss_after, settled_in) = server.settled_rss(baseline, IDLE_THREADS_GONE);
    rows.push(Row {
        case: name,
        status: reply.status,
        elapsed: reply.elapsed,
        rss_after,
        settled_in,
    });
    reply
}

fn assert_within_deadline(name: &str, reply: &Reply) {
    let bound = DEADLINE + Duration::from_millis(200);
    assert!(
        reply.elapsed <= bound,
        "{name}: answered after {:?}, more than the deadline plus 200 ms",
        reply.elapsed
    );
}

fn assert_error(name: &str, reply: &Reply, status: u16, message: &str) {
    assert_eq!(reply.status, status, "{name}: {}", reply.body);
    assert!(
        reply.detail().contains(message),
        "{name}: `{message}` not in {}",
        reply.body
    );
    assert_within_deadline(name, reply);
}

/// The probe's `report` entries.
fn report(reply: &Reply) -> std::collections::BTreeMap<String, String> {
    let body = reply.json();
    body["report"]
        .as_str()
        .unwrap_or_else(|| panic!("a report in {body}"))
        .split(';')
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn evil_guests_are_contained_and_neighbours_keep_being_served() {
    let _alone = crate::one_at_a_time();
    let server = evil_server();
    // Warm up every kind of code path once, with as many connections as the busiest case:
    // the first calls map the instance pool's pages, give each thread its allocator arena and
    // each connection its buffers, and the first trap loads the symbol tables its backtrace
    // needs. RSS after that is the baseline.
    // 40 connections at once, as many as the busiest case opens.
    std::thread::scope(|s| {
        for t in 0..40 {
            let server = &server;
            s.spawn(move || {
                for i in 0..3 {
                    let mode = if i == 0 { "slow" } else { "ok" };
                    let r = server.apply(json!({"mode": mode, "n": t * 3 + i}));
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            });
        }
    });
    // Each kind of answer once: trap, deep stack, memory, output, contract errors (the dtype
    // one casts), non-finite numbers, denied WASI calls.
    for (mode, n, status) in [
        ("panic", 0, 500),
        ("recurse", 0, 500),
        ("alloc", 16 * MIB, 200),
        ("stdout", MIB, 200),
        ("wrong_shape", 0, 500),
        ("wrong_dtype", 0, 500),
        ("nonfinite", 0, 200),
        ("fs", 0, 200),
        ("net", 0, 200),
    ] {
        let r = server.apply(json!({"mode": mode, "n": n}));
        assert_eq!(r.status, status, "warm-up {mode}: {}", r.body);
    }
    // The idle server: once the warm-up's extra worker threads have passed tokio's 10 s
    // keep-alive and exited, so their stacks and allocator pages do not inflate the baseline.
    std::thread::sleep(IDLE_THREADS_GONE);
    let baseline = server.rss();
    let mut rows = Vec::new();

    let r = case(&server, baseline, &mut rows, "infinite loop", || {
        server.apply(json!({"mode": "loop"}))
    });
    assert_error("infinite loop", &r, 504, "deadline exceeded");
    assert!(r.elapsed >= DEADLINE.mul_f64(0.9), "{:?}", r.elapsed);

    // A wait in a WASI host call, where epoch interruption cannot reach.
    let r = case(&server, baseline, &mut rows, "sleep for a minute", || {
        server.apply(json!({"mode": "sleep", "n": 60_000}))
    });
    assert_error("sleep for a minute", &r, 504, "deadline exceeded");

    let r = case(&server, baseline, &mut rows, "unbounded recursion", || {
        server.apply(json!({"mode": "recurse"}))
    });
    assert_error("unbounded recursion", &r, 500, "overflowed its stack");

    let r = case(
        &server,
        baseline,
        &mut rows,
        "memory bomb (vec![1; 2×cap])",
        || server.apply(json!({"mode": "alloc", "n": 2 * GUEST_MEMORY})),
    );
    assert_error(
        "memory bomb",
        &r,
        500,
        &format!("more than {GUEST_MEMORY} bytes of memory"),
    );

    let huge: u64 = 4_000_000_000;
    let r = case(&server, baseline, &mut rows, "try_reserve(4 GB)", || {
        server.apply(json!({"mode": "try_alloc", "n": huge}))
    });
    assert_error(
        "try_reserve",
        &r,
        500,
        &format!("cannot reserve {huge} bytes"),
    );

    let r = case(&server, baseline, &mut rows, "panic", || {
        server.apply(json!({"mode": "panic"}))
    });
    assert_error("panic", &r, 500, "deliberate guest panic");

    let gib: u64 = 1 << 30;
    let r = case(
        &server,
        baseline,
        &mut rows,
        "1 GiB to stdout and stderr",
        || server.apply(json!({"mode": "stdout", "n": gib})),
    );
    // Writing is cheap (the host drops all but 64 KiB), so it finishes; were it slower, the
    // deadline would stop it: either way within the bound.
    assert_within_deadline("1 GiB of output", &r);
    match r.status {
        200 => assert_eq!(report(&r)["written"], gib.to_string()),
        504 => assert!(r.detail().contains("deadline exceeded"), "{}", r.body),
        other => panic!("1 GiB of output: status {other}: {}", r.body),
    }

    let r = case(
        &server,
        baseline,
        &mut rows,
        "output 1M× larger than declared",
        || server.apply(json!({"mode": "big_output", "n": 4_000_000})),
    );
    assert_error("big output", &r, 500, "broke its contract");

    for (name, mode) in [
        ("wrong output dtype", "wrong_dtype"),
        ("wrong output shape", "wrong_shape"),
        ("undeclared output path", "wrong_path"),
    ] {
        let r = case(&server, baseline, &mut rows, name, || {
            server.apply(json!({"mode": mode}))
        });
        assert_error(name, &r, 500, "broke its contract");
    }

    let r = case(&server, baseline, &mut rows, "NaN/±Inf as JSON", || {
        server.apply(json!({"mode": "nonfinite"}))
    });
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["v"]["data"]["buffer"],
        json!([null, null, null, 0.5]),
        "{}",
        r.body
    );
    assert_eq!(r.json()["x"]["data"]["buffer"], Value::Null, "{}", r.body);

    let r = case(&server, baseline, &mut rows, "NaN/±Inf as base64", || {
        request(
            server.addr(),
            "POST",
            "/apply",
            &[("Accept", "application/json+base64")],
            &json!({"inputs": {"mode": "nonfinite"}}).to_string(),
        )
    });
    assert_eq!(r.status, 200, "{}", r.body);
    let v = decode_array(&r.json()["v"], &DecodeOptions::default()).expect("a base64 array");
    let Data::Float64(v) = v.data() else {
        panic!("float64 v, got {v:?}")
    };
    let bits: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
    let want: Vec<u64> = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.5]
        .iter()
        .map(|x| x.to_bits())
        .collect();
    assert_eq!(bits, want, "NaN and ±Inf round-trip exactly in base64");

    for (name, mode) in [
        ("open files", "fs"),
        ("open sockets", "net"),
        ("read env and args", "env"),
    ] {
        let r = case(&server, baseline, &mut rows, name, || {
            server.apply(json!({"mode": mode}))
        });
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        for (attempt, outcome) in report(&r) {
            assert!(
                outcome.starts_with("denied") || outcome == "0",
                "{name}: {attempt} = {outcome}"
            );
        }
        assert_within_deadline(name, &r);
    }

    // 32 concurrent 100 ms calls on two compute slots: all queue, none is refused, and
    // the neighbour's requests queue with them and succeed.
    let r = case(&server, baseline, &mut rows, "slow but legal ×32", || {
        let started = Instant::now();
        let replies: Vec<Reply> = std::thread::scope(|s| {
            let calls: Vec<_> = (0..32)
                .map(|_| s.spawn(|| server.apply(json!({"mode": "slow", "n": 100}))))
                .collect();
            calls
                .into_iter()
                .map(|c| c.join().expect("a slow call"))
                .collect()
        });
        for reply in &replies {
            assert_eq!(reply.status, 200, "slow: {}", reply.body);
        }
        Reply {
            status: 200,
            body: String::new(),
            elapsed: started.elapsed(),
        }
    });
    // 32 × 100 ms on two slots is at least 1.6 s; allow a loaded machine three times that.
    assert!(
        r.elapsed < Duration::from_millis(4800),
        "32 slow calls took {:?}",
        r.elapsed
    );

    println!(
        "\n| case | status | time | RSS after (baseline {:.1} MiB) | of baseline | settled in |",
        baseline as f64 / MIB as f64
    );
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {} | {} ms | {:.1} MiB | {:.1}% | {} ms |",
            row.case,
            row.status,
            row.elapsed.as_millis(),
            row.rss_after as f64 / MIB as f64,
            100.0 * row.rss_after as f64 / baseline as f64,
            row.settled_in.as_millis()
        );
    }
    if let Some(worst) = rows.iter().max_by_key(|r| r.rss_after) {
        println!(
            "worst RSS after: {} at {:.1}% of the baseline {:.1} MiB",
            worst.case,
            100.0 * worst.rss_after as f64 / baseline as f64,
            baseline as f64 / MIB as f64
        );
    }
    // After the table, so a failure still shows every row.
    for row in &rows {
        assert!(
            row.rss_after * 10 <= baseline * 11,
            "{}: RSS {:.1} MiB did not come back within 10% of its baseline {:.1} MiB",
            row.case,
            row.rss_after as f64 / MIB as f64,
            baseline as f64 / MIB as f64
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Slow-loris
// ---------------------------------------------------------------------------------------------

/// Sends `first`, then `drip` one byte every 200 ms; returns how long until the server
/// closed the connection (and what it answered, if anything).
fn dribble(addr: SocketAddr, first: &str, drip: &str) -> (Duration, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("set a read timeout");
    let started = Instant::now();
    stream.write_all(first.as_bytes()).expect("send the start");
    let mut answer = Vec::new();
    for byte in drip.bytes().cycle() {
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
        if started.elapsed() > Duration::from_secs(20) {
            panic!("the server kept a dribbling connection open for 20 s");
        }
        if stream.write_all(&[byte]).is_err() {
            break;
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

#[test]
fn slow_loris_headers_and_bodies_are_cut_off_while_others_are_served() {
    let _alone = crate::one_at_a_time();
    let server = Server::start(
        SANDBOX_PROBE,
        &["--header-timeout", "1s", "--body-timeout", "1s"],
    );
    let addr = server.addr();
    let headers = std::thread::spawn(move || {
        dribble(
            addr,
            "POST /apply HTTP/1.1\r\nHost: test\r\n",
            "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        )
    });
    let body = std::thread::spawn(move || {
        dribble(
            addr,
            "POST /apply HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: 100000\r\n\r\n{\"inputs\": ",
            " ",
        )
    });
    // Meanwhile others are served promptly.
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..5 {
        let r = server.apply(json!({"mode": "ok", "n": i}));
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.elapsed < Duration::from_millis(500),
            "a request took {:?}",
            r.elapsed
        );
    }
    let (header_time, header_answer) = headers.join().expect("the header dribbler");
    let (body_time, body_answer) = body.join().expect("the body dribbler");
    // One timeout plus a dribble interval and scheduling slack.
    let bound = Duration::from_millis(2000);
    assert!(
        header_time < bound,
        "headers dribbled for {header_time:?} before the cut"
    );
    assert!(
        body_time < bound,
        "a body dribbled for {body_time:?} before the cut"
    );
    assert!(
        body_answer.starts_with("HTTP/1.1 408"),
        "a dribbled body gets 408: {body_answer:?}"
    );
    println!(
        "slow-loris: headers cut after {header_time:?} ({:?}), body after {body_time:?}",
        header_answer
            .lines()
            .next()
            .unwrap_or("closed without an answer")
    );
}

// ---------------------------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------------------------

/// SIGTERM during a 2-second computation lets the computation finish (200), new connections
/// are refused from then on, and the process exits 0.
#[test]
fn sigterm_lets_a_running_computation_finish_then_exits_0() {
    let _alone = crate::one_at_a_time();
    let mut server = Server::start(SANDBOX_PROBE, &["--timeout", "10s"]);
    let addr = server.addr();
    let slow = std::thread::spawn(move || {
        request(
            addr,
            "POST",
            "/apply",
            &[],
            &json!({"inputs": {"mode": "slow", "n": 2000}}).to_string(),
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    server.0.sigterm();
    std::thread::sleep(Duration::from_millis(300));
    let refused = TcpStream::connect(addr);
    assert!(
        refused.is_err(),
        "a new connection was accepted after SIGTERM"
    );
    let reply = slow.join().expect("the slow request");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(report(&reply)["spun"], "1");
    assert!(
        reply.elapsed >= Duration::from_secs(2),
        "{:?}",
        reply.elapsed
    );
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.0.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < until,
            "the server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the server exited with {status}");
}
