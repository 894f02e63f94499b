//! The suite against a plain-Rust subject, `y = x²` elementwise, with one fault at a time.

use std::sync::atomic::{AtomicU64, Ordering};

use tesseract_model::schema::{ArraySpec, Dim, Field, FieldKind, Info, ShapeSpec};
use tesseract_model::{DType, Data, Leaf, Tensor, Tree, Vectors};

use crate::{Endpoint, Failure, Options, Outcome, Subject, Verdict, run};

#[derive(Default)]
struct Square {
    info: Option<Info>,
    flip_vjp: bool,
    trap_jvp: bool,
    /// Refuses every input as invalid, as a component may refuse generated ones.
    refuse: bool,
    /// Adds a call counter to apply's output, so no two calls agree.
    counter: Option<AtomicU64>,
}

fn info() -> Info {
    let field = |path: &str| Field {
        path: path.into(),
        kind: FieldKind::Array(ArraySpec {
            dtype: DType::Float64,
            shape: ShapeSpec::Ranked(vec![Dim::Any]),
            differentiable: true,
        }),
        description: String::new(),
        default: None,
    };
    Info {
        name: "square".into(),
        version: "0".into(),
        description: String::new(),
        inputs: vec![field("x")],
        outputs: vec![field("y")],
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    t.data().to_f64()
}

fn vector(v: Vec<f64>) -> Tensor {
    Tensor::new(vec![v.len()], Data::Float64(v)).expect("a valid vector")
}

fn x_of(inputs: &Tree) -> Outcome<Vec<f64>> {
    match inputs.get("x") {
        Some(Leaf::Tensor(t)) if t.shape().len() == 1 => Ok(values(t)),
        _ => Err(Failure::InvalidInput("`x` must be a vector".into())),
    }
}

impl Subject for Square {
    fn info(&self) -> &Info {
        self.info.as_ref().expect("built with an info")
    }

    fn route(&self, endpoint: Endpoint) -> Option<String> {
        matches!(endpoint, Endpoint::Apply | Endpoint::Jvp | Endpoint::Vjp).then(|| "native".into())
    }

    fn apply(&self, inputs: &Tree) -> Outcome<Tree> {
        if self.refuse {
            return Err(Failure::InvalidInput("x must be sorted".into()));
        }
        let noise = self
            .counter
            .as_ref()
            .map_or(0.0, |c| c.fetch_add(1, Ordering::Relaxed) as f64 * 1e-12);
        let y = x_of(inputs)?.iter().map(|x| x * x + noise).collect();
        Ok(Tree::from([("y".into(), Leaf::Tensor(vector(y)))]))
    }

    fn jvp(
        &self,
        inputs: &Tree,
        _: &[String],
        _: &[String],
        tangent: &Vectors,
    ) -> Outcome<Vectors> {
        if self.trap_jvp {
            return Err(Failure::Trap("unreachable executed".into()));
        }
        let x = x_of(inputs)?;
        let t = values(&tangent["x"]);
        let y = x.iter().zip(&t).map(|(x, t)| 2.0 * x * t).collect();
        Ok(Vectors::from([("y".into(), vector(y))]))
    }

    fn vjp(
        &self,
        inputs: &Tree,
        _: &[String],
        _: &[String],
        cotangent: &Vectors,
    ) -> Outcome<Vectors> {
        let sign = if self.flip_vjp { -1.0 } else { 1.0 };
        let x = x_of(inputs)?;
        let c = values(&cotangent["y"]);
        let g = x.iter().zip(&c).map(|(x, c)| sign * 2.0 * x * c).collect();
        Ok(Vectors::from([("x".into(), vector(g))]))
    }
}

fn verdicts(subject: &Square) -> Vec<(String, Verdict, String)> {
    run(subject, &Options::default())
        .rows
        .into_iter()
        .map(|r| (r.check, r.verdict, r.detail))
        .collect()
}

fn verdict(rows: &[(String, Verdict, String)], check: &str) -> Verdict {
    rows.iter()
        .find(|(c, _, _)| c == check)
        .map(|(_, v, _)| *v)
        .unwrap_or_else(|| panic!("no `{check}` in {rows:#?}"))
}

#[test]
fn a_correct_subject_passes() {
    let subject = Square {
        info: Some(info()),
        ..Square::default()
    };
    let report = run(&subject, &Options::default());
    assert!(report.passed(), "{}", report.table());
    let rows = verdicts(&subject);
    assert_eq!(
        verdict(&rows, "gradient/dot product <c, J t> = <J^T c, t>"),
        Verdict::Pass
    );
    // No jacobian and no batched export: skipped, not failed.
    assert_eq!(verdict(&rows, "gradient/jacobian vs jvp"), Verdict::Skip);
}

#[test]
fn a_flipped_vjp_fails_against_finite_differences() {
    let rows = verdicts(&Square {
        info: Some(info()),
        flip_vjp: true,
        ..Square::default()
    });
    assert_eq!(
        verdict(&rows, "gradient/vjp vs finite differences"),
        Verdict::Fail
    );
    assert_eq!(
        verdict(&rows, "gradient/jvp vs finite differences"),
        Verdict::Pass
    );
}

#[test]
fn a_trapping_jvp_fails_its_checks_and_the_others_still_run() {
    let rows = verdicts(&Square {
        info: Some(info()),
        trap_jvp: true,
        ..Square::default()
    });
    let jvp = rows
        .iter()
        .find(|(c, _, _)| c == "gradient/jvp vs finite differences")
        .expect("a jvp row");
    assert_eq!(jvp.1, Verdict::Fail);
    assert!(jvp.2.contains("trapped: unreachable executed"), "{}", jvp.2);
    assert_eq!(
        verdict(&rows, "gradient/vjp vs finite differences"),
        Verdict::Pass
    );
    assert_eq!(verdict(&rows, "determinism/vjp"), Verdict::Pass);
}

#[test]
fn different_bits_from_identical_calls_fail_determinism() {
    let rows = verdicts(&Square {
        info: Some(info()),
        counter: Some(AtomicU64::new(0)),
        ..Square::default()
    });
    assert_eq!(verdict(&rows, "determinism/apply"), Verdict::Fail);
    assert_eq!(verdict(&rows, "determinism/jvp"), Verdict::Pass);
}

#[test]
fn one_seed_one_report() {
    let subject = Square {
        info: Some(info()),
        ..Square::default()
    };
    let options = Options {
        seed: 42,
        ..Options::default()
    };
    assert_eq!(run(&subject, &options), run(&subject, &options));
}

#[test]
fn generated_inputs_the_component_refuses_make_an_inconclusive_report_asking_for_inputs() {
    let subject = Square {
        info: Some(info()),
        refuse: true,
        ..Square::default()
    };
    let report = run(&subject, &Options::default());
    // Nothing was tested: not a pass, though nothing failed either.
    assert!(!report.passed(), "{}", report.table());
    assert!(report.inconclusive(), "{}", report.table());
    assert_eq!(report.failures().count(), 0);
    let row = &report.rows[0];
    assert_eq!(
        (row.check.as_str(), row.verdict),
        ("contract/apply", Verdict::Skip)
    );
    assert!(
        row.detail.contains("x must be sorted") && row.detail.contains("--inputs @cases.json"),
        "{}",
        row.detail
    );
    assert!(
        report.summary().contains("inconclusive") && report.summary().contains("--inputs"),
        "{}",
        report.summary()
    );
    assert_eq!(report.to_json()["passed"], false);
    assert_eq!(report.to_json()["inconclusive"], true);
}

#[test]
fn a_default_that_fails_its_own_field_makes_an_inconclusive_report() {
    let mut info = info();
    // A setting whose declared default is not a float64 scalar: no base point can be built.
    info.inputs.push(Field {
        path: "k".into(),
        kind: FieldKind::Array(ArraySpec {
            dtype: DType::Float64,
            shape: ShapeSpec::Ranked(Vec::new()),
            differentiable: false,
        }),
        description: String::new(),
        default: Some("\"abc\"".into()),
    });
    let report = run(
        &Square {
            info: Some(info),
            ..Square::default()
        },
        &Options::default(),
    );
    assert!(!report.passed(), "{}", report.table());
    assert!(report.inconclusive(), "{}", report.table());
    let row = &report.rows[0];
    assert_eq!((row.check.as_str(), row.verdict), ("inputs", Verdict::Skip));
    assert!(
        row.detail.contains("`k`") || row.detail.contains("k"),
        "{}",
        row.detail
    );
}

#[test]
fn refused_inputs_from_regression_cases_fail_instead() {
    // The user's own inputs are meant to be valid: refusing them is a failure, not a skip.
    let cases = crate::parse_cases(&serde_json::json!([{
        "endpoint": "apply",
        "payload": {"inputs": {"x": [1.0, 2.0]}},
        "expected": {"y": [1.0, 4.0]},
    }]))
    .expect("a valid case");
    let report = run(
        &Square {
            info: Some(info()),
            refuse: true,
            ..Square::default()
        },
        &Options {
            cases,
            ..Options::default()
        },
    );
    assert!(
        !report.passed() && !report.inconclusive(),
        "{}",
        report.table()
    );
    assert_eq!(report.rows[0].verdict, Verdict::Fail);
}

#[test]
fn a_correct_subject_is_not_inconclusive() {
    let report = run(
        &Square {
            info: Some(info()),
            ..Square::default()
        },
        &Options::default(),
    );
    assert!(!report.inconclusive(), "{}", report.table());
    assert!(!report.summary().contains("inconclusive"));
    assert_eq!(report.to_json()["inconclusive"], false);
}
