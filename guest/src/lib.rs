//! Write a Tesseract in plain Rust; export it as a WebAssembly component.
//!
//! A Tesseract is a type that implements [`Tesseract`] (a [`Schema`] and `apply`) and any of
//! the optional capability traits: [`Jacobian`], [`Jvp`], [`Vjp`], [`AbstractEval`],
//! [`BatchedJvp`], [`BatchedVjp`]. One line exports exactly the capabilities named:
//!
//! ```
//! use tesseract_guest::{DType, Error, Field, Inputs, Outputs, Schema, Tesseract};
//!
//! #[derive(Default)]
//! pub struct Square;
//!
//! impl Tesseract for Square {
//!     fn schema() -> Schema {
//!         Schema::new("square", "0.1.0")
//!             .input(Field::array("x", DType::Float64, [None]).differentiable())
//!             .output(Field::array("y", DType::Float64, [None]).differentiable())
//!     }
//!
//!     fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
//!         let x = inputs.array1::<f64>("x")?;
//!         Ok(Outputs::new().with_array("y", x.mapv(|v| v * v)))
//!     }
//! }
//!
//! // Capabilities go after a colon: `export!(Square: jacobian, jvp, vjp)`.
//! tesseract_guest::export!(Square);
//! ```
//!
//! Inputs arrive validated by the host: every declared field present, arrays cast to their
//! declared dtype, as `ndarray` views through [`Inputs`]. Results go back through
//! [`Outputs`], [`Arrays`] and [`JacobianBlocks`]. Authors never see path syntax, JSON or raw
//! buffers.
//!
//! The crate compiles natively too: [`dispatch`] runs the same code the component runs, so the
//! maths is unit-tested natively and the native build is the speed reference for the `.wasm`.
//! Build the component with `tesseract-wasm build <crate-dir>` (target `wasm32-wasip2`).
#![deny(missing_docs)]

#[cfg(all(feature = "check", not(target_arch = "wasm32")))]
pub mod check;
pub mod dispatch;
mod schema;
mod traits;
mod values;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod component;

pub use ndarray;
pub use schema::{DefaultValue, Field, Schema};
pub use tesseract_model::schema::Info;
pub use tesseract_model::{DType, Element, ErrorKind, GuestError as Error, Plain};
pub use traits::{AbstractEval, BatchedJvp, BatchedVjp, Jacobian, Jvp, Tesseract, Vjp};
pub use values::{
    AbstractInputs, AbstractOutputs, Arrays, Inputs, JacobianBlocks, Outputs, to_tensor,
};

/// Exports a type as a Tesseract component with exactly the capabilities listed.
///
/// `export!(MyType)` exports `metadata` and `apply`; add any of `jacobian`, `jvp`, `vjp`,
/// `abstract_eval`, `batched_jvp`, `batched_vjp` after a colon. Each name requires the matching
/// trait. Off wasm32 the macro only checks those trait bounds, so native builds and tests work.
pub use tesseract_guest_macro::export;
