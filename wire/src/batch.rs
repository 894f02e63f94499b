//! The batch rule for (co)tangents (DESIGN decision 7, README "Many (co)tangents in one
//! request"), with no runtime: shapes and tensors in, a batch shape and K or an error out.
//!
//! For a primal (or output) of shape `P` and a (co)tangent of shape `T`:
//!
//! - `rank(T) == rank(P)`: one (co)tangent; size-1 dimensions broadcast to `P`, as upstream.
//! - `rank(T) > rank(P)`: a batch. `T = B ++ P'` with `P'` matching `P` as above. Every
//!   batched (co)tangent of the request must have the same batch shape `B`; unbatched ones are
//!   broadcast across the batch.
//! - anything else, batched (co)tangents that disagree on `B`, more than
//!   [`Limits::max_batch`] (co)tangents, or more than [`Limits::max_vector_bytes`] once
//!   broadcast, is an error naming the shapes or the limit (a 422 on the HTTP path).
//!
//! Every size is computed (and checked against the limits) before anything is broadcast or
//! copied, so a request cannot make this module allocate more than the limits allow.

use tesseract_model::schema::ShapeSpec;
use tesseract_model::{DType, Tensor, TensorError, Vectors};

use crate::codec::{self, DecodeOptions, checked_numel};
use crate::schema::check_shape;

/// What a (co)tangent's shape is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// The primal's (or output's) actual shape.
    Actual(Vec<usize>),
    /// The output's declared shape, when its actual shape is not known before the call.
    Declared(ShapeSpec),
}

/// How large a batch may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most (co)tangents one request may carry (the product of its batch axes).
    pub max_batch: usize,
    /// Most bytes the (co)tangents of one request may take once broadcast and copied across
    /// the batch.
    pub max_vector_bytes: u64,
}

/// How one (co)tangent fits its reference, computed from shapes alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fit {
    /// The leading batch axes `B` (empty for a single (co)tangent).
    pub batch: Vec<usize>,
    /// The shape each (co)tangent of the batch is broadcast to.
    pub target: Vec<usize>,
}

impl Fit {
    /// K: the number of (co)tangents, 1 when unbatched.
    pub fn count(&self) -> usize {
        // `plan` checked the product.
        checked_numel(&self.batch).unwrap_or(usize::MAX)
    }
}

/// An error of the batch rule for one entry (`key`) or for the whole set (`key == None`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct BatchError {
    /// The (co)tangent the error is about, if it is about one.
    pub key: Option<String>,
    /// The message, naming the shapes or the limit.
    pub msg: String,
}

impl BatchError {
    fn at(key: &str, msg: String) -> BatchError {
        BatchError {
            key: Some(key.to_owned()),
            msg,
        }
    }
}

/// Bytes of `count` arrays of `shape` and `dtype`, saturating.
pub fn vector_bytes(count: usize, shape: &[usize], dtype: DType) -> u64 {
    let elements = checked_numel(shape)
        .and_then(|n| n.checked_mul(count))
        .unwrap_or(usize::MAX);
    (elements as u64).saturating_mul(dtype.size_bytes() as u64)
}

/// Splits `shape` into batch axes and a trailing part that fits `reference`, and checks the
/// limits, without touching any data. The message starts after the entry's name ("has shape
/// …").
///
/// # Errors
/// Too few dimensions, a trailing part that neither matches nor broadcasts, an empty batch,
/// a batch above `max_batch`, or more than `max_vector_bytes` once broadcast.
pub fn plan(
    shape: &[usize],
    dtype: DType,
    reference: &Reference,
    limits: &Limits,
) -> Result<Fit, String> {
    let rank = match reference {
        Reference::Actual(s) => Some(s.len()),
        Reference::Declared(spec) => spec.rank(),
    };
    let Some(rank) = rank else {
        // Any rank: nothing to split by, so it is one (co)tangent of its own shape.
        return Ok(Fit {
            batch: Vec::new(),
            target: shape.to_vec(),
        });
    };
    if shape.len() < rank {
        return Err(format!(
            "has shape {shape:?}, which has fewer dimensions than the expected {rank}"
        ));
    }
    let (batch, trailing) = shape.split_at(shape.len() - rank);
    let target: Vec<usize> = match reference {
        Reference::Actual(s) => s.clone(),
        Reference::Declared(spec) => check_shape(spec, trailing).map_err(|e| e.msg)?,
    };
    let count = checked_numel(batch)
        .filter(|&c| c <= limits.max_batch)
        .ok_or_else(|| {
            format!(
                "has batch axes {batch:?}: more than the limit of {} vectors (--max-batch)",
                limits.max_batch
            )
        })?;
    if count == 0 {
        return Err(format!(
            "has batch axes {batch:?}: a batch needs at least one vector"
        ));
    }
    // A zero-sized dimension makes any product zero, but the same dimensions in another order
    // (the broadcast result) could still overflow on the way: refuse such shapes outright.
    let addressable = |dims: &[usize]| {
        dims.iter()
            .filter(|&&d| d != 0)
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .is_some()
    };
    if !addressable(shape) || !addressable(&[batch, target.as_slice()].concat()) {
        return Err(format!(
            "has shape {shape:?}, which has more elements than this server can address"
        ));
    }
    let bytes = vector_bytes(count, &target, dtype);
    if bytes > limits.max_vector_bytes {
        return Err(format!(
            "would take {bytes} bytes once broadcast to {target:?}, more than the {} bytes a batch may use (--max-memory)",
            limits.max_vector_bytes
        ));
    }
    if trailing
        .iter()
        .zip(&target)
        .any(|(&a, &b)| a != b && a != 1)
    {
        return Err(format!(
            "has shape {shape:?}, which does not end with the expected {target:?}"
        ));
    }
    Ok(Fit {
        batch: batch.to_vec(),
        target,
    })
}

/// Fits one (co)tangent to `reference` (see [`plan`]) and broadcasts its trailing size-1
/// dimensions across every member of the batch at once. Returns the tensor of shape
/// `B ++ target` and `B`. A broadcast is a new array, so it is charged to `alloc` (the
/// request's element budget) before it is made.
///
/// # Errors
/// The errors of [`plan`], and a broadcast the request's limits do not allow.
pub fn fit_vector(
    t: Tensor,
    reference: &Reference,
    limits: &Limits,
    alloc: &DecodeOptions,
) -> Result<(Tensor, Vec<usize>), String> {
    let fit = plan(t.shape(), t.dtype(), reference, limits)?;
    let Fit { batch, target } = fit;
    if t.shape()[batch.len()..] == target[..] {
        return Ok((t, batch));
    }
    let full = [batch.as_slice(), target.as_slice()].concat();
    alloc
        .charge_allocation(&full, t.dtype())
        .map_err(|e| e.msg)?;
    let out =
        codec::broadcast_to(t, &full).ok_or_else(|| format!("cannot broadcast to {target:?}"))?;
    Ok((out, batch))
}

/// The batch shape of a request: the one every batched entry shares (empty when none is
/// batched). `entries` are `(key, B)` in request order.
///
/// # Errors
/// One error per entry whose `B` differs from the first batched entry's.
pub fn common_batch<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a [usize])>,
) -> Result<Vec<usize>, Vec<BatchError>> {
    let mut first: Option<(&str, &[usize])> = None;
    let mut errors = Vec::new();
    for (key, b) in entries {
        match first {
            _ if b.is_empty() => {}
            None => first = Some((key, b)),
            Some((fk, fb)) if fb != b => errors.push(BatchError::at(
                key,
                format!(
                    "`{key}` has batch shape {b:?} but `{fk}` has {fb:?}; batched entries must share their leading batch axes"
                ),
            )),
            Some(_) => {}
        }
    }
    if errors.is_empty() {
        Ok(first.map(|(_, b)| b.to_vec()).unwrap_or_default())
    } else {
        Err(errors)
    }
}

/// Assembles fitted (co)tangents `(key, tensor, B)` into one map of shape `batch ++ …` each,
/// copying unbatched entries across the batch. The total size is checked against
/// `max_vector_bytes`, and each copy against `alloc` (the request's element budget), before
/// anything is copied. `name` is the request field, for messages.
///
/// # Errors
/// A disagreeing batch shape (see [`common_batch`]), or the total over a limit.
pub fn assemble(
    name: &str,
    fitted: Vec<(String, Tensor, Vec<usize>)>,
    limits: &Limits,
    alloc: &DecodeOptions,
) -> Result<(Vectors, Vec<usize>), Vec<BatchError>> {
    let batch = common_batch(fitted.iter().map(|(k, _, b)| (k.as_str(), b.as_slice())))?;
    let count = checked_numel(&batch).unwrap_or(usize::MAX);
    let total = fitted
        .iter()
        .map(|(_, t, b)| {
            let copies = if b.is_empty() { count } else { 1 };
            vector_bytes(copies, t.shape(), t.dtype())
        })
        .fold(0u64, u64::saturating_add);
    if total > limits.max_vector_bytes {
        return Err(vec![BatchError {
            key: None,
            msg: format!(
                "{name} would take {total} bytes once unbatched entries are copied across the batch of {count}, more than the {} bytes a batch may use (--max-memory)",
                limits.max_vector_bytes
            ),
        }]);
    }
    let mut vectors = Vectors::new();
    for (key, t, b) in fitted {
        let t = if b.is_empty() && !batch.is_empty() {
            let full = [batch.as_slice(), t.shape()].concat();
            alloc
                .charge_allocation(&full, t.dtype())
                .map_err(|e| vec![BatchError::at(&key, e.msg)])?;
            t.repeat(count)
                .and_then(|s| s.reshape(full))
                .map_err(|e| vec![BatchError::at(&key, e.to_string())])?
        } else {
            t
        };
        vectors.insert(key, t);
    }
    Ok((vectors, batch))
}

/// Flattens a batch `B ++ rest` to `[K, *rest]` and returns K.
///
/// # Errors
/// When an entry does not start with `B`.
pub fn flatten_batch(v: Vectors, batch: &[usize]) -> Result<(Vectors, usize), TensorError> {
    let k = checked_numel(batch).ok_or_else(|| TensorError::ShapeOverflow {
        shape: batch.to_vec(),
    })?;
    let out = v
        .into_iter()
        .map(|(p, t)| {
            let Some(rest) = t.shape().strip_prefix(batch).map(<[usize]>::to_vec) else {
                return Err(mismatch(&t, k));
            };
            Ok((p, t.reshape([vec![k], rest].concat())?))
        })
        .collect::<Result<_, TensorError>>()?;
    Ok((out, k))
}

/// Restores a batch `[K, *rest]` to `B ++ rest`.
///
/// # Errors
/// When an entry's leading axis is not K.
pub fn restore_batch(v: Vectors, batch: &[usize]) -> Result<Vectors, TensorError> {
    v.into_iter()
        .map(|(p, t)| {
            let k = checked_numel(batch).unwrap_or(usize::MAX);
            match t.shape().split_first() {
                Some((&lead, rest)) if lead == k => {
                    let rest = rest.to_vec();
                    Ok((p, t.reshape([batch.to_vec(), rest].concat())?))
                }
                _ => Err(mismatch(&t, k)),
            }
        })
        .collect()
}

fn mismatch(t: &Tensor, k: usize) -> TensorError {
    TensorError::LengthMismatch {
        shape: t.shape().to_vec(),
        expected: k,
        actual: t.shape().first().copied().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests;
