//! One run's state: the subject, the seeded generator, the rows so far, and the endpoints that
//! ran past their deadline (not called again, so a looping guest costs one deadline each).
//! Every call goes through here and every result is held to the declared contract.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use tesseract_model::schema::Info;
use tesseract_model::{AbstractTree, JacobianBlocks, Tree, Vectors};
use tesseract_wire::contract::{Contract, Dtypes};

use crate::report::{Row, Verdict};
use crate::subject::{Endpoint, Failure, Outcome, Subject};
use crate::values::Random;

/// Why a check stopped before judging.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    Fail(String),
    Skip(String),
}

/// What a check measured; `error`/`tolerance` are `None` for yes/no checks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measured {
    pub error: Option<f64>,
    pub tolerance: Option<f64>,
    pub detail: String,
}

impl Measured {
    pub fn within(error: f64, tolerance: f64) -> Measured {
        Measured {
            error: Some(error),
            tolerance: Some(tolerance),
            detail: String::new(),
        }
    }

    pub fn yes() -> Measured {
        Measured::default()
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Measured {
        self.detail = detail.into();
        self
    }
}

pub type Checked = Result<Measured, Stop>;

pub struct Session<'a> {
    pub subject: &'a dyn Subject,
    pub rng: Random,
    pub samples: usize,
    pub rows: Vec<Row>,
    contract: Contract<'a>,
    stuck: BTreeMap<Endpoint, String>,
}

fn stop(endpoint: Endpoint, f: Failure) -> Stop {
    match f {
        Failure::Unsupported(_) => Stop::Skip(format!("{} is not served", endpoint.short())),
        f => Stop::Fail(format!("{}: {f}", endpoint.short())),
    }
}

impl<'a> Session<'a> {
    pub fn new(subject: &'a dyn Subject, seed: u64, samples: usize) -> Session<'a> {
        Session {
            subject,
            rng: Random::new(seed),
            samples: samples.max(1),
            rows: Vec::new(),
            contract: Contract::new(subject.info(), Dtypes::Exact),
            stuck: BTreeMap::new(),
        }
    }

    pub fn info(&self) -> &'a Info {
        self.subject.info()
    }

    pub fn serves(&self, endpoint: Endpoint) -> bool {
        self.subject.route(endpoint).is_some()
    }

    /// Records one row for `check` on `endpoint`'s route.
    pub fn record(&mut self, check: &str, endpoint: Option<Endpoint>, result: Checked) {
        let route = endpoint
            .and_then(|e| self.subject.route(e))
            .unwrap_or_else(|| "-".into());
        let row = match result {
            Ok(m) => {
                let over = match (m.error, m.tolerance) {
                    // NaN is over any tolerance.
                    (Some(e), Some(t)) => {
                        !matches!(e.partial_cmp(&t), Some(Ordering::Less | Ordering::Equal))
                    }
                    _ => false,
                };
                let detail = if over && m.detail.is_empty() {
                    format!(
                        "error {:.2e} is above the tolerance {:.1e}",
                        m.error.unwrap_or(f64::NAN),
                        m.tolerance.unwrap_or(f64::NAN)
                    )
                } else {
                    m.detail
                };
                Row {
                    check: check.into(),
                    route,
                    error: m.error,
                    tolerance: m.tolerance,
                    verdict: if over { Verdict::Fail } else { Verdict::Pass },
                    detail,
                }
            }
            Err(Stop::Fail(detail)) => Row {
                check: check.into(),
                route,
                error: None,
                tolerance: None,
                verdict: Verdict::Fail,
                detail,
            },
            Err(Stop::Skip(detail)) => Row {
                check: check.into(),
                route,
                error: None,
                tolerance: None,
                verdict: Verdict::Skip,
                detail,
            },
        };
        self.rows.push(row);
    }

    /// Calls `endpoint` unless it already ran past its deadline; remembers if it does now.
    fn call<T>(
        &mut self,
        endpoint: Endpoint,
        f: impl FnOnce(&dyn Subject) -> Outcome<T>,
    ) -> Result<T, Stop> {
        if let Some(why) = self.stuck.get(&endpoint) {
            return Err(Stop::Fail(format!(
                "{} not called again: it {why} earlier",
                endpoint.short()
            )));
        }
        match f(self.subject) {
            Ok(v) => Ok(v),
            Err(Failure::Timeout(msg)) => {
                self.stuck.insert(endpoint, format!("timed out ({msg})"));
                Err(stop(endpoint, Failure::Timeout(msg)))
            }
            Err(e) => Err(stop(endpoint, e)),
        }
    }

    /// A call's raw failure, for checks that expect one (invalid inputs).
    pub fn apply_outcome(&mut self, inputs: &Tree) -> Outcome<Tree> {
        self.subject.apply(inputs)
    }

    pub fn apply(&mut self, inputs: &Tree) -> Result<Tree, Stop> {
        let out = self.call(Endpoint::Apply, |s| s.apply(inputs))?;
        self.contract
            .apply(out)
            .map_err(|e| Stop::Fail(format!("apply broke its contract: {e}")))
    }

    pub fn abstract_eval(&mut self, inputs: &AbstractTree) -> Result<AbstractTree, Stop> {
        let out = self.call(Endpoint::AbstractEval, |s| s.abstract_eval(inputs))?;
        self.contract
            .abstract_eval(&out)
            .map_err(|e| Stop::Fail(format!("abstract_eval broke its contract: {e}")))?;
        Ok(out)
    }

    pub fn jacobian(
        &mut self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
    ) -> Result<JacobianBlocks, Stop> {
        let out = self.call(Endpoint::Jacobian, |s| s.jacobian(inputs, ins, outs))?;
        self.contract
            .jacobian(inputs, ins, outs, out)
            .map_err(|e| Stop::Fail(format!("jacobian broke its contract: {e}")))
    }

    pub fn jvp(
        &mut self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
        tangent: &Vectors,
    ) -> Result<Vectors, Stop> {
        let out = self.call(Endpoint::Jvp, |s| s.jvp(inputs, ins, outs, tangent))?;
        self.contract
            .jvp(outs, &[], out)
            .map_err(|e| Stop::Fail(format!("jvp broke its contract: {e}")))
    }

    pub fn vjp(
        &mut self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
        cotangent: &Vectors,
    ) -> Result<Vectors, Stop> {
        let out = self.call(Endpoint::Vjp, |s| s.vjp(inputs, ins, outs, cotangent))?;
        self.contract
            .vjp(inputs, ins, &[], out)
            .map_err(|e| Stop::Fail(format!("vjp broke its contract: {e}")))
    }

    pub fn batched_jvp(
        &mut self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
        tangents: &Vectors,
        count: usize,
    ) -> Result<Vectors, Stop> {
        let out = self.call(Endpoint::BatchedJvp, |s| {
            s.batched_jvp(inputs, ins, outs, tangents, count)
        })?;
        self.contract
            .jvp(outs, &[count], out)
            .map_err(|e| Stop::Fail(format!("batched jvp broke its contract: {e}")))
    }

    pub fn batched_vjp(
        &mut self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
        cotangents: &Vectors,
        count: usize,
    ) -> Result<Vectors, Stop> {
        let out = self.call(Endpoint::BatchedVjp, |s| {
            s.batched_vjp(inputs, ins, outs, cotangents, count)
        })?;
        self.contract
            .vjp(inputs, ins, &[count], out)
            .map_err(|e| Stop::Fail(format!("batched vjp broke its contract: {e}")))
    }
}
