//! `tesseract-wasm check` on a component it cannot test at generated inputs:
//! `refuses-generated-inputs` takes only a whole number as its `count` setting, which random
//! inputs never are. The report must be inconclusive (exit 3, `"passed": false`), not a pass,
//! and say how to supply inputs; with regression cases whose inputs it accepts, every check
//! runs there.

use serde_json::{Value, json};
use tesseract_wasm_tests::REFUSES_GENERATED_INPUTS;

/// Runs `check` on `path` with `args` through the CLI entry (`crate::check::check`); returns
/// (exit code, stdout) and asserts nothing went to stderr.
fn check(path: &str, args: &[&str]) -> (i32, String) {
    let (code, out, err) = crate::check::check(path, args);
    assert!(err.is_empty(), "check wrote to stderr: {err}");
    (code, out)
}

#[test]
fn a_component_refusing_every_generated_input_is_inconclusive_not_passed() {
    let (code, out) = check(REFUSES_GENERATED_INPUTS, &[]);
    assert_eq!(code, 3, "{out}");
    let summary = out.lines().last().unwrap_or_default();
    assert!(
        summary.contains("0 passed, 0 failed, 1 skipped")
            && summary.contains("inconclusive: no check ran at a valid base point")
            && summary.contains("--inputs @cases.json"),
        "{summary}"
    );
    // The skipped row says why: the component's own refusal.
    assert!(
        out.contains("the component refuses the generated inputs (invalid-input"),
        "{out}"
    );

    let (code, out) = check(REFUSES_GENERATED_INPUTS, &["--json"]);
    assert_eq!(code, 3, "{out}");
    let report: Value = serde_json::from_str(&out).expect("check --json prints JSON");
    assert_eq!(report["passed"], false, "{report:#}");
    assert_eq!(report["inconclusive"], true, "{report:#}");
    assert_eq!(report["rows"][0]["check"], "contract/apply");
    assert_eq!(report["rows"][0]["verdict"], "skip");
}

/// Writes `cases` to a temporary `cases.json`; returns its directory (keep it alive) and the
/// `@FILE` argument.
fn cases_file(cases: &Value) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("cases.json");
    std::fs::write(&file, cases.to_string()).expect("write the cases");
    let arg = format!("@{}", file.display());
    (dir, arg)
}

/// An apply case at `x`, `w = 2` and `count`: `y = 2·sin(x)`, `s = Σ x²`.
fn apply_case(x: [f64; 2], count: f64) -> Value {
    json!([{
        "endpoint": "apply",
        "payload": {"inputs": {"x": x, "w": 2.0, "count": count}},
        "expected": {"y": x.map(|v| 2.0 * v.sin()), "s": x[0] * x[0] + x[1] * x[1]},
    }])
}

#[test]
fn regression_cases_with_inputs_it_accepts_make_the_checks_run_there() {
    let (_dir, arg) = cases_file(&apply_case([1.0, 2.0], 3.0));
    let (code, out) = check(REFUSES_GENERATED_INPUTS, &["--inputs", &arg, "--json"]);
    let report: Value = serde_json::from_str(&out).expect("check --json prints JSON");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["inconclusive"], false, "{report:#}");
    let verdict = |check: &str| {
        report["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["check"] == check))
            .map(|r| r["verdict"].clone())
            .unwrap_or_else(|| panic!("no `{check}` in {report:#}"))
    };
    assert_eq!(verdict("contract/apply"), "pass");
    assert_eq!(verdict("determinism/apply"), "pass");
    assert_eq!(verdict("gradient/jvp vs finite differences"), "pass");
    assert_eq!(
        verdict("gradient/dot product <c, J t> = <J^T c, t>"),
        "pass"
    );
    assert_eq!(verdict("regression/case 1 (apply)"), "pass");
}

#[test]
fn regression_cases_with_inputs_it_refuses_fail_the_check() {
    // Regression cases are inputs the user says are valid: refusing them is a failure.
    let (_dir, arg) = cases_file(&apply_case([0.5, 1.0], 2.5));
    let (code, out) = check(REFUSES_GENERATED_INPUTS, &["--inputs", &arg, "--json"]);
    let report: Value = serde_json::from_str(&out).expect("check --json prints JSON");
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["inconclusive"], false, "{report:#}");
    let apply = &report["rows"][0];
    assert_eq!(
        (&apply["check"], &apply["verdict"]),
        (&json!("contract/apply"), &json!("fail")),
        "{report:#}"
    );
    assert!(
        apply["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`count` must be a whole number")),
        "{apply}"
    );
}
