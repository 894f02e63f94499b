//! What a component declares about its inputs and outputs.
//!
//! The host validates and casts requests with it and generates tesseract-core's OpenAPI
//! document from it; the guest SDK checks typed access against it.

use crate::DType;

/// One declared dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// Exactly this size (a size-1 input broadcasts to it).
    Fixed(usize),
    /// Any size, including 0 (`None` in tesseract-core).
    Any,
}

/// A declared shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeSpec {
    Ranked(Vec<Dim>),
    /// Any rank (`...` in tesseract-core).
    AnyRank,
}

impl ShapeSpec {
    /// A scalar: rank 0.
    pub fn scalar() -> ShapeSpec {
        ShapeSpec::Ranked(Vec::new())
    }

    /// The rank, unless any rank is allowed.
    pub fn rank(&self) -> Option<usize> {
        match self {
            ShapeSpec::Ranked(dims) => Some(dims.len()),
            ShapeSpec::AnyRank => None,
        }
    }

    /// Whether `shape` satisfies this spec exactly (no broadcasting).
    pub fn accepts(&self, shape: &[usize]) -> bool {
        match self {
            ShapeSpec::AnyRank => true,
            ShapeSpec::Ranked(dims) => {
                dims.len() == shape.len()
                    && dims.iter().zip(shape).all(|(d, &s)| match d {
                        Dim::Fixed(n) => *n == s,
                        Dim::Any => true,
                    })
            }
        }
    }
}

/// A declared array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArraySpec {
    pub dtype: DType,
    pub shape: ShapeSpec,
    pub differentiable: bool,
}

/// What a field holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    Array(ArraySpec),
    /// A plain value, with its JSON Schema as JSON text.
    Plain {
        json_schema: String,
    },
}

/// One declared field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// A path template: `a`, `a.v`, `items.[]`, `named.{}`.
    pub path: String,
    pub kind: FieldKind,
    pub description: String,
    /// The default as JSON text; `None` means required.
    pub default: Option<String>,
}

impl Field {
    /// The array spec, if this is an array field.
    pub fn array(&self) -> Option<&ArraySpec> {
        match &self.kind {
            FieldKind::Array(spec) => Some(spec),
            FieldKind::Plain { .. } => None,
        }
    }

    pub fn is_differentiable(&self) -> bool {
        self.array().is_some_and(|a| a.differentiable)
    }
}

/// Everything a component says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub version: String,
    pub description: String,
    pub inputs: Vec<Field>,
    pub outputs: Vec<Field>,
}

impl Info {
    /// The input field declared for template `path`.
    pub fn input(&self, path: &str) -> Option<&Field> {
        self.inputs.iter().find(|f| f.path == path)
    }

    /// The output field declared for template `path`.
    pub fn output(&self, path: &str) -> Option<&Field> {
        self.outputs.iter().find(|f| f.path == path)
    }
}
