//! Checks that a Tesseract keeps its declared contract and that its derivatives are right,
//! run against any [`Subject`]: the host's sandboxed runtime (`tesseract-wasm check`) or a
//! guest type natively (`tesseract_guest::check`), so one suite tests both.
//!
//! At each base point (from `--inputs` cases, else generated from the schema):
//! - **contract**: apply's and every other endpoint's results match the declared schema;
//!   abstract_eval's shapes equal apply's; invalid inputs are refused as `invalid-input`;
//! - **gradient**: jvp and vjp against central finite differences, the dot-product test, the
//!   jacobian against finite differences, jvps and vjps;
//! - **batching**: batched jvp/vjp equal K single calls for K ∈ {1, 3, 8}; a batched export
//!   equals the looped fallback;
//! - **determinism**: two identical calls give identical bits;
//!
//! then every **regression** case. A call that traps or times out fails its check and the
//! others still run; an endpoint that timed out is not called again. A run in which apply
//! ran at no base point (the component refused every generated input, or none could be
//! generated) tested nothing: its report is inconclusive, not passed.
//!
//! Knows nothing of wasm: [`Subject`] is the seam. Results go into a [`Report`].

mod batching;
mod contract;
mod determinism;
mod gradients;
mod point;
pub mod regression;
pub mod report;
mod session;
mod subject;
pub mod values;

use tesseract_model::Tree;

pub use contract::abstract_of;
pub use point::Precision;
pub use regression::{Case, CasesError, parse_cases};
pub use report::{Report, Row, Verdict};
pub use subject::{Endpoint, Failure, Outcome, Subject};

use batching::Side;
use point::Point;
use session::{Session, Stop};
use subject::Failure as F;

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Seeds every random input and direction: one seed, one run.
    pub seed: u64,
    /// Random directions per gradient check.
    pub samples: usize,
    /// Regression cases; their inputs are also the base points.
    pub cases: Vec<Case>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            seed: 0,
            samples: 3,
            cases: Vec::new(),
        }
    }
}

/// The most base points taken from regression cases.
const MAX_POINTS: usize = 3;

/// Said when apply fails at a point, so a one-row report does not read as a short check list.
const NOTHING_ELSE_RAN: &str =
    " (the other checks at this point need apply's outputs and did not run)";

/// Runs every check that applies to `subject`.
pub fn run(subject: &dyn Subject, options: &Options) -> Report {
    let info = subject.info();
    let mut s = Session::new(subject, options.seed, options.samples);
    let mut points: Vec<Tree> = Vec::new();
    for case in &options.cases {
        if let Some(p) = regression::base_point(info, case)
            && !points.contains(&p)
            && points.len() < MAX_POINTS
        {
            points.push(p);
        }
    }
    let generated = points.is_empty();
    if generated {
        match values::generate(info, &mut s.rng) {
            Ok(p) => points.push(p),
            Err(e) => s.record(
                "inputs",
                None,
                Err(Stop::Skip(format!(
                    "{e}; pass --inputs @cases.json: regression cases with valid inputs"
                ))),
            ),
        }
    }
    let many = points.len() > 1;
    for (i, inputs) in points.into_iter().enumerate() {
        let suffix = if many {
            format!(" @{}", i + 1)
        } else {
            String::new()
        };
        at_point(&mut s, inputs, generated, &suffix);
    }
    for (i, case) in options.cases.iter().enumerate() {
        let (endpoint, result) = regression::run_case(&mut s, case);
        s.record(
            &format!("regression/case {} ({})", i + 1, case.endpoint),
            endpoint,
            result,
        );
    }
    Report {
        component: format!("{} {}", info.name, info.version),
        seed: options.seed,
        rows: s.rows,
    }
}

fn at_point(s: &mut Session, inputs: Tree, generated: bool, suffix: &str) {
    let name = |check: &str| format!("{check}{suffix}");
    // apply at the base point: every other check needs its outputs.
    let outputs = match s.apply_outcome(&inputs) {
        Err(F::InvalidInput(msg)) if generated => {
            s.record(
                &name(report::APPLY),
                Some(Endpoint::Apply),
                Err(Stop::Skip(format!(
                    "the component refuses the generated inputs (invalid-input: {msg}); \
                     pass --inputs @cases.json: regression cases whose inputs it accepts"
                ))),
            );
            return;
        }
        Err(e) => {
            s.record(
                &name(report::APPLY),
                Some(Endpoint::Apply),
                Err(Stop::Fail(format!("apply: {e}{NOTHING_ELSE_RAN}"))),
            );
            return;
        }
        Ok(out) => match tesseract_wire::contract::Contract::new(
            s.info(),
            tesseract_wire::contract::Dtypes::Exact,
        )
        .apply(out)
        {
            Ok(out) => {
                s.record(
                    &name(report::APPLY),
                    Some(Endpoint::Apply),
                    Ok(session::Measured::yes()),
                );
                out
            }
            Err(e) => {
                s.record(
                    &name(report::APPLY),
                    Some(Endpoint::Apply),
                    Err(Stop::Fail(format!(
                        "apply broke its contract: {e}{NOTHING_ELSE_RAN}"
                    ))),
                );
                return;
            }
        },
    };
    let point = Point::new(s.info(), inputs, outputs);

    let r = contract::abstract_eval(s, &point);
    s.record(
        &name("contract/abstract_eval = apply"),
        Some(Endpoint::AbstractEval),
        r,
    );
    for e in [
        Endpoint::Jacobian,
        Endpoint::Jvp,
        Endpoint::Vjp,
        Endpoint::BatchedJvp,
        Endpoint::BatchedVjp,
    ] {
        let r = contract::endpoint(s, &point, e);
        s.record(&name(&format!("contract/{}", e.short())), Some(e), r);
    }
    for (label, r) in contract::invalid_inputs(s, &point) {
        s.record(
            &name(&format!("contract/invalid input ({label})")),
            Some(Endpoint::Apply),
            r,
        );
    }

    let (fd, jvp, vjp) = gradients::finite_differences(s, &point);
    s.record(
        &name("gradient/jvp vs finite differences"),
        Some(Endpoint::Jvp),
        jvp,
    );
    s.record(
        &name("gradient/vjp vs finite differences"),
        Some(Endpoint::Vjp),
        vjp,
    );
    let r = gradients::dot_product(s, &point);
    s.record(
        &name("gradient/dot product <c, J t> = <J^T c, t>"),
        Some(Endpoint::Vjp),
        r,
    );
    let [j_fd, j_jvp, j_vjp] = gradients::jacobian(s, &point, fd.as_deref());
    s.record(
        &name("gradient/jacobian vs finite differences"),
        Some(Endpoint::Jacobian),
        j_fd,
    );
    s.record(
        &name("gradient/jacobian vs jvp"),
        Some(Endpoint::Jacobian),
        j_jvp,
    );
    s.record(
        &name("gradient/jacobian vs vjp"),
        Some(Endpoint::Jacobian),
        j_vjp,
    );

    for side in [Side::Jvp, Side::Vjp] {
        let what = side.batched().short();
        for k in batching::BATCH_SIZES {
            let r = batching::against_singles(s, &point, side, k);
            let single = side.single().short();
            s.record(
                &name(&format!("batching/{what} K={k} = {k} x {single}")),
                Some(side.batched()),
                r,
            );
        }
        let r = batching::against_fallback(s, &point, side);
        s.record(
            &name(&format!("batching/{what} export = looped fallback")),
            Some(side.batched()),
            r,
        );
    }

    let r = determinism::apply(s, &point);
    s.record(&name("determinism/apply"), Some(Endpoint::Apply), r);
    for e in [Endpoint::Jvp, Endpoint::Vjp] {
        let r = determinism::product(s, &point, e);
        s.record(&name(&format!("determinism/{}", e.short())), Some(e), r);
    }
}

#[cfg(test)]
mod tests;
