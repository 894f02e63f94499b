//! `tesseract-check`'s [`Subject`] over the sandboxed [`Runtime`]: every check calls the
//! component exactly as the server would, each call on a fresh instance with the engine's
//! limits. A component with a batched export also gets a looped-fallback subject
//! (`ignore_batched_exports`) for the check to compare the export against.

use std::sync::Arc;

use tesseract_check::{Endpoint as E, Failure, Outcome, Subject};
use tesseract_model::schema::Info;
use tesseract_model::{AbstractTree, ErrorKind, JacobianBlocks, Tree, Vectors};

use crate::component::Tesseract;
use crate::planner::Endpoint;
use crate::runtime::{Runtime, RuntimeOptions};
use crate::sandbox::CallError;

/// A loaded component as the checks see it.
pub struct RuntimeSubject {
    runtime: Runtime,
    fallback: Option<Box<RuntimeSubject>>,
}

impl RuntimeSubject {
    /// The component served along its usual routes, with a looped fallback when it exports a
    /// batched jvp or vjp.
    pub fn new(component: Arc<Tesseract>) -> RuntimeSubject {
        let caps = component.capabilities();
        let fallback = (caps.batched_jvp || caps.batched_vjp).then(|| {
            Box::new(RuntimeSubject {
                runtime: Runtime::new(
                    Arc::clone(&component),
                    RuntimeOptions {
                        ignore_batched_exports: true,
                    },
                ),
                fallback: None,
            })
        });
        RuntimeSubject {
            runtime: Runtime::new(component, RuntimeOptions::default()),
            fallback,
        }
    }
}

fn endpoint(e: E) -> Endpoint {
    match e {
        E::Apply => Endpoint::Apply,
        E::Jacobian => Endpoint::Jacobian,
        E::Jvp => Endpoint::Jvp,
        E::Vjp => Endpoint::Vjp,
        E::BatchedJvp => Endpoint::BatchedJvp,
        E::BatchedVjp => Endpoint::BatchedVjp,
        E::AbstractEval => Endpoint::AbstractEval,
    }
}

/// What the check needs to know of a host error: refused inputs, a guest failure, a trap, a
/// deadline, a broken contract.
fn failure(e: CallError) -> Failure {
    let text = e.to_string();
    match e {
        CallError::Guest(g) if g.kind == ErrorKind::InvalidInput => {
            Failure::InvalidInput(g.message)
        }
        CallError::Guest(g) => Failure::Failed(g.message),
        CallError::InvalidRequest(msg) => Failure::InvalidInput(msg),
        CallError::Trap { .. } | CallError::MemoryLimit { .. } | CallError::StackOverflow => {
            Failure::Trap(text)
        }
        CallError::Timeout { .. } => Failure::Timeout(text),
        CallError::Contract(msg) => Failure::Contract(msg),
        CallError::Unsupported(what) => Failure::Unsupported(what),
        _ => Failure::Other(text),
    }
}

impl Subject for RuntimeSubject {
    fn info(&self) -> &Info {
        self.runtime.component().info()
    }

    fn route(&self, e: E) -> Option<String> {
        self.runtime.route(endpoint(e)).map(|r| r.name().to_owned())
    }

    fn apply(&self, inputs: &Tree) -> Outcome<Tree> {
        self.runtime
            .apply(inputs.clone())
            .map(|s| s.value)
            .map_err(failure)
    }

    fn jacobian(&self, inputs: &Tree, ins: &[String], outs: &[String]) -> Outcome<JacobianBlocks> {
        self.runtime
            .jacobian(inputs, ins, outs)
            .map(|s| s.value)
            .map_err(failure)
    }

    fn jvp(
        &self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
        tangent: &Vectors,
    ) -> Outcome<Vectors> {
        self.runtime
            .jvp(inputs, ins, outs, tangent)
            .map(|s| s.value)
            .map_err(failure)
    }

    fn vjp(
        &self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
        cotangent: &Vectors,
    ) -> Outcome<Vectors> {
        self.runtime
            .vjp(inputs, ins, outs, cotangent)
            .map(|s| s.value)
            .map_err(failure)
    }

    fn batched_jvp(
        &self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
        tangents: &Vectors,
        count: usize,
    ) -> Outcome<Vectors> {
        self.runtime
            .batched_jvp(inputs, ins, outs, tangents, count)
            .map(|s| s.value)
            .map_err(failure)
    }

    fn batched_vjp(
        &self,
        inputs: &Tree,
        ins: &[String],
        outs: &[String],
        cotangents: &Vectors,
        count: usize,
    ) -> Outcome<Vectors> {
        self.runtime
            .batched_vjp(inputs, ins, outs, cotangents, count)
            .map(|s| s.value)
            .map_err(failure)
    }

    fn abstract_eval(&self, inputs: &AbstractTree) -> Outcome<AbstractTree> {
        self.runtime
            .abstract_eval(inputs)
            .map(|s| s.value)
            .map_err(failure)
    }

    fn looped_fallback(&self) -> Option<&dyn Subject> {
        self.fallback.as_deref().map(|f| f as &dyn Subject)
    }
}
