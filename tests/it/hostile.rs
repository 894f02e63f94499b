//! Hostile requests against a real `tesseract-wasm serve` process with its default limits:
//! bombs (base64, lz4, JSON depth and size), a huge K, shapes whose product overflows, paths
//! that escape `--input-path` or are absurdly long. Each must be refused with a 4xx naming the
//! limit, quickly, without the server's peak RSS growing by more than a few MiB.
//!
//! The server is the shipped binary in a child process ([`ServeProcess`]), so its peak RSS
//! (`VmHWM` in `/proc`) is its own and not the test runner's.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tesseract_wasm_tests::{
    EXAMPLE_ROSENBROCK, EXAMPLE_STEADY_STATE, EXAMPLE_VECTORADD, ServeProcess,
};

/// Generous: every refusal here takes milliseconds; this only catches work proportional to
/// what a request claims (100 GiB, 10^19 elements) rather than to what it sends.
const BOUND: Duration = Duration::from_secs(2);
/// Peak RSS may grow by at most this over the whole suite: the bodies themselves (a few MiB)
/// are read into memory, nothing they claim is.
const RSS_SLACK: u64 = 64 << 20;

/// A served example.
struct Server(ServeProcess);

impl Server {
    fn start(wasm: &str, flags: &[&str]) -> Server {
        Server::start_with_env(wasm, flags, &[])
    }

    fn start_with_env(wasm: &str, flags: &[&str], env: &[(&str, &str)]) -> Server {
        Server(ServeProcess::start(
            wasm,
            &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("precompiled"),
            flags,
            env,
        ))
    }

    fn peak_rss(&self) -> u64 {
        self.0.peak_rss()
    }

    /// POSTs `body` and returns the status, the JSON body and the time to answer.
    fn post(&self, path: &str, body: &str) -> (u16, Value, Duration) {
        let started = Instant::now();
        let mut stream = TcpStream::connect(self.0.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("set a read timeout");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("send the head");
        // The server may answer (and close) before reading a body it refuses.
        let _ = stream.write_all(body.as_bytes());
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let elapsed = started.elapsed();
        let text = String::from_utf8_lossy(&response);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .and_then(|(_, b)| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (status, body, elapsed)
    }
}

fn base64_array(shape: Value, dtype: &str, bytes: &[u8], lz4: bool) -> Value {
    let mut data = json!({"buffer": BASE64.encode(bytes), "encoding": "base64"});
    if lz4 {
        data["compression"] = json!("lz4");
    }
    json!({"shape": shape, "dtype": dtype, "data": data})
}

/// A small, valid lz4 frame header declaring `content_size` bytes, then one 8-byte block.
fn lz4_frame_declaring(content_size: u64) -> Vec<u8> {
    use std::hash::Hasher as _;
    let mut descriptor = vec![0x68u8, 0x40];
    descriptor.extend(content_size.to_le_bytes());
    let mut h = twox_hash::XxHash32::with_seed(0);
    h.write(&descriptor);
    let mut frame = 0x184D_2204u32.to_le_bytes().to_vec();
    frame.extend(&descriptor);
    frame.push(((h.finish() >> 8) & 0xFF) as u8);
    frame.extend((8u32 | 0x8000_0000).to_le_bytes());
    frame.extend([0u8; 8]);
    frame.extend(0u32.to_le_bytes());
    frame
}

fn jvp(tangent: Value) -> String {
    json!({"inputs": {"x": 0.5, "y": 1.0}, "jvp_inputs": ["x"], "jvp_outputs": ["result"],
           "tangent_vector": {"x": tangent}})
    .to_string()
}

fn binref(path: &str) -> String {
    json!({"inputs": {"x": {"shape": [], "dtype": "float64",
                            "data": {"buffer": path, "encoding": "binref"}}, "y": 1.0}})
    .to_string()
}

/// One hostile case: the endpoint, the body, and a phrase the refusal must contain.
struct Case {
    name: &'static str,
    server: usize,
    path: &'static str,
    body: String,
    says: &'static str,
}

#[test]
fn hostile_requests_are_refused_quickly_without_allocating() {
    let input_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(input_dir.path().join("ok.bin"), 2.0f64.to_le_bytes()).expect("write");
    std::os::unix::fs::symlink("/etc/passwd", input_dir.path().join("passwd.bin"))
        .expect("symlink");
    let input_path = input_dir.path().display().to_string();
    let servers = [
        Server::start(EXAMPLE_ROSENBROCK, &["--input-path", &input_path]),
        Server::start(EXAMPLE_VECTORADD, &[]),
        Server::start(EXAMPLE_STEADY_STATE, &[]),
    ];
    let (rosenbrock, vectoradd, steady_state) = (0, 1, 2);

    // Sanity: the same server answers a binref that stays inside the input path.
    let (status, body, _) = servers[rosenbrock].post("/apply", &binref("ok.bin"));
    assert_eq!(status, 200, "{body}");

    let deep = format!(
        "{{\"inputs\": {{\"a\": {}0{}}}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let mut leaves = String::from("{\"inputs\": {\"a\": [");
    leaves.push_str(&vec!["0"; 1_000_000].join(","));
    leaves.push_str("], \"b\": [0], \"s\": 1.0, \"normalize\": false}}");
    let cases = [
        Case {
            name: "base64 bomb: 1 TiB shape, 8-byte buffer",
            server: vectoradd,
            path: "/apply",
            body: json!({"inputs": {"a": base64_array(json!([1u64 << 38]), "float32", &[0; 8], false),
                                    "b": [0.0], "s": 1.0, "normalize": false}})
            .to_string(),
            says: "--max-array-size",
        },
        Case {
            name: "lz4 bomb: frame declaring 100 GiB",
            server: vectoradd,
            path: "/apply",
            body: json!({"inputs": {"a": base64_array(json!([25u64 << 30]), "float32", &lz4_frame_declaring(100 << 30), true),
                                    "b": [0.0], "s": 1.0, "normalize": false}})
            .to_string(),
            says: "--max-array-size",
        },
        Case {
            name: "lz4 bomb: frame declaring 100 GiB for a 4-element shape",
            server: vectoradd,
            path: "/apply",
            body: json!({"inputs": {"a": base64_array(json!([4]), "float32", &lz4_frame_declaring(100 << 30), true),
                                    "b": [0.0], "s": 1.0, "normalize": false}})
            .to_string(),
            says: "declares 107374182400 bytes",
        },
        Case {
            name: "JSON nested 100,000 deep",
            server: vectoradd,
            path: "/apply",
            body: deep,
            says: "--max-json-depth",
        },
        Case {
            name: "10^6 tiny leaves",
            server: vectoradd,
            path: "/apply",
            body: leaves,
            says: "--max-json-values",
        },
        Case {
            name: "huge K: 2^16 tangents",
            server: rosenbrock,
            path: "/jacobian_vector_product",
            body: jvp(base64_array(json!([1u64 << 16]), "float64", &vec![0; 8 << 16], false)),
            says: "--max-batch",
        },
        Case {
            name: "huge K claimed by shape alone: 2^60 tangents",
            server: rosenbrock,
            path: "/jacobian_vector_product",
            body: jvp(base64_array(json!([1u64 << 30, 1u64 << 30]), "float64", &[0; 8], false)),
            says: "--max-array-size",
        },
        Case {
            // Nested JSON lists are written one recursion per axis: this 60 KB request used to
            // overflow a server thread's stack and abort the process.
            name: "cotangent of rank 20,000",
            server: rosenbrock,
            path: "/vector_jacobian_product",
            body: json!({"inputs": {"x": 0.5, "y": 1.0}, "vjp_inputs": ["x"],
                         "vjp_outputs": ["result"],
                         "cotangent_vector": {"result": {"shape": vec![1; 20_000], "dtype": "float64",
                                                         "data": {"buffer": [1.0], "encoding": "json"}}}})
            .to_string(),
            says: "maximum supported dimension for an ndarray is 64, found 20000",
        },
        Case {
            // One tangent element broadcast to 16,000 and copied across 4096 tangents: 65 M
            // elements (500 MB) from a 60 KB body, once 1.8 GB of host memory. Broadcasts are
            // charged like decoded arrays, so the per-array limit refuses it first.
            name: "unbatched tangent copied across a batch of 4096",
            server: steady_state,
            path: "/jacobian_vector_product",
            body: json!({"inputs": {"f": vec![0.0; 16_000]}, "jvp_inputs": ["f", "coupling"],
                         "jvp_outputs": ["u"],
                         "tangent_vector": {"f": [1.0], "coupling": vec![1.0; 4096]}})
            .to_string(),
            says: "--max-array-size",
        },
        Case {
            // vectoradd has no abstract_eval export: it is derived by applying the component
            // to zeros of these shapes, 120 M elements from a 108-byte body.
            name: "abstract_eval on zeros of 2 × 60 M elements",
            server: vectoradd,
            path: "/abstract_eval",
            body: json!({"inputs": {"a": {"shape": [60_000_000], "dtype": "float32"},
                                    "b": {"shape": [60_000_000], "dtype": "float32"}}})
            .to_string(),
            says: "--max-request-elements",
        },
        Case {
            name: "shape product overflowing usize",
            server: rosenbrock,
            path: "/jacobian_vector_product",
            body: jvp(base64_array(json!([u64::MAX, u64::MAX]), "float64", &[0; 8], false)),
            says: "more elements",
        },
        Case {
            name: "binref ../../etc/passwd",
            server: rosenbrock,
            path: "/apply",
            body: binref("../../etc/passwd:0"),
            says: "must not contain '..'",
        },
        Case {
            name: "binref absolute path",
            server: rosenbrock,
            path: "/apply",
            body: binref("/etc/passwd:0"),
            says: "must be relative",
        },
        Case {
            name: "binref symlink out of the input path",
            server: rosenbrock,
            path: "/apply",
            body: binref("passwd.bin:0"),
            says: "resolves outside the input path",
        },
        Case {
            name: "binref path of 100 KB",
            server: rosenbrock,
            path: "/apply",
            body: binref(&format!("{}x.bin", "a/".repeat(50_000))),
            says: "--max-path-length",
        },
        Case {
            name: "path set entry of 100 KB",
            server: rosenbrock,
            path: "/jacobian",
            body: json!({"inputs": {"x": 0.5, "y": 1.0}, "jac_inputs": ["x".repeat(100_000)],
                         "jac_outputs": ["result"]})
            .to_string(),
            says: "--max-path-length",
        },
    ];

    let baseline: Vec<u64> = servers.iter().map(Server::peak_rss).collect();
    let mut table = vec!["case | status | time".to_owned()];
    for case in &cases {
        let server = &servers[case.server];
        let (status, body, elapsed) = server.post(case.path, &case.body);
        table.push(format!("{} | {status} | {elapsed:.0?}", case.name));
        assert!(
            (400..500).contains(&status),
            "{}: status {status}, {body}",
            case.name
        );
        let text = body.to_string();
        assert!(
            text.contains(case.says),
            "{}: the refusal should say {:?}: {}",
            case.name,
            case.says,
            // The detail echoes the input, which can be long.
            text.chars().take(600).collect::<String>()
        );
        assert!(elapsed < BOUND, "{}: took {elapsed:?}", case.name);
    }
    // Every refusal left the server up.
    let (status, body, _) = servers[rosenbrock].post("/apply", &binref("ok.bin"));
    assert_eq!(status, 200, "{body}");
    for (server, base) in servers.iter().zip(&baseline) {
        let peak = server.peak_rss();
        table.push(format!("peak RSS {} MiB → {} MiB", base >> 20, peak >> 20));
        assert!(
            peak <= base + RSS_SLACK,
            "peak RSS grew from {base} to {peak} bytes"
        );
    }
    println!("{}", table.join("\n"));
}

/// The limits are the server's to set: a flag and an environment variable tighten them, and
/// what the defaults allow is then refused, naming the flag.
#[test]
fn the_limits_follow_their_flags_and_environment_variables() {
    let tight = Server::start_with_env(
        EXAMPLE_VECTORADD,
        &["--max-json-values", "100"],
        &[("TESSERACT_WASM_MAX_ARRAY_SIZE", "64")],
    );
    let defaults = Server::start(EXAMPLE_VECTORADD, &[]);
    // vectoradd wants `a` and `b` of one shape.
    let apply = |a: Value, b: Value| {
        json!({"inputs": {"a": a, "b": b, "s": 1.0, "normalize": false}}).to_string()
    };
    let many_values = apply(json!(vec![0.5; 100]), json!(vec![0.5; 100]));
    let floats = |n: usize| base64_array(json!([n]), "float32", &vec![0; 4 * n], false);
    let sixteen = apply(floats(16), floats(16));
    let seventeen = apply(floats(17), floats(17));

    for body in [&many_values, &sixteen, &seventeen] {
        let (status, reply, _) = defaults.post("/apply", body);
        assert_eq!(status, 200, "the defaults allow it: {reply}");
    }
    let (status, reply, _) = tight.post("/apply", &many_values);
    assert_eq!(status, 422);
    assert!(reply.to_string().contains("--max-json-values"), "{reply}");
    let (status, reply, _) = tight.post("/apply", &sixteen);
    assert_eq!(status, 200, "64 bytes fit in 64: {reply}");
    let (status, reply, _) = tight.post("/apply", &seventeen);
    assert_eq!(status, 422);
    assert!(reply.to_string().contains("--max-array-size"), "{reply}");
}
