//! The command line, in process through `tesseract_wasm::cli::run`: `inspect --json` names
//! the route of every endpoint, and `run` answers a request or reports a 422.

use serde_json::{Value, json};
use tesseract_wasm_tests::{
    BAD_UNDECLARED_OUTPUT, BATCHED_ONLY, DERIVE_FROM_JACOBIAN, DERIVE_FROM_PRODUCTS,
    EXAMPLE_ROSENBROCK, EXAMPLE_STEADY_STATE,
};

/// Runs the CLI; returns (exit code, stdout, stderr). Every command gets a fresh cache
/// directory, so nothing is written to the user's cache.
fn cli(args: &[&str]) -> (i32, String, String) {
    let cache = tempfile::tempdir().expect("a temporary cache directory");
    let cache = cache.path().to_str().expect("UTF-8 temp path").to_owned();
    let mut argv: Vec<String> = std::iter::once("tesseract-wasm")
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect();
    if matches!(args.first(), Some(&"inspect" | &"run" | &"build")) {
        argv.extend(["--cache-dir".to_owned(), cache]);
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tesseract_wasm::cli::run(argv, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).expect("UTF-8 stdout"),
        String::from_utf8(err).expect("UTF-8 stderr"),
    )
}

/// `inspect --json`'s `endpoints`, as endpoint name → route name.
fn routes(path: &str) -> serde_json::Map<String, Value> {
    let (code, out, err) = cli(&["inspect", path, "--json"]);
    assert_eq!(code, 0, "inspect failed: {err}");
    let report: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("inspect --json printed invalid JSON ({e}): {out}"));
    let endpoints = report["endpoints"]
        .as_object()
        .unwrap_or_else(|| panic!("no endpoints in {report}"));
    endpoints
        .iter()
        .map(|(name, e)| (name.clone(), e["route"].clone()))
        .collect()
}

#[test]
fn inspect_json_reports_looped_and_native_batches() {
    let rosenbrock = routes(EXAMPLE_ROSENBROCK);
    assert_eq!(rosenbrock["batched_jacobian_vector_product"], "looped");
    assert_eq!(rosenbrock["batched_vector_jacobian_product"], "looped");
    assert_eq!(rosenbrock["jacobian_vector_product"], "native");

    let steady = routes(EXAMPLE_STEADY_STATE);
    assert_eq!(steady["batched_jacobian_vector_product"], "native");
    assert_eq!(steady["batched_vector_jacobian_product"], "native");
}

#[test]
fn inspect_json_names_every_derived_route() {
    let products = routes(DERIVE_FROM_PRODUCTS);
    assert_eq!(products["jacobian"], "basis");
    assert_eq!(products["abstract_eval"], "apply-on-zeros");
    assert_eq!(products["apply"], "native");

    let jacobian = routes(DERIVE_FROM_JACOBIAN);
    for e in [
        "jacobian_vector_product",
        "vector_jacobian_product",
        "batched_jacobian_vector_product",
        "batched_vector_jacobian_product",
    ] {
        assert_eq!(jacobian[e], "from-jacobian", "{e}");
    }

    let batched = routes(BATCHED_ONLY);
    assert_eq!(batched["jacobian_vector_product"], "batched-export");
    assert_eq!(batched["vector_jacobian_product"], "batched-export");
    assert_eq!(batched["batched_jacobian_vector_product"], "native");
}

#[test]
fn run_answers_a_request() {
    let (code, out, err) = cli(&[
        "run",
        EXAMPLE_ROSENBROCK,
        "apply",
        r#"{"inputs": {"x": 0.5, "y": 1.0}}"#,
    ]);
    assert_eq!(code, 0, "run failed: {err}");
    let body: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("run printed invalid JSON ({e}): {out}"));
    assert_eq!(body["result"]["data"]["buffer"], json!(56.5), "{body}");
    assert_eq!(body["result"]["shape"], json!([]));
}

#[test]
fn run_reports_an_invalid_request_as_422() {
    let (code, out, err) = cli(&[
        "run",
        EXAMPLE_ROSENBROCK,
        "apply",
        r#"{"inputs": {"x": [0.5, 1.0]}}"#,
    ]);
    assert_eq!(code, 1, "stdout: {out}");
    assert!(err.contains("422"), "{err}");
    assert!(err.contains("array_dimensionality_mismatch"), "{err}");
}

#[test]
fn lz4_without_base64_output_is_refused_not_ignored() {
    let payload = r#"{"inputs": {"x": 0.5, "y": 1.0}}"#;
    let (code, out, err) = cli(&["run", EXAMPLE_ROSENBROCK, "apply", payload, "--lz4"]);
    assert_eq!(code, 1, "stdout: {out}");
    assert!(err.contains("needs --output-format json+base64"), "{err}");
    let (code, out, err) = cli(&[
        "run",
        EXAMPLE_ROSENBROCK,
        "apply",
        payload,
        "--lz4",
        "--output-format",
        "json+base64",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("lz4"), "{out}");
}

#[test]
fn bad_usage_exits_2() {
    let (code, _, err) = cli(&["frobnicate"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = cli(&["run", EXAMPLE_ROSENBROCK, "aply", "{}"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("possible values: apply, jacobian"), "{err}");
    // Limits of 0 would refuse every request (or every call): usage errors naming the flag.
    for flag in [
        "--max-memory",
        "--max-result-size",
        "--max-array-size",
        "--max-json-values",
        "--max-request-elements",
        "--loop-parallelism",
        "--max-batch",
    ] {
        let (code, _, err) = cli(&["run", EXAMPLE_ROSENBROCK, "apply", "{}", flag, "0"]);
        assert_eq!(code, 2, "{flag}: {err}");
        assert!(err.contains(&format!("'{flag} <")), "{flag}: {err}");
    }
}

/// `build` compiles a guest crate, checks it is a Tesseract, prints its capabilities, and
/// prints the `.wasm` path as its last line. It shares the test guests' target directory, so
/// it only relinks what `build.rs` already built.
#[test]
fn build_prints_capabilities_and_the_wasm_path_last() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let crate_dir = root.join("guest-example").join("rosenbrock");
    let target_dir = root.join("target").join("guests");
    let (code, out, err) = cli(&[
        "build",
        crate_dir.to_str().expect("UTF-8 path"),
        "--target-dir",
        target_dir.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(code, 0, "build failed: {err}");
    assert!(out.contains("rosenbrock 0.1.0"), "{out}");
    assert!(
        out.contains("batched_jacobian_vector_product") && out.contains("looped"),
        "{out}"
    );
    let last = out.lines().last().expect("some output");
    assert!(
        last.ends_with("example_rosenbrock.wasm"),
        "last line: {last}"
    );
    assert!(
        std::path::Path::new(last).is_file(),
        "{last} does not exist"
    );
}

#[test]
fn build_of_a_directory_without_a_crate_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, _, err) = cli(&["build", dir.path().to_str().expect("UTF-8 path")]);
    assert_eq!(code, 1);
    assert!(err.contains("no Cargo.toml"), "{err}");
}

/// `run` applies `serve`'s JSON limits to its payload, before parsing it: nesting past
/// `--max-json-depth` (default 64) and more values than `--max-json-values` are refused with
/// the limit's name and exit code 1, and nothing is printed to stdout.
#[test]
fn run_refuses_a_payload_past_the_json_limits() {
    let deep = format!(
        r#"{{"inputs": {{"x": {}0.5{}, "y": 1.0}}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let (code, out, err) = cli(&["run", EXAMPLE_ROSENBROCK, "apply", &deep]);
    assert_eq!(code, 1, "stdout: {out}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("JSON nested deeper than") && err.contains("--max-json-depth"),
        "{err}"
    );

    // A valid payload of four values (two objects, two numbers) is over a limit of three.
    let (code, out, err) = cli(&[
        "run",
        EXAMPLE_ROSENBROCK,
        "apply",
        r#"{"inputs": {"x": 0.5, "y": 1.0}}"#,
        "--max-json-values",
        "3",
    ]);
    assert_eq!(code, 1, "stdout: {out}");
    assert!(err.contains("--max-json-values"), "{err}");
    // The 422 body `serve` would answer, as for every other refused request.
    assert!(
        err.contains(r#"{"detail":[{"type":"json_invalid""#),
        "{err}"
    );
}

#[test]
fn run_reads_pythons_non_finite_tokens_as_serve_does() {
    let (code, out, err) = cli(&[
        "run",
        EXAMPLE_ROSENBROCK,
        "apply",
        r#"{"inputs": {"x": NaN, "y": 1.0}}"#,
    ]);
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).expect("JSON");
    // NaN in, NaN out, written as null (as tesseract-core's orjson does).
    assert_eq!(answer["result"]["data"]["buffer"], Value::Null, "{answer}");
}

/// Runs the shipped binary with its stdout closed before it writes anything (`… | head -1`
/// with a head that already left); returns the exit status and stderr.
fn with_stdout_closed(args: &[&str]) -> (std::process::ExitStatus, String) {
    use std::process::{Command, Stdio};
    let cache = tempfile::tempdir().expect("a temporary cache directory");
    let mut child = Command::new(tesseract_wasm_tests::server_binary())
        .args(args)
        .arg("--cache-dir")
        .arg(cache.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tesseract-wasm");
    // Closed before the component is even compiled (a fresh cache), so every write fails
    // with EPIPE (Rust ignores SIGPIPE).
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    let (status, stderr) = with_stdout_closed(&["inspect", EXAMPLE_STEADY_STATE]);
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    // ...but not the verdict: `check | head` still fails a failing component.
    let (status, stderr) = with_stdout_closed(&["check", BAD_UNDECLARED_OUTPUT]);
    assert_eq!(status.code(), Some(1), "{stderr}");
}

#[test]
fn build_of_a_workspace_without_guest_crates_says_so_before_compiling() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"host\"]\nresolver = \"3\"\n",
    );
    write(
        "host/Cargo.toml",
        "[package]\nname = \"host\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    );
    write("host/src/lib.rs", "");
    let root = dir.path().to_str().expect("UTF-8 temp path");
    let (code, _, err) = cli(&["build", root]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is a workspace with no guest crate"), "{err}");
    assert!(
        !dir.path().join("target").exists(),
        "nothing was compiled: {err}"
    );
}

#[test]
fn a_memory_cap_below_the_components_initial_memory_names_the_flag() {
    let (code, _, err) = cli(&["inspect", EXAMPLE_ROSENBROCK, "--max-memory", "64K"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("initial linear memory is larger than --max-memory allows"),
        "{err}"
    );
}
