//! The data model both sides of the Tesseract WIT boundary share.
//!
//! The guest SDK and the host each convert their generated WIT bindings to and from these
//! types, so that path syntax, schema rules and tensor layout are written once. Nothing here
//! knows about wasm, JSON or HTTP.
//!
//! - [`Tensor`]: a dense C-order array of one [`DType`].
//! - [`Leaf`], [`Tree`], [`Vectors`]: flattened input/output trees keyed by [`path`] strings.
//! - [`schema`]: what a component declares about its inputs and outputs.
//! - [`GuestError`]: the error a component returns, with its [`ErrorKind`].

pub mod path;
pub mod schema;
mod tensor;
mod value;

pub use tensor::{DType, Data, Element, MAX_RANK, Tensor, TensorError};
pub use value::{
    AbstractLeaf, AbstractTree, ErrorKind, GuestError, JacobianBlocks, Leaf, Plain, ShapeDType,
    Tree, Vectors,
};
