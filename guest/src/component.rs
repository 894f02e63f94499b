//! The wasm side of `export!`: WIT types, conversions to the shared model, and one entry point
//! per exported function. Hidden from docs; only the macro's expansion calls into it.
//!
//! The macro generates bindings for a world holding exactly the interfaces the author named,
//! and maps their shared `types` interface onto [`types`] here, so these conversions serve
//! every combination.

pub use wit_bindgen;

mod bindings {
    // The WIT text lives in the macro crate (see its `WIT`), so this package needs no copy.
    tesseract_guest_macro::__types_bindings!();
}

pub use bindings::tesseract::component::types;

use tesseract_model as m;
use types as w;

use crate::{AbstractEval, BatchedJvp, BatchedVjp, Jacobian, Jvp, Tesseract, Vjp, dispatch};

fn dtype_in(d: w::Dtype) -> m::DType {
    match d {
        w::Dtype::Float32 => m::DType::Float32,
        w::Dtype::Float64 => m::DType::Float64,
        w::Dtype::Int32 => m::DType::Int32,
        w::Dtype::Int64 => m::DType::Int64,
        w::Dtype::Boolean => m::DType::Bool,
    }
}

fn dtype_out(d: m::DType) -> w::Dtype {
    match d {
        m::DType::Float32 => w::Dtype::Float32,
        m::DType::Float64 => w::Dtype::Float64,
        m::DType::Int32 => w::Dtype::Int32,
        m::DType::Int64 => w::Dtype::Int64,
        m::DType::Bool => w::Dtype::Boolean,
    }
}

fn shape_in(shape: Vec<u64>) -> Result<Vec<usize>, m::GuestError> {
    shape
        .into_iter()
        .map(|d| {
            usize::try_from(d).map_err(|_| {
                m::GuestError::invalid_input(format!("dimension {d} is too large for wasm32"))
            })
        })
        .collect()
}

fn shape_out(shape: &[usize]) -> Vec<u64> {
    shape.iter().map(|&d| d as u64).collect()
}

fn tensor_in(t: w::Tensor) -> Result<m::Tensor, m::GuestError> {
    let data = match t.data {
        w::Buffer::Float32(v) => m::Data::Float32(v),
        w::Buffer::Float64(v) => m::Data::Float64(v),
        w::Buffer::Int32(v) => m::Data::Int32(v),
        w::Buffer::Int64(v) => m::Data::Int64(v),
        w::Buffer::Boolean(v) => m::Data::Bool(v.into_iter().map(|b| b != 0).collect()),
    };
    m::Tensor::new(shape_in(t.shape)?, data)
        .map_err(|e| m::GuestError::invalid_input(e.to_string()))
}

fn tensor_out(t: m::Tensor) -> w::Tensor {
    let (shape, data) = t.into_parts();
    let data = match data {
        m::Data::Float32(v) => w::Buffer::Float32(v),
        m::Data::Float64(v) => w::Buffer::Float64(v),
        m::Data::Int32(v) => w::Buffer::Int32(v),
        m::Data::Int64(v) => w::Buffer::Int64(v),
        m::Data::Bool(v) => w::Buffer::Boolean(v.into_iter().map(u8::from).collect()),
    };
    w::Tensor {
        shape: shape_out(&shape),
        data,
    }
}

fn plain_in(p: w::Plain) -> m::Plain {
    match p {
        w::Plain::Boolean(b) => m::Plain::Bool(b),
        w::Plain::Integer(i) => m::Plain::Int(i),
        w::Plain::Float(x) => m::Plain::Float(x),
        w::Plain::Text(s) => m::Plain::Text(s),
        w::Plain::Json(s) => m::Plain::Json(s),
    }
}

fn plain_out(p: m::Plain) -> w::Plain {
    match p {
        m::Plain::Bool(b) => w::Plain::Boolean(b),
        m::Plain::Int(i) => w::Plain::Integer(i),
        m::Plain::Float(x) => w::Plain::Float(x),
        m::Plain::Text(s) => w::Plain::Text(s),
        m::Plain::Json(s) => w::Plain::Json(s),
    }
}

fn tree_in(tree: Vec<(String, w::Leaf)>) -> Result<m::Tree, m::GuestError> {
    tree.into_iter()
        .map(|(path, leaf)| {
            let leaf = match leaf {
                w::Leaf::Tensor(t) => m::Leaf::Tensor(tensor_in(t)?),
                w::Leaf::Plain(p) => m::Leaf::Plain(plain_in(p)),
            };
            Ok((path, leaf))
        })
        .collect()
}

fn tree_out(tree: m::Tree) -> Vec<(String, w::Leaf)> {
    tree.into_iter()
        .map(|(path, leaf)| {
            let leaf = match leaf {
                m::Leaf::Tensor(t) => w::Leaf::Tensor(tensor_out(t)),
                m::Leaf::Plain(p) => w::Leaf::Plain(plain_out(p)),
            };
            (path, leaf)
        })
        .collect()
}

fn vectors_in(v: Vec<(String, w::Tensor)>) -> Result<m::Vectors, m::GuestError> {
    v.into_iter()
        .map(|(path, t)| Ok((path, tensor_in(t)?)))
        .collect()
}

fn vectors_out(v: m::Vectors) -> Vec<(String, w::Tensor)> {
    v.into_iter()
        .map(|(path, t)| (path, tensor_out(t)))
        .collect()
}

fn abstract_in(tree: Vec<(String, w::AbstractLeaf)>) -> Result<m::AbstractTree, m::GuestError> {
    tree.into_iter()
        .map(|(path, leaf)| {
            let leaf = match leaf {
                w::AbstractLeaf::Array(sd) => m::AbstractLeaf::Array(m::ShapeDType {
                    shape: shape_in(sd.shape)?,
                    dtype: dtype_in(sd.dtype),
                }),
                w::AbstractLeaf::Plain(p) => m::AbstractLeaf::Plain(plain_in(p)),
            };
            Ok((path, leaf))
        })
        .collect()
}

fn abstract_out(tree: m::AbstractTree) -> Vec<(String, w::AbstractLeaf)> {
    tree.into_iter()
        .map(|(path, leaf)| {
            let leaf = match leaf {
                m::AbstractLeaf::Array(sd) => w::AbstractLeaf::Array(w::ShapeDtype {
                    shape: shape_out(&sd.shape),
                    dtype: dtype_out(sd.dtype),
                }),
                m::AbstractLeaf::Plain(p) => w::AbstractLeaf::Plain(plain_out(p)),
            };
            (path, leaf)
        })
        .collect()
}

fn error_out(e: m::GuestError) -> w::Error {
    let kind = match e.kind {
        m::ErrorKind::InvalidInput => w::ErrorKind::InvalidInput,
        m::ErrorKind::Failed => w::ErrorKind::Failed,
    };
    w::Error {
        kind,
        message: e.message,
    }
}

fn info_out(info: m::schema::Info) -> w::Info {
    use m::schema::{Dim, FieldKind, ShapeSpec};
    let field = |f: m::schema::Field| w::Field {
        path: f.path,
        kind: match f.kind {
            FieldKind::Array(a) => w::FieldKind::Array(w::ArraySpec {
                dtype: dtype_out(a.dtype),
                shape: match a.shape {
                    ShapeSpec::AnyRank => w::ShapeSpec::AnyRank,
                    ShapeSpec::Ranked(dims) => w::ShapeSpec::Ranked(
                        dims.into_iter()
                            .map(|d| match d {
                                Dim::Fixed(n) => w::Dim::Fixed(n as u64),
                                Dim::Any => w::Dim::Any,
                            })
                            .collect(),
                    ),
                },
                differentiable: a.differentiable,
            }),
            FieldKind::Plain { json_schema } => w::FieldKind::Plain(json_schema),
        },
        description: f.description,
        default: f.default,
    };
    w::Info {
        name: info.name,
        version: info.version,
        description: info.description,
        inputs: info.inputs.into_iter().map(field).collect(),
        outputs: info.outputs.into_iter().map(field).collect(),
    }
}

type WTree = Vec<(String, w::Leaf)>;
type WVectors = Vec<(String, w::Tensor)>;

fn count_in(count: u32) -> Result<usize, m::GuestError> {
    usize::try_from(count).map_err(|_| m::GuestError::invalid_input("batch too large"))
}

/// `tesseract.metadata`.
pub fn metadata<T: Tesseract>() -> w::Info {
    info_out(dispatch::metadata::<T>())
}

/// `tesseract.apply`.
pub fn apply<T: Tesseract>(inputs: WTree) -> Result<WTree, w::Error> {
    let run = || dispatch::apply::<T>(tree_in(inputs)?);
    run().map(tree_out).map_err(error_out)
}

/// `jacobian.jacobian`.
pub fn jacobian<T: Jacobian>(
    inputs: WTree,
    jac_inputs: Vec<String>,
    jac_outputs: Vec<String>,
) -> Result<Vec<(String, String, w::Tensor)>, w::Error> {
    let run = || dispatch::jacobian::<T>(tree_in(inputs)?, &jac_inputs, &jac_outputs);
    run()
        .map(|blocks| {
            blocks
                .into_iter()
                .map(|((o, i), t)| (o, i, tensor_out(t)))
                .collect()
        })
        .map_err(error_out)
}

/// `jvp.jacobian-vector-product`.
pub fn jvp<T: Jvp>(
    inputs: WTree,
    jvp_inputs: Vec<String>,
    jvp_outputs: Vec<String>,
    tangent: WVectors,
) -> Result<WVectors, w::Error> {
    let run = || {
        dispatch::jvp::<T>(
            tree_in(inputs)?,
            &jvp_inputs,
            &jvp_outputs,
            vectors_in(tangent)?,
        )
    };
    run().map(vectors_out).map_err(error_out)
}

/// `vjp.vector-jacobian-product`.
pub fn vjp<T: Vjp>(
    inputs: WTree,
    vjp_inputs: Vec<String>,
    vjp_outputs: Vec<String>,
    cotangent: WVectors,
) -> Result<WVectors, w::Error> {
    let run = || {
        dispatch::vjp::<T>(
            tree_in(inputs)?,
            &vjp_inputs,
            &vjp_outputs,
            vectors_in(cotangent)?,
        )
    };
    run().map(vectors_out).map_err(error_out)
}

/// `abstract-eval.abstract-eval`.
pub fn abstract_eval<T: AbstractEval>(
    inputs: Vec<(String, w::AbstractLeaf)>,
) -> Result<Vec<(String, w::AbstractLeaf)>, w::Error> {
    let run = || dispatch::abstract_eval::<T>(abstract_in(inputs)?);
    run().map(abstract_out).map_err(error_out)
}

/// `batched-jvp.batched-jacobian-vector-product`.
pub fn batched_jvp<T: BatchedJvp>(
    inputs: WTree,
    jvp_inputs: Vec<String>,
    jvp_outputs: Vec<String>,
    tangents: WVectors,
    count: u32,
) -> Result<WVectors, w::Error> {
    let run = || {
        dispatch::batched_jvp::<T>(
            tree_in(inputs)?,
            &jvp_inputs,
            &jvp_outputs,
            vectors_in(tangents)?,
            count_in(count)?,
        )
    };
    run().map(vectors_out).map_err(error_out)
}

/// `batched-vjp.batched-vector-jacobian-product`.
pub fn batched_vjp<T: BatchedVjp>(
    inputs: WTree,
    vjp_inputs: Vec<String>,
    vjp_outputs: Vec<String>,
    cotangents: WVectors,
    count: u32,
) -> Result<WVectors, w::Error> {
    let run = || {
        dispatch::batched_vjp::<T>(
            tree_in(inputs)?,
            &vjp_inputs,
            &vjp_outputs,
            vectors_in(cotangents)?,
            count_in(count)?,
        )
    };
    run().map(vectors_out).map_err(error_out)
}
