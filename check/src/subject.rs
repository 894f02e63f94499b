//! What the checks run against: anything that serves a Tesseract's endpoints on model types.
//! The host implements it over its sandboxed runtime, the guest SDK over `dispatch`.

use std::fmt;

use tesseract_model::schema::Info;
use tesseract_model::{AbstractTree, JacobianBlocks, Tree, Vectors};

/// An endpoint a subject may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Apply,
    Jacobian,
    Jvp,
    Vjp,
    BatchedJvp,
    BatchedVjp,
    AbstractEval,
}

impl Endpoint {
    /// tesseract-core's name (`jacobian_vector_product`, ...); batched ones as the host names them.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Apply => "apply",
            Endpoint::Jacobian => "jacobian",
            Endpoint::Jvp => "jacobian_vector_product",
            Endpoint::Vjp => "vector_jacobian_product",
            Endpoint::BatchedJvp => "batched_jacobian_vector_product",
            Endpoint::BatchedVjp => "batched_vector_jacobian_product",
            Endpoint::AbstractEval => "abstract_eval",
        }
    }

    /// A short name for report rows (`jvp`, `batched vjp`, ...).
    pub fn short(self) -> &'static str {
        match self {
            Endpoint::Apply => "apply",
            Endpoint::Jacobian => "jacobian",
            Endpoint::Jvp => "jvp",
            Endpoint::Vjp => "vjp",
            Endpoint::BatchedJvp => "batched jvp",
            Endpoint::BatchedVjp => "batched vjp",
            Endpoint::AbstractEval => "abstract_eval",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a call gave no result. The checks treat these differently: `InvalidInput` is the
/// component refusing inputs (expected for invalid ones), a trap or a timeout never is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The component (or the host, before calling it) refused the inputs.
    #[error("invalid-input: {0}")]
    InvalidInput(String),
    /// The component returned its `failed` error.
    #[error("failed: {0}")]
    Failed(String),
    /// A panic, abort, wasm fault, memory-limit or stack overflow.
    #[error("trapped: {0}")]
    Trap(String),
    /// The call ran past its deadline.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The result broke the component's contract (noticed by the host while serving it).
    #[error("broke its contract: {0}")]
    Contract(String),
    /// The subject cannot serve this endpoint.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A call's result.
pub type Outcome<T> = Result<T, Failure>;

fn unsupported<T>(endpoint: Endpoint) -> Outcome<T> {
    Err(Failure::Unsupported(endpoint.name().to_owned()))
}

/// A Tesseract the checks can call. Inputs are validated trees (declared dtypes, defaults
/// filled in); (co)tangents are keyed by concrete path. Batched calls take and return a
/// leading axis of `count`. Endpoints a subject cannot serve keep the default methods, which
/// answer [`Failure::Unsupported`], and have no [`Subject::route`].
pub trait Subject: Sync {
    /// The declared metadata and schema.
    fn info(&self) -> &Info;

    /// How `endpoint` is served (`native`, `looped`, ...), or `None` if it is not.
    fn route(&self, endpoint: Endpoint) -> Option<String>;

    /// # Errors
    /// See [`Failure`].
    fn apply(&self, inputs: &Tree) -> Outcome<Tree>;

    /// # Errors
    /// See [`Failure`].
    fn jacobian(
        &self,
        _inputs: &Tree,
        _ins: &[String],
        _outs: &[String],
    ) -> Outcome<JacobianBlocks> {
        unsupported(Endpoint::Jacobian)
    }

    /// # Errors
    /// See [`Failure`].
    fn jvp(
        &self,
        _inputs: &Tree,
        _ins: &[String],
        _outs: &[String],
        _tangent: &Vectors,
    ) -> Outcome<Vectors> {
        unsupported(Endpoint::Jvp)
    }

    /// # Errors
    /// See [`Failure`].
    fn vjp(
        &self,
        _inputs: &Tree,
        _ins: &[String],
        _outs: &[String],
        _cotangent: &Vectors,
    ) -> Outcome<Vectors> {
        unsupported(Endpoint::Vjp)
    }

    /// # Errors
    /// See [`Failure`].
    fn batched_jvp(
        &self,
        _inputs: &Tree,
        _ins: &[String],
        _outs: &[String],
        _tangents: &Vectors,
        _count: usize,
    ) -> Outcome<Vectors> {
        unsupported(Endpoint::BatchedJvp)
    }

    /// # Errors
    /// See [`Failure`].
    fn batched_vjp(
        &self,
        _inputs: &Tree,
        _ins: &[String],
        _outs: &[String],
        _cotangents: &Vectors,
        _count: usize,
    ) -> Outcome<Vectors> {
        unsupported(Endpoint::BatchedVjp)
    }

    /// # Errors
    /// See [`Failure`].
    fn abstract_eval(&self, _inputs: &AbstractTree) -> Outcome<AbstractTree> {
        unsupported(Endpoint::AbstractEval)
    }

    /// The same component with batches served by looping the scalar export, when this subject
    /// has a batched export to compare it against.
    fn looped_fallback(&self) -> Option<&dyn Subject> {
        None
    }
}
