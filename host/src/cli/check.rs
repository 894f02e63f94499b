//! `tesseract-wasm check`: the contract, gradient, batching, determinism and regression checks
//! of `tesseract-check`, every call in the sandbox.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::EngineArgs;
use crate::check::RuntimeSubject;

/// Test a component's contract and derivatives, in the sandbox
///
/// Runs every check that applies: outputs of every endpoint against the declared schema,
/// abstract_eval against apply, invalid inputs refused as invalid-input; jvp and vjp against
/// central finite differences, the dot-product test, the jacobian against jvps and vjps;
/// batched jvp/vjp against single calls (K = 1, 3, 8) and a batched export against the looped
/// fallback; identical bits from identical calls; and the regression cases of --inputs.
///
/// Prints a table (check, route, error, tolerance, verdict) and a summary line. Exits 0 if
/// the checks ran and none failed, 1 if one failed, 3 if none could run: the component refused
/// every generated input (or none could be generated from its schema), so it was not tested;
/// give it inputs it accepts with --inputs. A call that traps or runs past --timeout fails its
/// check and the others still run.
///
/// Example: tesseract-wasm check rosenbrock.wasm --seed 7
// A check makes many small calls: a guest that loops should cost seconds, not a minute each.
// Both routes of a batch are checked, so forcing the looped one makes no sense here.
#[derive(Debug, clap::Args)]
#[command(
    mut_arg("timeout", |a| a.default_value("10s")),
    mut_arg("ignore_batched_exports", |a| a.hide(true)),
)]
pub struct Check {
    /// The component (.wasm)
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Regression cases, `@FILE`: a JSON list of {endpoint, payload, expected[, rtol, atol]}
    ///
    /// payload and expected are tesseract-core request and response bodies. The cases'
    /// inputs are also the base points of the other checks; without them, inputs are
    /// generated from the schema.
    #[arg(long, value_name = "@FILE")]
    inputs: Option<String>,

    /// Seed of every random input and direction
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,

    /// Random directions per gradient check
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    samples: usize,

    /// Print the report as JSON
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    engine: EngineArgs,
}

fn read_cases(arg: &str) -> anyhow::Result<Vec<tesseract_check::Case>> {
    let path = arg.strip_prefix('@').unwrap_or(arg);
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the regression cases {path}"))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{path} is not valid JSON"))?;
    Ok(tesseract_check::parse_cases(&json)?)
}

impl Check {
    pub fn execute(self, out: &mut dyn Write) -> anyhow::Result<i32> {
        let cases = match &self.inputs {
            Some(arg) => read_cases(arg)?,
            None => Vec::new(),
        };
        let engine = self.engine.engine()?;
        let component = crate::component::Tesseract::load(&engine, &self.file)?;
        let subject = RuntimeSubject::new(Arc::clone(&component));
        let options = tesseract_check::Options {
            seed: self.seed,
            samples: self.samples,
            cases,
        };
        let report = tesseract_check::run(&subject, &options);
        let written = if self.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&report.to_json())?)
        } else {
            write!(out, "{}", report.table())
        };
        match written {
            // `check … | head`: the verdict is the exit code, whoever stopped reading.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit_code(&report)),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(exit_code(&report)),
        }
    }
}

/// The exit code when no check failed but none ran at a valid base point either. Not 2,
/// which is a usage error (clap's), so a script can tell an untested component from a typo.
const INCONCLUSIVE: i32 = 3;

fn exit_code(report: &tesseract_check::Report) -> i32 {
    if report.passed() {
        0
    } else if report.inconclusive() {
        INCONCLUSIVE
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use tesseract_check::{Report, Row, Verdict};

    use super::{INCONCLUSIVE, exit_code};

    fn report(rows: &[(&str, Verdict)]) -> Report {
        Report {
            component: "t 0.1".into(),
            seed: 0,
            rows: rows
                .iter()
                .map(|&(check, verdict)| Row {
                    check: check.into(),
                    route: "native".into(),
                    error: None,
                    tolerance: None,
                    verdict,
                    detail: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn passed_failed_and_untested_reports_exit_differently() {
        let applied = report(&[("contract/apply", Verdict::Pass)]);
        assert_eq!(exit_code(&applied), 0);
        let failed = report(&[("contract/apply", Verdict::Fail)]);
        assert_eq!(exit_code(&failed), 1);
        let refused = report(&[("contract/apply", Verdict::Skip)]);
        assert_eq!(exit_code(&refused), INCONCLUSIVE);
    }
}
