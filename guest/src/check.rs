//! The checks `tesseract-wasm check` runs on a `.wasm`, run natively on your own type through
//! [`crate::dispatch`] (the code path the component runs), so `cargo test` and the sandbox
//! share one suite. Enable the `check` feature in your dev-dependencies:
//!
//! ```toml
//! [dev-dependencies]
//! # The SDK is not on crates.io: the same path as in `[dependencies]`, plus the feature.
//! tesseract-guest = { path = "/path/to/tesseract-wasm/guest", features = ["check"] }
//! ```
//!
//! ```ignore
//! use tesseract_guest::check::{self, Native, Options};
//!
//! #[test]
//! fn keeps_its_contract_and_its_derivatives_are_right() {
//!     // The same capabilities as `export!(Rosenbrock: jacobian, jvp, vjp, abstract_eval)`.
//!     let subject = Native::<Rosenbrock>::new().jacobian().jvp().vjp().abstract_eval();
//!     let report = check::run(&subject, &Options::default());
//!     assert!(report.passed(), "{}", report.table());
//! }
//! ```
//!
//! Natively there are no derived routes: checks of endpoints the type does not implement are
//! skipped (the host derives and checks them in wasm). A panic is reported as a trap.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use tesseract_check::{Endpoint, Failure, Options, Report, Row, Subject, Verdict};
use tesseract_model::{AbstractTree, ErrorKind, JacobianBlocks, Tree, Vectors};

use crate::{
    AbstractEval, BatchedJvp, BatchedVjp, Error, Info, Jacobian, Jvp, Tesseract, Vjp, dispatch,
};

type JacobianFn = fn(Tree, &[String], &[String]) -> Result<JacobianBlocks, Error>;
type ProductFn = fn(Tree, &[String], &[String], Vectors) -> Result<Vectors, Error>;
type BatchedFn = fn(Tree, &[String], &[String], Vectors, usize) -> Result<Vectors, Error>;
type AbstractFn = fn(AbstractTree) -> Result<AbstractTree, Error>;

/// A Tesseract type as the checks see it, with the capabilities you name (as in `export!`).
pub struct Native<T> {
    info: Info,
    jacobian: Option<JacobianFn>,
    jvp: Option<ProductFn>,
    vjp: Option<ProductFn>,
    batched_jvp: Option<BatchedFn>,
    batched_vjp: Option<BatchedFn>,
    abstract_eval: Option<AbstractFn>,
    ty: PhantomData<fn() -> T>,
}

impl<T: Tesseract> Default for Native<T> {
    fn default() -> Native<T> {
        Native::new()
    }
}

impl<T: Tesseract> Native<T> {
    /// `apply` only; add capabilities with the methods below.
    pub fn new() -> Native<T> {
        Native {
            info: dispatch::metadata::<T>(),
            jacobian: None,
            jvp: None,
            vjp: None,
            batched_jvp: None,
            batched_vjp: None,
            abstract_eval: None,
            ty: PhantomData,
        }
    }

    /// Checks [`Jacobian`].
    pub fn jacobian(mut self) -> Native<T>
    where
        T: Jacobian,
    {
        self.jacobian = Some(dispatch::jacobian::<T>);
        self
    }

    /// Checks [`Jvp`].
    pub fn jvp(mut self) -> Native<T>
    where
        T: Jvp,
    {
        self.jvp = Some(|x, i, o, t| dispatch::jvp::<T>(x, i, o, t));
        self
    }

    /// Checks [`Vjp`].
    pub fn vjp(mut self) -> Native<T>
    where
        T: Vjp,
    {
        self.vjp = Some(|x, i, o, c| dispatch::vjp::<T>(x, i, o, c));
        self
    }

    /// Checks [`BatchedJvp`].
    pub fn batched_jvp(mut self) -> Native<T>
    where
        T: BatchedJvp,
    {
        self.batched_jvp = Some(|x, i, o, t, k| dispatch::batched_jvp::<T>(x, i, o, t, k));
        self
    }

    /// Checks [`BatchedVjp`].
    pub fn batched_vjp(mut self) -> Native<T>
    where
        T: BatchedVjp,
    {
        self.batched_vjp = Some(|x, i, o, c, k| dispatch::batched_vjp::<T>(x, i, o, c, k));
        self
    }

    /// Checks [`AbstractEval`].
    pub fn abstract_eval(mut self) -> Native<T>
    where
        T: AbstractEval,
    {
        self.abstract_eval = Some(dispatch::abstract_eval::<T>);
        self
    }
}

/// Runs `call`, turning the type's errors and panics into what the checks expect.
fn guarded<R>(call: impl FnOnce() -> Result<R, Error>) -> Result<R, Failure> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.kind == ErrorKind::InvalidInput => Err(Failure::InvalidInput(e.message)),
        Ok(Err(e)) => Err(Failure::Failed(e.message)),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(Failure::Trap(format!("panicked: {msg}")))
        }
    }
}

fn unsupported<R>(endpoint: Endpoint) -> Result<R, Failure> {
    Err(Failure::Unsupported(endpoint.name().to_owned()))
}

fn owned(paths: &[String]) -> Vec<String> {
    paths.to_vec()
}

impl<T: Tesseract> Subject for Native<T> {
    fn info(&self) -> &Info {
        &self.info
    }

    fn route(&self, endpoint: Endpoint) -> Option<String> {
        let served = match endpoint {
            Endpoint::Apply => true,
            Endpoint::Jacobian => self.jacobian.is_some(),
            Endpoint::Jvp => self.jvp.is_some(),
            Endpoint::Vjp => self.vjp.is_some(),
            Endpoint::BatchedJvp => self.batched_jvp.is_some(),
            Endpoint::BatchedVjp => self.batched_vjp.is_some(),
            Endpoint::AbstractEval => self.abstract_eval.is_some(),
        };
        served.then(|| "native".to_owned())
    }

    fn apply(&self, inputs: &Tree) -> Result<Tree, Failure> {
        guarded(|| dispatch::apply::<T>(inputs.clone()))
    }

    fn jacobian(
        &self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
    ) -> Result<JacobianBlocks, Failure> {
        match self.jacobian {
            Some(f) => guarded(|| f(inputs.clone(), &owned(ins), &owned(outs))),
            None => unsupported(Endpoint::Jacobian),
        }
    }

    fn jvp(
        &self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
        tangent: &Vectors,
    ) -> Result<Vectors, Failure> {
        match self.jvp {
            Some(f) => guarded(|| f(inputs.clone(), ins, outs, tangent.clone())),
            None => unsupported(Endpoint::Jvp),
        }
    }

    fn vjp(
        &self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
        cotangent: &Vectors,
    ) -> Result<Vectors, Failure> {
        match self.vjp {
            Some(f) => guarded(|| f(inputs.clone(), ins, outs, cotangent.clone())),
            None => unsupported(Endpoint::Vjp),
        }
    }

    fn batched_jvp(
        &self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
        tangents: &Vectors,
        count: usize,
    ) -> Result<Vectors, Failure> {
        match self.batched_jvp {
            Some(f) => guarded(|| f(inputs.clone(), ins, outs, tangents.clone(), count)),
            None => unsupported(Endpoint::BatchedJvp),
        }
    }

    fn batched_vjp(
        &self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
        cotangents: &Vectors,
        count: usize,
    ) -> Result<Vectors, Failure> {
        match self.batched_vjp {
            Some(f) => guarded(|| f(inputs.clone(), ins, outs, cotangents.clone(), count)),
            None => unsupported(Endpoint::BatchedVjp),
        }
    }

    fn abstract_eval(&self, inputs: &AbstractTree) -> Result<AbstractTree, Failure> {
        match self.abstract_eval {
            Some(f) => guarded(|| f(inputs.clone())),
            None => unsupported(Endpoint::AbstractEval),
        }
    }
}

/// Runs every check that applies to `subject` (see `tesseract-check`).
pub fn run<T: Tesseract>(subject: &Native<T>, options: &Options) -> Report {
    tesseract_check::run(subject, options)
}
