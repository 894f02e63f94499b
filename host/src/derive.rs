//! The arithmetic of derived routes: contracting a jacobian with (co)tangents, building basis
//! vectors, and assembling a jacobian from batched products. Pure: tensors in, tensors out.
//!
//! Derivative arithmetic runs in `f64` and is cast to the result's dtype at the end.

use std::collections::BTreeMap;

use tesseract_model::{DType, Data, JacobianBlocks, Tensor, TensorError, Vectors};

/// An input or output taking part in a jacobian: its concrete path, shape and dtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub path: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

impl Slot {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Why a contraction could not be done: the jacobian does not fit the (co)tangents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

impl From<TensorError> for ShapeError {
    fn from(e: TensorError) -> ShapeError {
        ShapeError(e.to_string())
    }
}

fn block<'a>(jac: &'a JacobianBlocks, out: &str, input: &str) -> Result<&'a Tensor, ShapeError> {
    jac.get(&(out.to_owned(), input.to_owned()))
        .ok_or_else(|| ShapeError(format!("the jacobian has no block for ({out}, {input})")))
}

/// `out[o] = Σ_i J[o,i] · t[i]` for one tangent (no batch axis). `dtypes` gives each output's
/// dtype; missing entries take the block's dtype.
///
/// # Errors
/// When a block is missing or its shape does not end with the tangent's shape.
pub fn jvp_from_jacobian(
    jac: &JacobianBlocks,
    outputs: &[String],
    tangent: &Vectors,
    dtypes: &BTreeMap<String, DType>,
) -> Result<Vectors, ShapeError> {
    let mut result = Vectors::new();
    for out in outputs {
        let mut acc: Option<(Vec<usize>, Vec<f64>, DType)> = None;
        for (input, t) in tangent {
            let b = block(jac, out, input)?;
            let rank_out = b.shape().len().checked_sub(t.shape().len()).filter(|_| b.shape().ends_with(t.shape())).ok_or_else(|| {
                ShapeError(format!("block ({out}, {input}) has shape {:?}, which does not end with the tangent's {:?}", b.shape(), t.shape()))
            })?;
            let out_shape = b.shape()[..rank_out].to_vec();
            let (rows, cols) = (numel(&out_shape), t.len());
            let (j, v) = (b.data().to_f64(), t.data().to_f64());
            let dtype = dtypes.get(out).copied().unwrap_or(b.dtype());
            let (_, sum, _) =
                acc.get_or_insert_with(|| (out_shape.clone(), vec![0.0; rows], dtype));
            if sum.len() != rows {
                return Err(ShapeError(format!(
                    "blocks of `{out}` disagree on its shape"
                )));
            }
            for (r, s) in sum.iter_mut().enumerate() {
                *s += j[r * cols..(r + 1) * cols]
                    .iter()
                    .zip(&v)
                    .map(|(a, b)| a * b)
                    .sum::<f64>();
            }
        }
        let (shape, sum, dtype) = acc.ok_or_else(|| ShapeError("no tangents given".into()))?;
        result.insert(
            out.clone(),
            Tensor::new(shape, Data::from_f64(dtype, &sum))?,
        );
    }
    Ok(result)
}

/// `in[i] = Σ_o c[o]ᵀ · J[o,i]` for one cotangent (no batch axis).
///
/// # Errors
/// When a block is missing or its shape does not start with the cotangent's shape.
pub fn vjp_from_jacobian(
    jac: &JacobianBlocks,
    inputs: &[String],
    cotangent: &Vectors,
    dtypes: &BTreeMap<String, DType>,
) -> Result<Vectors, ShapeError> {
    let mut result = Vectors::new();
    for input in inputs {
        let mut acc: Option<(Vec<usize>, Vec<f64>, DType)> = None;
        for (out, c) in cotangent {
            let b = block(jac, out, input)?;
            if !b.shape().starts_with(c.shape()) {
                return Err(ShapeError(format!(
                    "block ({out}, {input}) has shape {:?}, which does not start with the cotangent's {:?}",
                    b.shape(),
                    c.shape()
                )));
            }
            let in_shape = b.shape()[c.shape().len()..].to_vec();
            let cols = numel(&in_shape);
            let (j, v) = (b.data().to_f64(), c.data().to_f64());
            let dtype = dtypes.get(input).copied().unwrap_or(b.dtype());
            let (_, sum, _) = acc.get_or_insert_with(|| (in_shape.clone(), vec![0.0; cols], dtype));
            if sum.len() != cols {
                return Err(ShapeError(format!(
                    "blocks of `{input}` disagree on its shape"
                )));
            }
            for (r, &weight) in v.iter().enumerate() {
                if weight != 0.0 {
                    for (s, &x) in sum.iter_mut().zip(&j[r * cols..(r + 1) * cols]) {
                        *s += weight * x;
                    }
                }
            }
        }
        let (shape, sum, dtype) = acc.ok_or_else(|| ShapeError("no cotangents given".into()))?;
        result.insert(
            input.clone(),
            Tensor::new(shape, Data::from_f64(dtype, &sum))?,
        );
    }
    Ok(result)
}

/// One-hot basis vectors over `slots`, stacked: K = Σ numel, and slot `j` gets a tensor of
/// shape `[K, *shape_j]` whose row `k` is 1 at the element `k` stands for.
///
/// # Errors
/// When the sizes overflow.
pub fn basis(slots: &[Slot]) -> Result<(Vectors, usize), ShapeError> {
    let k: usize = slots.iter().map(Slot::len).sum();
    let mut vectors = Vectors::new();
    let mut offset = 0;
    for s in slots {
        let n = s.len();
        let total = k
            .checked_mul(n)
            .ok_or_else(|| ShapeError("basis too large".into()))?;
        // Built in the slot's dtype: a float64 staging copy would double the basis.
        let mut data = Data::zeros(s.dtype, total);
        for e in 0..n {
            set_one(&mut data, (offset + e) * n + e);
        }
        let mut shape = vec![k];
        shape.extend_from_slice(&s.shape);
        vectors.insert(s.path.clone(), Tensor::new(shape, data)?);
        offset += n;
    }
    Ok((vectors, k))
}

fn set_one(data: &mut Data, i: usize) {
    match data {
        Data::Float32(v) => v[i] = 1.0,
        Data::Float64(v) => v[i] = 1.0,
        Data::Int32(v) => v[i] = 1,
        Data::Int64(v) => v[i] = 1,
        Data::Bool(v) => v[i] = true,
    }
}

/// Assembles J from forward products: `products[o]` has shape `[K, *out_shape]` where row `k`
/// is J·e_k over the concatenated `inputs`.
///
/// # Errors
/// When a product is missing or has the wrong number of rows.
pub fn jacobian_from_forward(
    inputs: &[Slot],
    outputs: &[String],
    products: &Vectors,
) -> Result<JacobianBlocks, ShapeError> {
    let k: usize = inputs.iter().map(Slot::len).sum();
    let mut blocks = JacobianBlocks::new();
    for out in outputs {
        let p = products
            .get(out)
            .ok_or_else(|| ShapeError(format!("no product for output `{out}`")))?;
        let (&rows, out_shape) = p
            .shape()
            .split_first()
            .ok_or_else(|| ShapeError(format!("product for `{out}` has no batch axis")))?;
        if rows != k {
            return Err(ShapeError(format!(
                "product for `{out}` has {rows} rows, expected {k}"
            )));
        }
        let m = numel(out_shape);
        let values = p.data().to_f64();
        let mut offset = 0;
        for input in inputs {
            let n = input.len();
            // Block[p, q] = product row (offset + q), element p.
            let mut data = vec![0.0; m * n];
            for q in 0..n {
                for (pp, &x) in values[(offset + q) * m..(offset + q + 1) * m]
                    .iter()
                    .enumerate()
                {
                    data[pp * n + q] = x;
                }
            }
            let mut shape = out_shape.to_vec();
            shape.extend_from_slice(&input.shape);
            blocks.insert(
                (out.clone(), input.path.clone()),
                Tensor::new(shape, Data::from_f64(p.dtype(), &data))?,
            );
            offset += n;
        }
    }
    Ok(blocks)
}

/// Assembles J from reverse products: `products[i]` has shape `[K, *in_shape]` where row `k`
/// is e_kᵀ·J over the concatenated `outputs`.
///
/// # Errors
/// When a product is missing or has the wrong number of rows.
pub fn jacobian_from_reverse(
    outputs: &[Slot],
    inputs: &[String],
    products: &Vectors,
) -> Result<JacobianBlocks, ShapeError> {
    let k: usize = outputs.iter().map(Slot::len).sum();
    let mut blocks = JacobianBlocks::new();
    for input in inputs {
        let p = products
            .get(input)
            .ok_or_else(|| ShapeError(format!("no product for input `{input}`")))?;
        let (&rows, in_shape) = p
            .shape()
            .split_first()
            .ok_or_else(|| ShapeError(format!("product for `{input}` has no batch axis")))?;
        if rows != k {
            return Err(ShapeError(format!(
                "product for `{input}` has {rows} rows, expected {k}"
            )));
        }
        let n = numel(in_shape);
        let mut offset = 0;
        for out in outputs {
            let m = out.len();
            // Rows offset..offset+m are exactly the block in C order.
            let mut shape = out.shape.clone();
            shape.extend_from_slice(in_shape);
            blocks.insert(
                (out.path.clone(), input.clone()),
                Tensor::new(shape, p.data().slice(offset * n, m * n))?,
            );
            offset += m;
        }
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f64]) -> Tensor {
        Tensor::new(shape.to_vec(), Data::Float64(v.to_vec())).expect("valid tensor")
    }

    fn slot(path: &str, shape: &[usize]) -> Slot {
        Slot {
            path: path.into(),
            shape: shape.to_vec(),
            dtype: DType::Float64,
        }
    }

    /// J = d(y: [2]) / d(x: [3], s: []) with known entries.
    fn jac() -> JacobianBlocks {
        let mut j = JacobianBlocks::new();
        j.insert(
            ("y".into(), "x".into()),
            t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        );
        j.insert(("y".into(), "s".into()), t(&[2], &[7.0, 8.0]));
        j
    }

    #[test]
    fn jvp_contracts_over_every_input() {
        let tangent = Vectors::from([
            ("x".into(), t(&[3], &[1.0, 0.0, 1.0])),
            ("s".into(), t(&[], &[2.0])),
        ]);
        let out = jvp_from_jacobian(&jac(), &["y".into()], &tangent, &BTreeMap::new())
            .expect("contracts");
        assert_eq!(out["y"], t(&[2], &[1.0 + 3.0 + 14.0, 4.0 + 6.0 + 16.0]));
    }

    #[test]
    fn vjp_contracts_over_every_output() {
        let cot = Vectors::from([("y".into(), t(&[2], &[1.0, -1.0]))]);
        let out = vjp_from_jacobian(&jac(), &["x".into(), "s".into()], &cot, &BTreeMap::new())
            .expect("contracts");
        assert_eq!(out["x"], t(&[3], &[-3.0, -3.0, -3.0]));
        assert_eq!(out["s"], t(&[], &[-1.0]));
    }

    #[test]
    fn forward_and_reverse_assembly_agree_with_the_jacobian() {
        let j = jac();
        let inputs = [slot("s", &[]), slot("x", &[3])];
        let (tangents, k) = basis(&inputs).expect("basis");
        assert_eq!(k, 4);
        let rows: Vec<Vectors> = (0..k)
            .map(|r| {
                let one = tangents
                    .iter()
                    .map(|(p, t)| (p.clone(), t.unstack().expect("batched")[r].clone()))
                    .collect();
                jvp_from_jacobian(&j, &["y".into()], &one, &BTreeMap::new()).expect("jvp")
            })
            .collect();
        let stacked = Vectors::from([(
            "y".into(),
            Tensor::stack(&rows.iter().map(|r| r["y"].clone()).collect::<Vec<_>>()).expect("stack"),
        )]);
        assert_eq!(
            jacobian_from_forward(&inputs, &["y".into()], &stacked).expect("assemble"),
            j
        );

        let outputs = [slot("y", &[2])];
        let (cots, k) = basis(&outputs).expect("basis");
        let rows: Vec<Vectors> = (0..k)
            .map(|r| {
                let one = cots
                    .iter()
                    .map(|(p, t)| (p.clone(), t.unstack().expect("batched")[r].clone()))
                    .collect();
                vjp_from_jacobian(&j, &["s".into(), "x".into()], &one, &BTreeMap::new())
                    .expect("vjp")
            })
            .collect();
        let stacked: Vectors = ["s", "x"]
            .iter()
            .map(|p| {
                (
                    p.to_string(),
                    Tensor::stack(&rows.iter().map(|r| r[*p].clone()).collect::<Vec<_>>())
                        .expect("stack"),
                )
            })
            .collect();
        assert_eq!(
            jacobian_from_reverse(&outputs, &["s".into(), "x".into()], &stacked).expect("assemble"),
            j
        );
    }

    #[test]
    fn mismatched_shapes_are_errors_not_panics() {
        let tangent = Vectors::from([
            ("x".into(), t(&[2], &[1.0, 0.0])),
            ("s".into(), t(&[], &[2.0])),
        ]);
        assert!(jvp_from_jacobian(&jac(), &["y".into()], &tangent, &BTreeMap::new()).is_err());
        let products = Vectors::from([("y".into(), t(&[3, 2], &[0.0; 6]))]);
        assert!(
            jacobian_from_forward(&[slot("x", &[3]), slot("s", &[])], &["y".into()], &products)
                .is_err()
        );
    }
}
