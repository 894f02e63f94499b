//! Load test: 256 keep-alive connections send mixed traffic for 30 s to two `tesseract-wasm
//! serve` processes, rosenbrock (valid apply, jvp, vjp, batched jvp on the looped route, and
//! invalid requests) and the sandbox probe (guests that loop, panic, blow their memory or
//! break their output contract). Fails (exit 1) on any dropped connection (a request without
//! a response), any malformed response (unparsable HTTP, a body that is not JSON, or a status
//! the request cannot get), or a server whose open file descriptors differ before and after.
//! Prints requests by status, p50/p99 latency and each server's peak RSS.
//!
//! `cargo run --release -p tesseract-wasm-load [-- --seconds 30 --connections 256]`
//!
//! The servers are this binary run again as `tesseract-wasm-load serve <serve args>`, which
//! is `tesseract_wasm::cli::run`, the same code as the `tesseract-wasm` binary.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tesseract_wasm_tests::{EXAMPLE_ROSENBROCK, SANDBOX_PROBE};

/// A `serve` child process; killed on drop if still running.
struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    /// Never written: when this process dies the child reads end-of-file and exits.
    _lifeline: std::process::ChildStdin,
}

impl Server {
    fn start(name: &'static str, wasm: &str, flags: &[&str]) -> anyhow::Result<Server> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["serve", wasm, "--port", "0", "--no-cache"])
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start a server process")?;
        let lifeline = child.stdin.take().context("piped stdin")?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        // Keep reading, so the server never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .with_context(|| format!("{name}: no address in {line:?}"))?
            .parse()?;
        Ok(Server {
            name,
            child,
            addr,
            _lifeline: lifeline,
        })
    }

    fn proc_status(&self, key: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// Peak resident set size so far, in MiB.
    fn peak_rss_mib(&self) -> f64 {
        self.proc_status("VmHWM:") as f64 / 1024.0
    }

    fn rss_mib(&self) -> f64 {
        self.proc_status("VmRSS:") as f64 / 1024.0
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(Iterator::count)
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One kind of request, and the statuses it may get.
struct Kind {
    name: &'static str,
    path: &'static str,
    body: String,
    accept: Option<&'static str>,
    allowed: &'static [u16],
}

fn kind(name: &'static str, path: &'static str, body: Value, allowed: &'static [u16]) -> Kind {
    Kind {
        name,
        path,
        body: body.to_string(),
        accept: None,
        allowed,
    }
}

/// Rosenbrock traffic: valid requests may still meet a full queue (503), never anything else.
fn rosenbrock_mix() -> Vec<Kind> {
    let inputs = json!({"x": 0.5, "y": 1.0});
    vec![
        kind("apply", "/apply", json!({"inputs": inputs}), &[200, 503]),
        Kind {
            accept: Some("application/json+base64"),
            ..kind(
                "apply base64",
                "/apply",
                json!({"inputs": inputs}),
                &[200, 503],
            )
        },
        kind(
            "jvp",
            "/jacobian_vector_product",
            json!({"inputs": inputs, "jvp_inputs": ["x", "y"], "jvp_outputs": ["result"],
                   "tangent_vector": {"x": 1.0, "y": 0.5}}),
            &[200, 503],
        ),
        kind(
            "vjp",
            "/vector_jacobian_product",
            json!({"inputs": inputs, "vjp_inputs": ["x", "y"], "vjp_outputs": ["result"],
                   "cotangent_vector": {"result": 1.0}}),
            &[200, 503],
        ),
        kind(
            "batched jvp (K=8, looped)",
            "/jacobian_vector_product",
            json!({"inputs": inputs, "jvp_inputs": ["x", "y"], "jvp_outputs": ["result"],
                   "tangent_vector": {"x": [1.0, 0.0, 1.0, 2.0, 0.5, 0.0, 1.0, 3.0],
                                      "y": [0.0, 1.0, 1.0, 2.0, 0.5, 1.0, 0.0, 3.0]}}),
            &[200, 503],
        ),
        kind(
            "invalid (x not a number)",
            "/apply",
            json!({"inputs": {"x": "abc", "y": 1.0}}),
            &[422, 503],
        ),
        kind(
            "invalid (not JSON)",
            "/apply",
            Value::String("{not json".into()),
            &[422, 503],
        ),
        kind("unknown route", "/nowhere", json!({}), &[404]),
    ]
}

/// Evil traffic on the probe, which serves with a 1 s deadline and 64 MiB of guest memory.
fn probe_mix() -> Vec<Kind> {
    let probe =
        |name, inputs: Value, allowed| kind(name, "/apply", json!({"inputs": inputs}), allowed);
    vec![
        probe("probe ok", json!({"mode": "ok", "n": 1}), &[200, 503]),
        probe("evil: loop", json!({"mode": "loop"}), &[504, 503]),
        probe("evil: panic", json!({"mode": "panic"}), &[500, 503]),
        probe(
            "evil: memory bomb",
            json!({"mode": "alloc", "n": 128u64 << 20}),
            &[500, 503],
        ),
        probe(
            "evil: 1 MiB of stdout",
            json!({"mode": "stdout", "n": 1u64 << 20}),
            &[200, 503],
        ),
        probe(
            "evil: oversized output",
            json!({"mode": "big_output", "n": 100_000}),
            &[500, 503],
        ),
    ]
}

#[derive(Default)]
struct Stats {
    /// (kind, status) → count.
    by_status: BTreeMap<(&'static str, u16), usize>,
    latencies: Vec<Duration>,
    ok_latencies: Vec<Duration>,
    dropped: Vec<String>,
    malformed: Vec<String>,
    reconnects: usize,
}

async fn connect(
    addr: SocketAddr,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One client connection: sends `mix` round-robin (from `offset`) until `until`.
async fn client(
    addr: SocketAddr,
    mix: Arc<Vec<Kind>>,
    offset: usize,
    until: Instant,
    stats: Arc<Mutex<Stats>>,
) {
    let mut sender = None;
    let mut i = offset;
    while Instant::now() < until {
        let k = &mix[i % mix.len()];
        i += 1;
        if sender.is_none() {
            match connect(addr).await {
                Ok(s) => sender = Some(s),
                Err(e) => {
                    lock(&stats).dropped.push(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        if s.ready().await.is_err() {
            // The server closed the connection between requests: legal, if it said so.
            lock(&stats).reconnects += 1;
            sender = None;
            continue;
        }
        let mut request = Request::post(k.path)
            .header("host", "load")
            .header("content-type", "application/json");
        if let Some(accept) = k.accept {
            request = request.header("accept", accept);
        }
        let Ok(request) = request.body(Full::new(Bytes::from(k.body.clone()))) else {
            continue;
        };
        let started = Instant::now();
        let outcome = async {
            let response = s.send_request(request).await?;
            let status = response.status().as_u16();
            let closes = response
                .headers()
                .get("connection")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body, closes))
        }
        .await;
        let elapsed = started.elapsed();
        let backoff = {
            let mut st = lock(&stats);
            let mut backoff = false;
            match outcome {
                Err(e) => {
                    st.dropped.push(format!("{}: {e:#}", k.name));
                    sender = None;
                }
                Ok((status, body, closes)) => {
                    st.latencies.push(elapsed);
                    if status == 200 {
                        st.ok_latencies.push(elapsed);
                    }
                    *st.by_status.entry((k.name, status)).or_default() += 1;
                    if !k.allowed.contains(&status) {
                        st.malformed.push(format!(
                            "{}: status {status}: {}",
                            k.name,
                            String::from_utf8_lossy(&body)
                        ));
                    } else if serde_json::from_slice::<Value>(&body).is_err() {
                        st.malformed.push(format!("{}: body is not JSON", k.name));
                    }
                    if closes {
                        sender = None;
                    }
                    backoff = status == 503;
                }
            }
            backoff
        };
        if backoff {
            // As Retry-After asks (1 s): a well-behaved client backs off.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

fn lock(stats: &Mutex<Stats>) -> std::sync::MutexGuard<'_, Stats> {
    stats.lock().unwrap_or_else(PoisonError::into_inner)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Waits up to 10 s for a server's open descriptors to come back to `before`.
fn settled_fds(server: &Server, before: usize) -> usize {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let now = server.open_fds();
        if now == before || Instant::now() > until {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn arg(args: &[String], name: &str, default: u64) -> anyhow::Result<u64> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{name} needs a value"))?
            .parse()
            .with_context(|| format!("{name} takes a number")),
        None => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        // The server role: end with the process that started it.
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(3);
        });
        let argv = std::iter::once("tesseract-wasm".to_owned()).chain(args[1..].iter().cloned());
        let code = tesseract_wasm::cli::run(argv, &mut std::io::stdout(), &mut std::io::stderr());
        std::process::exit(code);
    }
    let seconds = arg(&args, "--seconds", 30)?;
    let connections = usize::try_from(arg(&args, "--connections", 256)?)?;
    let evil_connections = connections / 8;

    let main_server = Server::start(
        "rosenbrock",
        EXAMPLE_ROSENBROCK,
        &["--max-queue", "512", "--max-connections", "1024"],
    )?;
    let probe_server = Server::start(
        "sandbox-probe",
        SANDBOX_PROBE,
        &["--timeout", "1s", "--max-memory", "64M"],
    )?;
    let servers = [&main_server, &probe_server];

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Warm up, then take the baselines.
    let warm_until = Instant::now() + Duration::from_millis(500);
    let warm = Arc::new(Mutex::new(Stats::default()));
    rt.block_on(async {
        let mut tasks = Vec::new();
        for (addr, mix) in [
            (main_server.addr, Arc::new(rosenbrock_mix())),
            (probe_server.addr, Arc::new(probe_mix())),
        ] {
            for c in 0..4 {
                tasks.push(tokio::spawn(client(
                    addr,
                    mix.clone(),
                    c,
                    warm_until,
                    warm.clone(),
                )));
            }
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let fds_before: Vec<usize> = servers.iter().map(|s| s.open_fds()).collect();
    let rss_before: Vec<f64> = servers.iter().map(|s| s.rss_mib()).collect();

    let stats = Arc::new(Mutex::new(Stats::default()));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    rt.block_on(async {
        let main_mix = Arc::new(rosenbrock_mix());
        let probe_mix = Arc::new(probe_mix());
        let mut tasks = Vec::new();
        for c in 0..connections {
            let (addr, mix) = if c < evil_connections {
                (probe_server.addr, probe_mix.clone())
            } else {
                (main_server.addr, main_mix.clone())
            };
            tasks.push(tokio::spawn(client(addr, mix, c, until, stats.clone())));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let wall = started.elapsed();
    drop(rt);

    let fds_after: Vec<usize> = servers
        .iter()
        .zip(&fds_before)
        .map(|(s, &b)| settled_fds(s, b))
        .collect();
    let mut st = lock(&stats);
    st.latencies.sort();
    st.ok_latencies.sort();
    let total = st.latencies.len();
    println!(
        "{connections} connections ({evil_connections} on the probe) for {:.1} s: {total} responses ({:.0}/s), {} reconnects",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64(),
        st.reconnects
    );
    println!("\n| request | status | count |\n|---|---|---|");
    for ((name, status), count) in &st.by_status {
        println!("| {name} | {status} | {count} |");
    }
    println!(
        "\nlatency, all responses: p50 {:.1} ms, p99 {:.1} ms; 200s only: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&st.latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&st.latencies, 0.99).as_secs_f64() * 1e3,
        percentile(&st.ok_latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&st.ok_latencies, 0.99).as_secs_f64() * 1e3,
    );
    for (i, s) in servers.iter().enumerate() {
        println!(
            "{}: RSS {:.1} MiB before, peak {:.1} MiB, {:.1} MiB after; open fds {} before, {} after",
            s.name,
            rss_before[i],
            s.peak_rss_mib(),
            s.rss_mib(),
            fds_before[i],
            fds_after[i]
        );
    }
    println!(
        "dropped: {}, malformed: {}",
        st.dropped.len(),
        st.malformed.len()
    );
    for line in st.dropped.iter().chain(&st.malformed).take(10) {
        println!("  {line}");
    }
    if !st.dropped.is_empty() || !st.malformed.is_empty() {
        bail!("dropped or malformed responses");
    }
    if fds_before != fds_after {
        bail!("open file descriptors changed: {fds_before:?} before, {fds_after:?} after");
    }
    if total == 0 {
        bail!("no responses at all");
    }
    // A server answering everything with 503 would pass the checks above: every kind of
    // request must also have met its real answer.
    let names: std::collections::BTreeSet<&str> = st.by_status.keys().map(|(n, _)| *n).collect();
    let only_busy: Vec<&str> = names
        .into_iter()
        .filter(|n| !st.by_status.keys().any(|(m, s)| m == n && *s != 503))
        .collect();
    if !only_busy.is_empty() {
        bail!("only 503s for: {}", only_busy.join(", "));
    }
    Ok(())
}
