//! `tesseract-wasm check` through the CLI entry (`tesseract_wasm::cli::run`): it passes on the
//! three examples, fails each wrong guest in `tests/guests/bad-*` naming the check that caught
//! it, reports a looping endpoint as timed out while the other checks still run, and its
//! `--json` output parses.

use serde_json::{Value, json};
use tesseract_wasm_tests::{
    BAD_ABSTRACT_SHAPE, BAD_BATCHED_LAST, BAD_CLOCK, BAD_JVP_DROPS_TANGENT, BAD_LOOPS,
    BAD_UNDECLARED_OUTPUT, BAD_VJP_SIGN, EXAMPLE_ROSENBROCK, EXAMPLE_STEADY_STATE,
    EXAMPLE_VECTORADD,
};

/// Runs `check` on `path` with `args`; returns (exit code, stdout, stderr).
pub(crate) fn check(path: &str, args: &[&str]) -> (i32, String, String) {
    let cache = tempfile::tempdir().expect("a temporary cache directory");
    let cache = cache.path().to_str().expect("UTF-8 temp path").to_owned();
    let argv: Vec<String> = ["tesseract-wasm", "check", path, "--cache-dir", &cache]
        .into_iter()
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tesseract_wasm::cli::run(argv, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).expect("UTF-8 stdout"),
        String::from_utf8(err).expect("UTF-8 stderr"),
    )
}

/// `check --json`'s report.
fn report(path: &str, args: &[&str]) -> (i32, Value) {
    let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
    let (code, out, err) = check(path, &args);
    let report: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("check --json printed invalid JSON ({e}): {out}\n{err}"));
    (code, report)
}

fn rows(report: &Value) -> &Vec<Value> {
    report["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows in {report}"))
}

/// The rows whose verdict is `verdict`, as (check, detail).
fn with_verdict<'a>(report: &'a Value, verdict: &str) -> Vec<(&'a str, &'a str)> {
    rows(report)
        .iter()
        .filter(|r| r["verdict"] == verdict)
        .map(|r| {
            (
                r["check"].as_str().unwrap_or_default(),
                r["detail"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

/// Asserts `check` fails with exit code 1 and that `failing` is among the failed checks, its
/// detail containing `detail`.
fn assert_fails(path: &str, failing: &str, detail: &str) -> Value {
    let (code, report) = report(path, &["--timeout", "2s"]);
    let failed = with_verdict(&report, "fail");
    assert_eq!(code, 1, "check should fail; failed rows: {failed:?}");
    assert_eq!(report["passed"], false);
    assert!(
        failed
            .iter()
            .any(|(c, d)| *c == failing && d.contains(detail)),
        "expected `{failing}` to fail with \"{detail}\"; failed: {failed:#?}"
    );
    report
}

#[test]
fn check_passes_on_the_three_examples() {
    for path in [EXAMPLE_VECTORADD, EXAMPLE_ROSENBROCK, EXAMPLE_STEADY_STATE] {
        let (code, out, err) = check(path, &["--seed", "3"]);
        assert_eq!(code, 0, "check failed on {path}:\n{out}\n{err}");
        let summary = out.lines().last().unwrap_or_default();
        assert!(summary.contains(" 0 failed"), "{summary}");
        for group in ["contract/", "gradient/", "batching/", "determinism/"] {
            assert!(
                out.lines()
                    .any(|l| l.starts_with(group) && l.ends_with("pass")),
                "no passing {group} check for {path}:\n{out}"
            );
        }
    }
}

#[test]
fn the_steady_state_batched_export_is_compared_with_the_looped_fallback() {
    let (code, report) = report(EXAMPLE_STEADY_STATE, &[]);
    assert_eq!(code, 0, "{report:#}");
    let row = rows(&report)
        .iter()
        .find(|r| r["check"] == "batching/batched jvp export = looped fallback")
        .unwrap_or_else(|| panic!("no export-vs-fallback row in {report:#}"));
    assert_eq!(row["route"], "native");
    assert_eq!(row["verdict"], "pass");
    assert!(row["error"].as_f64().is_some_and(|e| e <= 1e-10), "{row}");
    // Every gradient row states its error and tolerance.
    for r in rows(&report).iter().filter(|r| {
        r["check"]
            .as_str()
            .is_some_and(|c| c.starts_with("gradient/"))
    }) {
        assert!(r["error"].is_number() && r["tolerance"].is_number(), "{r}");
    }
}

#[test]
fn a_flipped_vjp_fails_the_finite_difference_and_dot_product_checks() {
    let report = assert_fails(
        BAD_VJP_SIGN,
        "gradient/vjp vs finite differences",
        "above the tolerance",
    );
    let failed = with_verdict(&report, "fail");
    assert!(
        failed
            .iter()
            .any(|(c, _)| c.starts_with("gradient/dot product")),
        "{failed:#?}"
    );
    // The jvp is right, and is reported so.
    let passed = with_verdict(&report, "pass");
    assert!(
        passed
            .iter()
            .any(|(c, _)| *c == "gradient/jvp vs finite differences")
    );
}

#[test]
fn a_jvp_that_drops_a_tangent_fails_against_finite_differences() {
    let report = assert_fails(
        BAD_JVP_DROPS_TANGENT,
        "gradient/jvp vs finite differences",
        "above the tolerance",
    );
    let passed = with_verdict(&report, "pass");
    assert!(
        passed
            .iter()
            .any(|(c, _)| *c == "gradient/vjp vs finite differences")
    );
}

#[test]
fn a_batched_export_wrong_in_its_last_element_fails_the_batching_checks() {
    let report = assert_fails(
        BAD_BATCHED_LAST,
        "batching/batched jvp K=8 = 8 x jvp",
        "batch element 7 of 8",
    );
    let failed = with_verdict(&report, "fail");
    assert!(
        failed.iter().any(
            |(c, d)| *c == "batching/batched jvp export = looped fallback"
                && d.contains("batch element 7 of 8")
        ),
        "{failed:#?}"
    );
    // Its looped vjp batches are fine.
    let passed = with_verdict(&report, "pass");
    assert!(
        passed
            .iter()
            .any(|(c, _)| *c == "batching/batched vjp K=3 = 3 x vjp")
    );
}

#[test]
fn a_wrong_abstract_eval_shape_fails_the_contract() {
    assert_fails(
        BAD_ABSTRACT_SHAPE,
        "contract/abstract_eval = apply",
        "says `y` is float64 (4,), apply returned float64 (3,)",
    );
}

#[test]
fn an_undeclared_output_fails_the_apply_contract() {
    assert_fails(
        BAD_UNDECLARED_OUTPUT,
        "contract/apply",
        "undeclared output `z`",
    );
    // The report is that one row, so it says why.
    assert_fails(
        BAD_UNDECLARED_OUTPUT,
        "contract/apply",
        "the other checks at this point need apply's outputs and did not run",
    );
}

#[test]
fn a_guest_that_reads_the_clock_fails_determinism() {
    assert_fails(BAD_CLOCK, "determinism/apply", "different bits for `s`");
}

#[test]
fn a_looping_vjp_is_reported_as_timed_out_and_the_other_checks_still_run() {
    let (code, report) = report(BAD_LOOPS, &["--timeout", "1s"]);
    assert_eq!(code, 1);
    let failed = with_verdict(&report, "fail");
    assert!(
        failed
            .iter()
            .any(|(c, d)| *c == "contract/vjp" && d.contains("timed out")),
        "{failed:#?}"
    );
    // Later vjp checks do not wait for the deadline again.
    assert!(
        failed
            .iter()
            .any(|(c, d)| *c == "gradient/vjp vs finite differences"
                && d.contains("not called again")),
        "{failed:#?}"
    );
    let passed = with_verdict(&report, "pass");
    for after in [
        "gradient/jvp vs finite differences",
        "batching/batched jvp K=8 = 8 x jvp",
        "determinism/jvp",
    ] {
        assert!(
            passed.iter().any(|(c, _)| *c == after),
            "`{after}` should pass: {passed:#?}"
        );
    }
}

#[test]
fn regression_cases_pass_within_tolerance_and_fail_outside_it() {
    let case = |expected: f64| {
        json!({
            "endpoint": "apply",
            "payload": {"inputs": {"x": 0.5, "y": 1.0}},
            "expected": {"result": {"object_type": "array", "shape": [], "dtype": "float64",
                                    "data": {"buffer": expected, "encoding": "json"}}},
            "rtol": 1e-9,
        })
    };
    // (1 − x)² + 100 (y − x²)² at (0.5, 1.0).
    let exact = 0.25 + 100.0 * 0.75f64.powi(2);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("cases.json");
    // ∂f/∂x = −2(1 − x) − 400x(y − x²) = −151 there.
    let jvp = json!({
        "endpoint": "jacobian_vector_product",
        "payload": {"inputs": {"x": 0.5, "y": 1.0}, "jvp_inputs": ["x"], "jvp_outputs": ["result"],
                    "tangent_vector": {"x": 1.0}},
        "expected": {"result": -151.0},
        "rtol": 1e-12,
    });
    let cases = json!([case(exact), case(exact * (1.0 + 1e-6)), jvp]);
    std::fs::write(&file, cases.to_string()).expect("write the cases");
    let arg = format!("@{}", file.display());
    let (code, report) = report(EXAMPLE_ROSENBROCK, &["--inputs", &arg]);
    assert_eq!(code, 1);
    let verdict = |check: &str| {
        rows(&report)
            .iter()
            .find(|r| r["check"] == check)
            .map(|r| r["verdict"].clone())
            .unwrap_or_else(|| panic!("no `{check}` in {report:#}"))
    };
    assert_eq!(verdict("regression/case 1 (apply)"), "pass");
    assert_eq!(verdict("regression/case 2 (apply)"), "fail");
    assert_eq!(
        verdict("regression/case 3 (jacobian_vector_product)"),
        "pass"
    );
    // The cases' inputs are the base point: the gradient checks ran there and passed.
    assert_eq!(verdict("gradient/jvp vs finite differences"), "pass");
}

#[test]
fn the_table_has_one_row_per_check_and_a_summary() {
    let (code, out, _) = check(EXAMPLE_ROSENBROCK, &[]);
    assert_eq!(code, 0, "{out}");
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    for column in ["check", "route", "error", "tolerance", "verdict"] {
        assert!(header.contains(column), "{header}");
    }
    let (_, json) = report(EXAMPLE_ROSENBROCK, &[]);
    let summary = out.lines().last().unwrap_or_default();
    assert_eq!(summary, json["summary"]);
    assert!(summary.starts_with("rosenbrock 0.1.0: "), "{summary}");
}

#[test]
fn the_server_answers_a_broken_contract_with_a_500_naming_it() {
    use tesseract_wasm::planner::Endpoint;
    use tesseract_wasm::request::{CodecOptions, handle};

    let runtime = crate::support::runtime(BAD_UNDECLARED_OUTPUT);
    let body = json!({"inputs": {"x": [1.0, 2.0], "w": 0.5}});
    let err = handle(&runtime, Endpoint::Apply, &body, &CodecOptions::default())
        .expect_err("an undeclared output is the component's fault");
    assert_eq!(err.status(), 500);
    let detail = err.body()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(
        detail.contains("broke its contract") && detail.contains("undeclared output `z`"),
        "{detail}"
    );
}
