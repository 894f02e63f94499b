//! The traits a Tesseract author implements. Only [`Tesseract`] is required; each optional
//! trait becomes one exported WIT interface when named in [`crate::export!`].

use crate::{
    AbstractInputs, AbstractOutputs, Arrays, Error, Inputs, JacobianBlocks, Outputs, Schema,
};

/// A Tesseract: a schema and an `apply`. Required.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Tesseract",
    label = "implement `tesseract_guest::Tesseract` (schema + apply) for `{Self}`"
)]
pub trait Tesseract: Default + 'static {
    /// Name, version, description and the declared input and output fields.
    fn schema() -> Schema;

    /// Evaluates the Tesseract.
    ///
    /// # Errors
    /// [`Error::invalid_input`] for inputs the schema cannot express as wrong (e.g. two vectors
    /// of different lengths); [`Error::failed`] when the computation fails.
    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error>;
}

/// The full jacobian: one block ∂out/∂in of shape `(*out, *in)` per requested pair.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no jacobian",
    label = "implement `tesseract_guest::Jacobian` for `{Self}`, or drop `jacobian` from `export!`"
)]
pub trait Jacobian: Tesseract {
    /// # Errors
    /// As [`Tesseract::apply`].
    fn jacobian(
        &self,
        inputs: &Inputs,
        jac_inputs: &[String],
        jac_outputs: &[String],
    ) -> Result<JacobianBlocks, Error>;
}

/// One jacobian-vector product. Tangents are keyed by input path and have the primal's shape;
/// the result is keyed by output path.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no jacobian-vector product",
    label = "implement `tesseract_guest::Jvp` for `{Self}`, or drop `jvp` from `export!`"
)]
pub trait Jvp: Tesseract {
    /// # Errors
    /// As [`Tesseract::apply`].
    fn jvp(
        &self,
        inputs: &Inputs,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangent: &Arrays,
    ) -> Result<Arrays, Error>;
}

/// One vector-jacobian product. Cotangents are keyed by output path; the result by input path.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no vector-jacobian product",
    label = "implement `tesseract_guest::Vjp` for `{Self}`, or drop `vjp` from `export!`"
)]
pub trait Vjp: Tesseract {
    /// # Errors
    /// As [`Tesseract::apply`].
    fn vjp(
        &self,
        inputs: &Inputs,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangent: &Arrays,
    ) -> Result<Arrays, Error>;
}

/// Output shapes and dtypes from input shapes and dtypes, without computing.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no abstract_eval",
    label = "implement `tesseract_guest::AbstractEval` for `{Self}`, or drop `abstract_eval` from `export!`"
)]
pub trait AbstractEval: Tesseract {
    /// # Errors
    /// As [`Tesseract::apply`].
    fn abstract_eval(&self, inputs: &AbstractInputs) -> Result<AbstractOutputs, Error>;
}

/// K jacobian-vector products at one primal. Every tangent has a leading axis of length
/// `count`, and so must every returned array. Implement this when the primal is expensive:
/// solve it once, then apply K tangents.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no batched jacobian-vector product",
    label = "implement `tesseract_guest::BatchedJvp` for `{Self}`, or drop `batched_jvp` from `export!`"
)]
pub trait BatchedJvp: Tesseract {
    /// # Errors
    /// As [`Tesseract::apply`].
    fn batched_jvp(
        &self,
        inputs: &Inputs,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangents: &Arrays,
        count: usize,
    ) -> Result<Arrays, Error>;
}

/// K vector-jacobian products at one primal, cotangents stacked on a leading axis of length
/// `count`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no batched vector-jacobian product",
    label = "implement `tesseract_guest::BatchedVjp` for `{Self}`, or drop `batched_vjp` from `export!`"
)]
pub trait BatchedVjp: Tesseract {
    /// # Errors
    /// As [`Tesseract::apply`].
    fn batched_vjp(
        &self,
        inputs: &Inputs,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangents: &Arrays,
        count: usize,
    ) -> Result<Arrays, Error>;
}
