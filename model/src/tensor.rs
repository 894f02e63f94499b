//! Dense tensors: a shape and a typed, C-ordered buffer.

use std::fmt;

/// The element types that cross the boundary. NumPy's names are the wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    Float32,
    Float64,
    Int32,
    Int64,
    Bool,
}

impl DType {
    /// Every supported dtype, narrowest first within each kind.
    pub const ALL: [DType; 5] = [
        DType::Bool,
        DType::Int32,
        DType::Int64,
        DType::Float32,
        DType::Float64,
    ];

    /// NumPy's name for this dtype (`float32`, `bool`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::Bool => "bool",
        }
    }

    /// Parses a NumPy dtype name. Returns `None` for names this project does not support.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per element in the little-endian wire encoding.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::Float32 | DType::Int32 => 4,
            DType::Float64 | DType::Int64 => 8,
            DType::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::Float32 | DType::Float64)
    }

    pub fn is_int(self) -> bool {
        matches!(self, DType::Int32 | DType::Int64)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A typed, C-ordered element buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Bool(Vec<bool>),
}

impl Data {
    pub fn dtype(&self) -> DType {
        match self {
            Data::Float32(_) => DType::Float32,
            Data::Float64(_) => DType::Float64,
            Data::Int32(_) => DType::Int32,
            Data::Int64(_) => DType::Int64,
            Data::Bool(_) => DType::Bool,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Data::Float32(v) => v.len(),
            Data::Float64(v) => v.len(),
            Data::Int32(v) => v.len(),
            Data::Int64(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A buffer of `len` zeros (false for bool).
    pub fn zeros(dtype: DType, len: usize) -> Data {
        match dtype {
            DType::Float32 => Data::Float32(vec![0.0; len]),
            DType::Float64 => Data::Float64(vec![0.0; len]),
            DType::Int32 => Data::Int32(vec![0; len]),
            DType::Int64 => Data::Int64(vec![0; len]),
            DType::Bool => Data::Bool(vec![false; len]),
        }
    }

    /// Every element widened to `f64` (bool as 0/1). Integers above 2^53 lose precision,
    /// which is acceptable where this is used: derivative arithmetic.
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Data::Float32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::Float64(v) => v.clone(),
            Data::Int32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::Int64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
        }
    }

    /// Builds a buffer of `dtype` from `f64` values, rounding toward zero for integers.
    /// Used for derivative results, which are real-valued by nature.
    pub fn from_f64(dtype: DType, values: &[f64]) -> Data {
        match dtype {
            DType::Float32 => Data::Float32(values.iter().map(|&x| x as f32).collect()),
            DType::Float64 => Data::Float64(values.to_vec()),
            DType::Int32 => Data::Int32(values.iter().map(|&x| x as i32).collect()),
            DType::Int64 => Data::Int64(values.iter().map(|&x| x as i64).collect()),
            DType::Bool => Data::Bool(values.iter().map(|&x| x != 0.0).collect()),
        }
    }

    /// Elements `start..start + len`, copied.
    pub fn slice(&self, start: usize, len: usize) -> Data {
        let r = start..start + len;
        match self {
            Data::Float32(v) => Data::Float32(v[r].to_vec()),
            Data::Float64(v) => Data::Float64(v[r].to_vec()),
            Data::Int32(v) => Data::Int32(v[r].to_vec()),
            Data::Int64(v) => Data::Int64(v[r].to_vec()),
            Data::Bool(v) => Data::Bool(v[r].to_vec()),
        }
    }

    /// Appends `other`, which must have the same dtype.
    ///
    /// # Errors
    /// [`TensorError::DTypeMismatch`] when the dtypes differ.
    pub fn extend(&mut self, other: &Data) -> Result<(), TensorError> {
        match (self, other) {
            (Data::Float32(a), Data::Float32(b)) => a.extend_from_slice(b),
            (Data::Float64(a), Data::Float64(b)) => a.extend_from_slice(b),
            (Data::Int32(a), Data::Int32(b)) => a.extend_from_slice(b),
            (Data::Int64(a), Data::Int64(b)) => a.extend_from_slice(b),
            (Data::Bool(a), Data::Bool(b)) => a.extend_from_slice(b),
            (a, b) => {
                return Err(TensorError::DTypeMismatch {
                    expected: a.dtype(),
                    actual: b.dtype(),
                });
            }
        }
        Ok(())
    }
}

/// Problems with a tensor's structure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TensorError {
    #[error("shape {shape:?} has {expected} elements but the buffer has {actual}")]
    LengthMismatch {
        shape: Vec<usize>,
        expected: usize,
        actual: usize,
    },
    #[error("shape {shape:?} has more elements than this machine can address")]
    ShapeOverflow { shape: Vec<usize> },
    #[error("expected dtype {expected}, got {actual}")]
    DTypeMismatch { expected: DType, actual: DType },
    #[error("maximum supported dimension for an ndarray is {MAX_RANK}, found {rank}")]
    RankTooHigh { rank: usize },
}

/// The highest rank a tensor may have: NumPy's own limit (`NPY_MAXDIMS` in NumPy 2), so no
/// array tesseract-core accepts is refused. Code that walks a tensor axis by axis (nested JSON
/// lists) recurses once per axis; without this bound a request of a few kilobytes declaring
/// `[1]*20000` overflowed a server thread's stack.
pub const MAX_RANK: usize = 64;

fn check_rank(shape: &[usize]) -> Result<(), TensorError> {
    if shape.len() > MAX_RANK {
        return Err(TensorError::RankTooHigh { rank: shape.len() });
    }
    Ok(())
}

/// A dense array: `shape` (empty for a scalar) and C-ordered `data`.
///
/// Invariant: `data.len()` equals the product of `shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Data,
}

/// Number of elements of `shape`, or `None` if it overflows `usize`.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

impl Tensor {
    /// # Errors
    /// When the buffer length does not match the shape, the shape overflows `usize`, or it
    /// has more than [`MAX_RANK`] axes.
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Tensor, TensorError> {
        check_rank(&shape)?;
        let expected = checked_numel(&shape).ok_or_else(|| TensorError::ShapeOverflow {
            shape: shape.clone(),
        })?;
        if expected != data.len() {
            return Err(TensorError::LengthMismatch {
                shape,
                expected,
                actual: data.len(),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A scalar (shape `[]`).
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Tensor {
            shape: Vec::new(),
            data: T::into_data(vec![value]),
        }
    }

    /// A tensor of zeros.
    ///
    /// # Errors
    /// When the shape overflows `usize` or has more than [`MAX_RANK`] axes.
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Result<Tensor, TensorError> {
        check_rank(&shape)?;
        let n = checked_numel(&shape).ok_or_else(|| TensorError::ShapeOverflow {
            shape: shape.clone(),
        })?;
        Ok(Tensor {
            shape,
            data: Data::zeros(dtype, n),
        })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &Data {
        &self.data
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn into_parts(self) -> (Vec<usize>, Data) {
        (self.shape, self.data)
    }

    /// The typed elements, if the dtype is `T`'s.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::slice_of(&self.data)
    }

    /// Splits the leading axis: `[K, *rest]` becomes K tensors of shape `rest`.
    ///
    /// # Errors
    /// [`TensorError::LengthMismatch`] when the tensor is a scalar.
    pub fn unstack(&self) -> Result<Vec<Tensor>, TensorError> {
        let Some((&k, rest)) = self.shape.split_first() else {
            return Err(TensorError::LengthMismatch {
                shape: vec![],
                expected: 1,
                actual: 0,
            });
        };
        let step = checked_numel(rest).unwrap_or(0);
        Ok((0..k)
            .map(|i| Tensor {
                shape: rest.to_vec(),
                data: self.data.slice(i * step, step),
            })
            .collect())
    }

    /// Stacks tensors of one shape and dtype along a new leading axis.
    ///
    /// # Errors
    /// When the parts disagree in shape or dtype, or there are none.
    pub fn stack(parts: &[Tensor]) -> Result<Tensor, TensorError> {
        let Some(first) = parts.first() else {
            return Err(TensorError::LengthMismatch {
                shape: vec![0],
                expected: 1,
                actual: 0,
            });
        };
        let mut data = Data::zeros(first.dtype(), 0);
        for p in parts {
            if p.shape != first.shape {
                return Err(TensorError::LengthMismatch {
                    shape: first.shape.clone(),
                    expected: first.len(),
                    actual: p.len(),
                });
            }
            data.extend(&p.data)?;
        }
        let mut shape = Vec::with_capacity(first.shape.len() + 1);
        shape.push(parts.len());
        shape.extend_from_slice(&first.shape);
        Tensor::new(shape, data)
    }

    /// `count` copies of this tensor along a new leading axis, built in one buffer.
    ///
    /// # Errors
    /// When the result would have more than [`MAX_RANK`] axes or overflow `usize`.
    pub fn repeat(&self, count: usize) -> Result<Tensor, TensorError> {
        let mut shape = Vec::with_capacity(self.shape.len() + 1);
        shape.push(count);
        shape.extend_from_slice(&self.shape);
        check_rank(&shape)?;
        if checked_numel(&shape).is_none() {
            return Err(TensorError::ShapeOverflow { shape });
        }
        let data = match &self.data {
            Data::Float32(v) => Data::Float32(v.repeat(count)),
            Data::Float64(v) => Data::Float64(v.repeat(count)),
            Data::Int32(v) => Data::Int32(v.repeat(count)),
            Data::Int64(v) => Data::Int64(v.repeat(count)),
            Data::Bool(v) => Data::Bool(v.repeat(count)),
        };
        Tensor::new(shape, data)
    }

    /// The same elements under a new shape with the same element count.
    ///
    /// # Errors
    /// When the element counts differ.
    pub fn reshape(self, shape: Vec<usize>) -> Result<Tensor, TensorError> {
        Tensor::new(shape, self.data)
    }
}

/// A Rust element type that maps to one [`DType`].
pub trait Element: Copy + Send + Sync + 'static + fmt::Debug + PartialEq {
    const DTYPE: DType;
    fn slice_of(data: &Data) -> Option<&[Self]>;
    fn into_data(values: Vec<Self>) -> Data;
    fn from_data(data: Data) -> Result<Vec<Self>, Data>;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn slice_of(data: &Data) -> Option<&[Self]> {
                match data {
                    Data::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn into_data(values: Vec<Self>) -> Data {
                Data::$variant(values)
            }
            fn from_data(data: Data) -> Result<Vec<Self>, Data> {
                match data {
                    Data::$variant(v) => Ok(v),
                    other => Err(other),
                }
            }
        }
    };
}
element!(f32, Float32);
element!(f64, Float64);
element!(i32, Int32);
element!(i64, Int64);
element!(bool, Bool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_then_unstack_round_trips() {
        let a = Tensor::new(vec![2], Data::Float64(vec![1.0, 2.0])).expect("valid");
        let b = Tensor::new(vec![2], Data::Float64(vec![3.0, 4.0])).expect("valid");
        let s = Tensor::stack(&[a.clone(), b.clone()]).expect("stack");
        assert_eq!(s.shape(), &[2, 2]);
        assert_eq!(s.unstack().expect("unstack"), vec![a, b]);
    }

    #[test]
    fn new_rejects_wrong_length_and_overflow() {
        assert!(Tensor::new(vec![3], Data::Int32(vec![1, 2])).is_err());
        assert!(matches!(
            Tensor::new(vec![usize::MAX, 2], Data::Int32(vec![])),
            Err(TensorError::ShapeOverflow { .. })
        ));
    }

    #[test]
    fn stack_refuses_parts_of_different_shapes_even_of_one_size() {
        let z = |shape: Vec<usize>| Tensor::zeros(DType::Float64, shape).expect("small");
        assert!(Tensor::stack(&[z(vec![2, 3]), z(vec![3, 2])]).is_err());
        assert!(Tensor::stack(&[z(vec![6]), z(vec![2, 3])]).is_err());
        assert!(Tensor::stack(&[]).is_err());
    }

    #[test]
    fn repeat_equals_stacking_copies() {
        let t = Tensor::new(vec![2], Data::Int64(vec![3, 4])).expect("valid");
        let r = t.repeat(3).expect("repeat");
        assert_eq!(
            r,
            Tensor::stack(&[t.clone(), t.clone(), t.clone()]).expect("stack")
        );
        assert_eq!(t.repeat(0).expect("empty").shape(), &[0, 2]);
        assert!(matches!(
            t.repeat(usize::MAX),
            Err(TensorError::ShapeOverflow { .. })
        ));
    }

    #[test]
    fn rank_is_bounded_like_numpys() {
        let ones = |rank: usize| vec![1usize; rank];
        assert!(Tensor::new(ones(MAX_RANK), Data::Float64(vec![0.5])).is_ok());
        assert!(Tensor::zeros(DType::Int32, ones(MAX_RANK)).is_ok());
        assert_eq!(
            Tensor::new(ones(MAX_RANK + 1), Data::Float64(vec![0.5])),
            Err(TensorError::RankTooHigh { rank: MAX_RANK + 1 })
        );
        assert_eq!(
            Tensor::zeros(DType::Bool, ones(20_000)),
            Err(TensorError::RankTooHigh { rank: 20_000 })
        );
        let top = Tensor::new(ones(MAX_RANK), Data::Int64(vec![7])).expect("rank 64");
        assert!(matches!(
            Tensor::stack(&[top]),
            Err(TensorError::RankTooHigh { .. })
        ));
    }
}
