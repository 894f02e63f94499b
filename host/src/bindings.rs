//! Host bindings for the WIT contract, and conversions to and from the shared model.
//!
//! One `bindgen!` over the `full` world gives a `GuestIndices` per interface; `component`
//! resolves each optional one on its own, so any subset of exports loads.

use tesseract_model as m;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "full",
    // Calls are futures so that a short one can run on the Tokio worker that read its request
    // and a long one can move off it midway (`crate::drive`).
    exports: { default: async },
});

pub use exports::tesseract::component::tesseract as required;
pub use exports::tesseract::component::{
    abstract_eval, batched_jvp, batched_vjp, jacobian, jvp, vjp,
};
pub use tesseract::component::types as w;

/// The component handed back something that breaks the contract (e.g. a tensor whose buffer
/// does not match its shape).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ContractViolation(pub String);

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

fn shape_in(shape: Vec<u64>) -> Result<Vec<usize>, ContractViolation> {
    shape
        .into_iter()
        .map(|d| {
            usize::try_from(d)
                .map_err(|_| ContractViolation(format!("dimension {d} does not fit in usize")))
        })
        .collect()
}

fn shape_out(shape: &[usize]) -> Vec<u64> {
    shape.iter().map(|&d| d as u64).collect()
}

/// Lifts a guest tensor, checking its buffer matches its shape.
///
/// # Errors
/// [`ContractViolation`] when it does not.
pub fn tensor_in(t: w::Tensor) -> Result<m::Tensor, ContractViolation> {
    let data = match t.data {
        w::Buffer::Float32(v) => m::Data::Float32(v),
        w::Buffer::Float64(v) => m::Data::Float64(v),
        w::Buffer::Int32(v) => m::Data::Int32(v),
        w::Buffer::Int64(v) => m::Data::Int64(v),
        w::Buffer::Boolean(v) => m::Data::Bool(v.into_iter().map(|b| b != 0).collect()),
    };
    m::Tensor::new(shape_in(t.shape)?, data).map_err(|e| ContractViolation(e.to_string()))
}

/// Lowers a tensor for the guest, moving its buffer (wasmtime then copies it into guest memory).
pub fn tensor_into(t: m::Tensor) -> w::Tensor {
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

/// Lowers a tensor the caller keeps: copies the buffer once.
pub fn tensor_out(t: &m::Tensor) -> w::Tensor {
    tensor_into(t.clone())
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

fn plain_into(p: m::Plain) -> w::Plain {
    match p {
        m::Plain::Bool(b) => w::Plain::Boolean(b),
        m::Plain::Int(i) => w::Plain::Integer(i),
        m::Plain::Float(x) => w::Plain::Float(x),
        m::Plain::Text(s) => w::Plain::Text(s),
        m::Plain::Json(s) => w::Plain::Json(s),
    }
}

/// # Errors
/// [`ContractViolation`] for a malformed tensor.
pub fn tree_in(tree: Vec<(String, w::Leaf)>) -> Result<m::Tree, ContractViolation> {
    let mut out = m::Tree::new();
    for (path, leaf) in tree {
        let leaf = match leaf {
            w::Leaf::Tensor(t) => m::Leaf::Tensor(tensor_in(t)?),
            w::Leaf::Plain(p) => m::Leaf::Plain(plain_in(p)),
        };
        if out.insert(path.clone(), leaf).is_some() {
            return Err(ContractViolation(format!("path `{path}` returned twice")));
        }
    }
    Ok(out)
}

/// Lowers a tree the caller gives up: its buffers move, so a request's arrays are copied only
/// into guest memory.
pub fn tree_into(tree: m::Tree) -> Vec<(String, w::Leaf)> {
    tree.into_iter()
        .map(|(path, leaf)| {
            let leaf = match leaf {
                m::Leaf::Tensor(t) => w::Leaf::Tensor(tensor_into(t)),
                m::Leaf::Plain(p) => w::Leaf::Plain(plain_into(p)),
            };
            (path, leaf)
        })
        .collect()
}

/// Lowers a tree the caller keeps (e.g. one primal for many calls): copies every buffer once.
pub fn tree_out(tree: &m::Tree) -> Vec<(String, w::Leaf)> {
    tree_into(tree.clone())
}

/// # Errors
/// [`ContractViolation`] for a malformed tensor or a repeated path.
pub fn vectors_in(v: Vec<(String, w::Tensor)>) -> Result<m::Vectors, ContractViolation> {
    let mut out = m::Vectors::new();
    for (path, t) in v {
        if out.insert(path.clone(), tensor_in(t)?).is_some() {
            return Err(ContractViolation(format!("path `{path}` returned twice")));
        }
    }
    Ok(out)
}

pub fn vectors_out(v: &m::Vectors) -> Vec<(String, w::Tensor)> {
    v.iter()
        .map(|(path, t)| (path.clone(), tensor_out(t)))
        .collect()
}

/// # Errors
/// [`ContractViolation`] for a malformed tensor or a repeated block.
pub fn blocks_in(
    blocks: Vec<(String, String, w::Tensor)>,
) -> Result<m::JacobianBlocks, ContractViolation> {
    let mut out = m::JacobianBlocks::new();
    for (o, i, t) in blocks {
        if out.insert((o.clone(), i.clone()), tensor_in(t)?).is_some() {
            return Err(ContractViolation(format!(
                "jacobian block ({o}, {i}) returned twice"
            )));
        }
    }
    Ok(out)
}

/// # Errors
/// [`ContractViolation`] for a dimension that does not fit in `usize`.
pub fn abstract_in(
    tree: Vec<(String, w::AbstractLeaf)>,
) -> Result<m::AbstractTree, ContractViolation> {
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

pub fn abstract_out(tree: &m::AbstractTree) -> Vec<(String, w::AbstractLeaf)> {
    tree.iter()
        .map(|(path, leaf)| {
            let leaf = match leaf {
                m::AbstractLeaf::Array(sd) => w::AbstractLeaf::Array(w::ShapeDtype {
                    shape: shape_out(&sd.shape),
                    dtype: dtype_out(sd.dtype),
                }),
                m::AbstractLeaf::Plain(p) => w::AbstractLeaf::Plain(plain_into(p.clone())),
            };
            (path.clone(), leaf)
        })
        .collect()
}

pub fn error_in(e: w::Error) -> m::GuestError {
    let kind = match e.kind {
        w::ErrorKind::InvalidInput => m::ErrorKind::InvalidInput,
        w::ErrorKind::Failed => m::ErrorKind::Failed,
    };
    m::GuestError {
        kind,
        message: e.message,
    }
}

/// # Errors
/// [`ContractViolation`] for a fixed dimension that does not fit in `usize`.
pub fn info_in(info: w::Info) -> Result<m::schema::Info, ContractViolation> {
    use m::schema::{ArraySpec, Dim, Field, FieldKind, ShapeSpec};
    let field = |f: w::Field| -> Result<Field, ContractViolation> {
        let kind = match f.kind {
            w::FieldKind::Array(a) => FieldKind::Array(ArraySpec {
                dtype: dtype_in(a.dtype),
                shape: match a.shape {
                    w::ShapeSpec::AnyRank => ShapeSpec::AnyRank,
                    w::ShapeSpec::Ranked(dims) => ShapeSpec::Ranked(
                        dims.into_iter()
                            .map(|d| match d {
                                w::Dim::Fixed(n) => {
                                    usize::try_from(n).map(Dim::Fixed).map_err(|_| {
                                        ContractViolation(format!(
                                            "dimension {n} does not fit in usize"
                                        ))
                                    })
                                }
                                w::Dim::Any => Ok(Dim::Any),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                },
                differentiable: a.differentiable,
            }),
            w::FieldKind::Plain(json_schema) => FieldKind::Plain { json_schema },
        };
        Ok(Field {
            path: f.path,
            kind,
            description: f.description,
            default: f.default,
        })
    };
    Ok(m::schema::Info {
        name: info.name,
        version: info.version,
        description: info.description,
        inputs: info
            .inputs
            .into_iter()
            .map(field)
            .collect::<Result<_, _>>()?,
        outputs: info
            .outputs
            .into_iter()
            .map(field)
            .collect::<Result<_, _>>()?,
    })
}
