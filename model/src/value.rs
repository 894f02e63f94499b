//! Leaves, trees and errors: what crosses the boundary besides tensors.

use std::collections::BTreeMap;
use std::fmt;

use crate::{DType, Tensor};

/// A non-array leaf. Nested non-array values travel as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub enum Plain {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Json(String),
}

/// One leaf of a flattened tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    Tensor(Tensor),
    Plain(Plain),
}

/// A tree flattened to concrete paths (`a.v`, `items.[1]`, `named.{k}`).
pub type Tree = BTreeMap<String, Leaf>;

/// (Co)tangents or derivative results keyed by concrete path.
pub type Vectors = BTreeMap<String, Tensor>;

/// Jacobian blocks keyed by (output path, input path); each has shape `(*out, *in)`.
pub type JacobianBlocks = BTreeMap<(String, String), Tensor>;

/// An array's shape and dtype, without data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeDType {
    pub shape: Vec<usize>,
    pub dtype: DType,
}

/// A leaf of an abstract (shape-only) tree.
#[derive(Debug, Clone, PartialEq)]
pub enum AbstractLeaf {
    Array(ShapeDType),
    Plain(Plain),
}

/// A shape-only tree, as abstract_eval takes and returns it.
pub type AbstractTree = BTreeMap<String, AbstractLeaf>;

/// Why a component refused or failed a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The inputs are wrong; the caller can fix the request (HTTP 422).
    InvalidInput,
    /// The computation failed (HTTP 500).
    Failed,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::InvalidInput => "invalid-input",
            ErrorKind::Failed => "failed",
        })
    }
}

/// An error a component returned (as opposed to a trap).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct GuestError {
    pub kind: ErrorKind,
    pub message: String,
}

impl GuestError {
    pub fn invalid_input(message: impl Into<String>) -> GuestError {
        GuestError {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> GuestError {
        GuestError {
            kind: ErrorKind::Failed,
            message: message.into(),
        }
    }
}
