//! Endpoint planning: how to serve a request, given what the component exports.
//!
//! Input is an [`Endpoint`] plus the component's [`Capabilities`]; output is a [`Route`].
//! Cheapest first: the endpoint's own export; a single jvp/vjp through the batched export with
//! K = 1; a batch by looping the scalar export on fresh instances; jvp/vjp by contracting the
//! jacobian; a jacobian through whichever of batched jvp/vjp needs fewer basis vectors;
//! abstract_eval by running apply on zeros. Pure: no wasmtime, no I/O. `inspect` prints the
//! same table.
//!
//! Derivations never loop: a jacobian is only derived from jvp/vjp *exports*, and jvp/vjp are
//! only derived from the jacobian when no jvp/vjp export exists.

use std::fmt;

/// An operation a caller can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Apply,
    Jacobian,
    Jvp,
    Vjp,
    /// K tangents at one primal.
    BatchedJvp,
    /// K cotangents at one primal.
    BatchedVjp,
    AbstractEval,
}

impl Endpoint {
    pub const ALL: [Endpoint; 7] = [
        Endpoint::Apply,
        Endpoint::Jacobian,
        Endpoint::Jvp,
        Endpoint::Vjp,
        Endpoint::BatchedJvp,
        Endpoint::BatchedVjp,
        Endpoint::AbstractEval,
    ];

    /// The name used in HTTP routes and the CLI (`jacobian_vector_product`, ...).
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
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which optional interfaces a component exports. Read from the component itself at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub jacobian: bool,
    pub jvp: bool,
    pub vjp: bool,
    pub abstract_eval: bool,
    pub batched_jvp: bool,
    pub batched_vjp: bool,
}

impl Capabilities {
    /// The same capabilities with the batched exports hidden, so batches take the looped
    /// route. For debugging a batched export and for benchmarks.
    pub fn without_batched(self) -> Capabilities {
        Capabilities {
            batched_jvp: false,
            batched_vjp: false,
            ..self
        }
    }

    fn has_jvp(self) -> bool {
        self.jvp || self.batched_jvp
    }

    fn has_vjp(self) -> bool {
        self.vjp || self.batched_vjp
    }

    fn can_jacobian(self) -> bool {
        self.jacobian || self.has_jvp() || self.has_vjp()
    }
}

/// Which way basis vectors go when a jacobian is assembled from products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// One tangent per input element, through batched jvp (as `jax.jacfwd`).
    Forward,
    /// One cotangent per output element, through batched vjp (as `jax.jacrev`).
    Reverse,
}

/// How an endpoint is served. The first step only: a derived route calls other endpoints,
/// which are planned in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The endpoint's own export.
    Native,
    /// A single jvp/vjp through the batched export, with K = 1.
    BatchedExport,
    /// A batch by calling the scalar export once per (co)tangent, on fresh instances in
    /// parallel.
    Looped,
    /// jvp/vjp (single or batched) by contracting the jacobian with the (co)tangents.
    FromJacobian,
    /// A jacobian from basis vectors through batched jvp and/or vjp. `forward`/`reverse` say
    /// which directions are possible; [`basis_direction`] picks one once sizes are known.
    Basis { forward: bool, reverse: bool },
    /// abstract_eval by running apply on zero-filled inputs of the given shapes.
    ApplyOnZeros,
}

impl Route {
    /// A short, stable name for responses and logs (`native`, `looped`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Route::Native => "native",
            Route::BatchedExport => "batched-export",
            Route::Looped => "looped",
            Route::FromJacobian => "from-jacobian",
            Route::Basis { .. } => "basis",
            Route::ApplyOnZeros => "apply-on-zeros",
        }
    }

    /// Whether the route is the endpoint's own export.
    pub fn is_native(self) -> bool {
        matches!(self, Route::Native)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Native => f.write_str("native"),
            Route::BatchedExport => f.write_str("derived: batched export with K = 1"),
            Route::Looped => f.write_str("looped: scalar export on parallel fresh instances"),
            Route::FromJacobian => f.write_str("derived: contracts the jacobian"),
            Route::Basis {
                forward: true,
                reverse: true,
            } => f.write_str(
                "derived: basis vectors through batched jvp or vjp, whichever needs fewer",
            ),
            Route::Basis { forward: true, .. } => {
                f.write_str("derived: basis vectors through batched jvp")
            }
            Route::Basis { .. } => f.write_str("derived: basis vectors through batched vjp"),
            Route::ApplyOnZeros => f.write_str("derived: apply on zero-filled inputs"),
        }
    }
}

/// Chooses how to serve `endpoint`, or `None` if the component cannot support it at all.
pub fn plan(endpoint: Endpoint, caps: Capabilities) -> Option<Route> {
    match endpoint {
        Endpoint::Apply => Some(Route::Native),
        Endpoint::AbstractEval if caps.abstract_eval => Some(Route::Native),
        Endpoint::AbstractEval => Some(Route::ApplyOnZeros),
        Endpoint::Jacobian if caps.jacobian => Some(Route::Native),
        Endpoint::Jacobian if caps.can_jacobian() => Some(Route::Basis {
            forward: caps.has_jvp(),
            reverse: caps.has_vjp(),
        }),
        Endpoint::Jacobian => None,
        Endpoint::Jvp if caps.jvp => Some(Route::Native),
        Endpoint::Jvp if caps.batched_jvp => Some(Route::BatchedExport),
        Endpoint::Vjp if caps.vjp => Some(Route::Native),
        Endpoint::Vjp if caps.batched_vjp => Some(Route::BatchedExport),
        Endpoint::BatchedJvp if caps.batched_jvp => Some(Route::Native),
        Endpoint::BatchedJvp if caps.jvp => Some(Route::Looped),
        Endpoint::BatchedVjp if caps.batched_vjp => Some(Route::Native),
        Endpoint::BatchedVjp if caps.vjp => Some(Route::Looped),
        Endpoint::Jvp | Endpoint::Vjp | Endpoint::BatchedJvp | Endpoint::BatchedVjp => {
            caps.can_jacobian().then_some(Route::FromJacobian)
        }
    }
}

/// Picks the basis direction for a derived jacobian with `n_in` input and `n_out` output
/// elements: the side with fewer basis vectors, as `jax.jacfwd`/`jacrev` advise. Ties go to
/// the side with a batched export, then forward.
pub fn basis_direction(caps: Capabilities, n_in: usize, n_out: usize) -> Option<Direction> {
    match (caps.has_jvp(), caps.has_vjp()) {
        (false, false) => None,
        (true, false) => Some(Direction::Forward),
        (false, true) => Some(Direction::Reverse),
        (true, true) if n_in < n_out => Some(Direction::Forward),
        (true, true) if n_out < n_in => Some(Direction::Reverse),
        (true, true) if caps.batched_vjp && !caps.batched_jvp => Some(Direction::Reverse),
        (true, true) => Some(Direction::Forward),
    }
}

#[cfg(test)]
mod tests;
