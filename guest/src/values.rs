//! Typed access to what the host passes in, and builders for what the component returns.
//!
//! Arrays come out as `ndarray` views of the declared dtype, plain values as Rust values. A
//! missing field or a wrong type is an `invalid-input` [`Error`], never a panic.

use ndarray::{Array, ArrayViewD, Dimension, IxDyn};
use tesseract_model::{
    AbstractLeaf, AbstractTree, DType, Element, Leaf, Plain, ShapeDType, Tensor, Tree, Vectors,
};

use crate::Error;

fn view<'a, T: Element>(tensor: &'a Tensor, path: &str) -> Result<ArrayViewD<'a, T>, Error> {
    let data = tensor.as_slice::<T>().ok_or_else(|| {
        Error::invalid_input(format!(
            "`{path}` has dtype {}, expected {}",
            tensor.dtype(),
            T::DTYPE
        ))
    })?;
    ArrayViewD::from_shape(IxDyn(tensor.shape()), data)
        .map_err(|e| Error::invalid_input(format!("`{path}` has an inconsistent shape: {e}")))
}

/// Converts an owned ndarray of any layout into a C-ordered [`Tensor`] without copying when it
/// already is one.
pub fn to_tensor<T: Element, D: Dimension>(array: Array<T, D>) -> Tensor {
    let shape = array.shape().to_vec();
    let array = if array.is_standard_layout() {
        array
    } else {
        array.as_standard_layout().into_owned()
    };
    let (mut data, offset) = array.into_raw_vec_and_offset();
    if let Some(offset) = offset.filter(|&o| o > 0) {
        data.drain(..offset);
    }
    let n = shape.iter().product();
    data.truncate(n);
    match Tensor::new(shape, T::into_data(data)) {
        Ok(t) => t,
        // A standard-layout array owns exactly product(shape) elements from its offset.
        Err(e) => unreachable!("ndarray produced an inconsistent buffer: {e}"),
    }
}

/// The validated inputs of one call: every declared field, defaults filled in, arrays already
/// cast to their declared dtype by the host.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    tree: Tree,
}

impl Inputs {
    /// Empty inputs; add fields with [`Inputs::with_array`] and friends (useful in native tests).
    pub fn new() -> Inputs {
        Inputs::default()
    }

    /// Wraps an already-flattened tree.
    pub fn from_tree(tree: Tree) -> Inputs {
        Inputs { tree }
    }

    /// The flattened tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Adds an array field.
    pub fn with_array<T: Element, D: Dimension>(
        mut self,
        path: impl Into<String>,
        array: Array<T, D>,
    ) -> Inputs {
        self.tree
            .insert(path.into(), Leaf::Tensor(to_tensor(array)));
        self
    }

    /// Adds a scalar array field (shape `[]`).
    pub fn with_scalar<T: Element>(mut self, path: impl Into<String>, value: T) -> Inputs {
        self.tree
            .insert(path.into(), Leaf::Tensor(Tensor::scalar(value)));
        self
    }

    /// Adds a plain field.
    pub fn with_plain(mut self, path: impl Into<String>, value: Plain) -> Inputs {
        self.tree.insert(path.into(), Leaf::Plain(value));
        self
    }

    fn leaf(&self, path: &str) -> Result<&Leaf, Error> {
        self.tree
            .get(path)
            .ok_or_else(|| Error::invalid_input(format!("missing input `{path}`")))
    }

    fn tensor(&self, path: &str) -> Result<&Tensor, Error> {
        match self.leaf(path)? {
            Leaf::Tensor(t) => Ok(t),
            Leaf::Plain(_) => Err(Error::invalid_input(format!(
                "input `{path}` is a plain value, not an array"
            ))),
        }
    }

    fn plain(&self, path: &str) -> Result<&Plain, Error> {
        match self.leaf(path)? {
            Leaf::Plain(p) => Ok(p),
            Leaf::Tensor(_) => Err(Error::invalid_input(format!(
                "input `{path}` is an array, not a plain value"
            ))),
        }
    }

    /// The array at `path`, viewed with dtype `T`.
    ///
    /// # Errors
    /// `invalid-input` if it is missing, not an array, or not of dtype `T`.
    pub fn array<T: Element>(&self, path: &str) -> Result<ArrayViewD<'_, T>, Error> {
        view(self.tensor(path)?, path)
    }

    /// The array at `path` as a 1-D view.
    ///
    /// # Errors
    /// As [`Inputs::array`], and if it is not 1-D.
    pub fn array1<T: Element>(&self, path: &str) -> Result<ndarray::ArrayView1<'_, T>, Error> {
        self.array(path)?
            .into_dimensionality()
            .map_err(|_| Error::invalid_input(format!("input `{path}` is not a vector")))
    }

    /// The scalar array at `path`.
    ///
    /// # Errors
    /// As [`Inputs::array`], and if it does not hold exactly one element.
    pub fn scalar<T: Element>(&self, path: &str) -> Result<T, Error> {
        let t = self.tensor(path)?;
        match t.as_slice::<T>() {
            Some([x]) => Ok(*x),
            Some(_) => Err(Error::invalid_input(format!(
                "input `{path}` has shape {:?}, expected a scalar",
                t.shape()
            ))),
            None => Err(Error::invalid_input(format!(
                "`{path}` has dtype {}, expected {}",
                t.dtype(),
                T::DTYPE
            ))),
        }
    }

    /// The plain boolean at `path`.
    ///
    /// # Errors
    /// `invalid-input` if it is missing or not a boolean.
    pub fn boolean(&self, path: &str) -> Result<bool, Error> {
        match self.plain(path)? {
            Plain::Bool(b) => Ok(*b),
            other => Err(Error::invalid_input(format!(
                "input `{path}` is {other:?}, expected a boolean"
            ))),
        }
    }

    /// The plain integer at `path`.
    ///
    /// # Errors
    /// `invalid-input` if it is missing or not an integer.
    pub fn integer(&self, path: &str) -> Result<i64, Error> {
        match self.plain(path)? {
            Plain::Int(i) => Ok(*i),
            other => Err(Error::invalid_input(format!(
                "input `{path}` is {other:?}, expected an integer"
            ))),
        }
    }

    /// The plain number at `path` (an integer is widened).
    ///
    /// # Errors
    /// `invalid-input` if it is missing or not a number.
    pub fn number(&self, path: &str) -> Result<f64, Error> {
        match self.plain(path)? {
            Plain::Float(x) => Ok(*x),
            Plain::Int(i) => Ok(*i as f64),
            other => Err(Error::invalid_input(format!(
                "input `{path}` is {other:?}, expected a number"
            ))),
        }
    }

    /// The plain string at `path`.
    ///
    /// # Errors
    /// `invalid-input` if it is missing or not a string.
    pub fn string(&self, path: &str) -> Result<&str, Error> {
        match self.plain(path)? {
            Plain::Text(s) => Ok(s),
            other => Err(Error::invalid_input(format!(
                "input `{path}` is {other:?}, expected a string"
            ))),
        }
    }
}

/// Named arrays: tangents and cotangents coming in, derivative results going out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Arrays {
    map: Vectors,
}

impl Arrays {
    /// No arrays.
    pub fn new() -> Arrays {
        Arrays::default()
    }

    /// Wraps a path → tensor map.
    pub fn from_vectors(map: Vectors) -> Arrays {
        Arrays { map }
    }

    /// The path → tensor map.
    pub fn vectors(&self) -> &Vectors {
        &self.map
    }

    /// Unwraps into the path → tensor map.
    pub fn into_vectors(self) -> Vectors {
        self.map
    }

    /// The array at `path`, viewed with dtype `T`.
    ///
    /// # Errors
    /// `invalid-input` if it is missing or not of dtype `T`.
    pub fn get<T: Element>(&self, path: &str) -> Result<ArrayViewD<'_, T>, Error> {
        let t = self
            .map
            .get(path)
            .ok_or_else(|| Error::invalid_input(format!("missing (co)tangent for `{path}`")))?;
        view(t, path)
    }

    /// Whether an array is present at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.map.contains_key(path)
    }

    /// Adds or replaces the array at `path`.
    pub fn insert<T: Element, D: Dimension>(
        &mut self,
        path: impl Into<String>,
        array: Array<T, D>,
    ) {
        self.map.insert(path.into(), to_tensor(array));
    }

    /// Builder form of [`Arrays::insert`].
    pub fn with<T: Element, D: Dimension>(
        mut self,
        path: impl Into<String>,
        array: Array<T, D>,
    ) -> Arrays {
        self.insert(path, array);
        self
    }
}

/// What `apply` returns: output fields by path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    tree: Tree,
}

impl Outputs {
    /// No outputs yet.
    pub fn new() -> Outputs {
        Outputs::default()
    }

    /// Adds an array output.
    pub fn with_array<T: Element, D: Dimension>(
        mut self,
        path: impl Into<String>,
        array: Array<T, D>,
    ) -> Outputs {
        self.tree
            .insert(path.into(), Leaf::Tensor(to_tensor(array)));
        self
    }

    /// Adds a scalar array output (shape `[]`).
    pub fn with_scalar<T: Element>(mut self, path: impl Into<String>, value: T) -> Outputs {
        self.tree
            .insert(path.into(), Leaf::Tensor(Tensor::scalar(value)));
        self
    }

    /// Adds a plain output.
    pub fn with_plain(mut self, path: impl Into<String>, value: Plain) -> Outputs {
        self.tree.insert(path.into(), Leaf::Plain(value));
        self
    }

    /// The flattened tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Unwraps into the flattened tree.
    pub fn into_tree(self) -> Tree {
        self.tree
    }
}

/// What `jacobian` returns: one block per (output, input) pair, of shape `(*out, *in)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JacobianBlocks {
    blocks: tesseract_model::JacobianBlocks,
}

impl JacobianBlocks {
    /// No blocks yet.
    pub fn new() -> JacobianBlocks {
        JacobianBlocks::default()
    }

    /// Adds the block ∂`output`/∂`input`.
    pub fn insert<T: Element, D: Dimension>(
        &mut self,
        output: impl Into<String>,
        input: impl Into<String>,
        block: Array<T, D>,
    ) {
        self.blocks
            .insert((output.into(), input.into()), to_tensor(block));
    }

    /// The blocks.
    pub fn blocks(&self) -> &tesseract_model::JacobianBlocks {
        &self.blocks
    }

    /// Unwraps into the blocks.
    pub fn into_blocks(self) -> tesseract_model::JacobianBlocks {
        self.blocks
    }
}

/// abstract_eval's inputs: shapes and dtypes of arrays, plain values as given.
#[derive(Debug, Clone, Default)]
pub struct AbstractInputs {
    tree: AbstractTree,
}

impl AbstractInputs {
    /// Wraps an abstract tree.
    pub fn from_tree(tree: AbstractTree) -> AbstractInputs {
        AbstractInputs { tree }
    }

    /// The abstract tree.
    pub fn tree(&self) -> &AbstractTree {
        &self.tree
    }

    /// The shape of the array at `path`.
    ///
    /// # Errors
    /// `invalid-input` if it is missing or not an array.
    pub fn shape(&self, path: &str) -> Result<&[usize], Error> {
        match self.tree.get(path) {
            Some(AbstractLeaf::Array(sd)) => Ok(&sd.shape),
            Some(AbstractLeaf::Plain(_)) => Err(Error::invalid_input(format!(
                "input `{path}` is not an array"
            ))),
            None => Err(Error::invalid_input(format!("missing input `{path}`"))),
        }
    }

    /// The plain value at `path`.
    ///
    /// # Errors
    /// `invalid-input` if it is missing or an array.
    pub fn plain(&self, path: &str) -> Result<&Plain, Error> {
        match self.tree.get(path) {
            Some(AbstractLeaf::Plain(p)) => Ok(p),
            Some(AbstractLeaf::Array(_)) => {
                Err(Error::invalid_input(format!("input `{path}` is an array")))
            }
            None => Err(Error::invalid_input(format!("missing input `{path}`"))),
        }
    }
}

/// What abstract_eval returns: output shapes and dtypes, plain outputs as values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AbstractOutputs {
    tree: AbstractTree,
}

impl AbstractOutputs {
    /// No outputs yet.
    pub fn new() -> AbstractOutputs {
        AbstractOutputs::default()
    }

    /// Declares an array output of this shape and dtype.
    pub fn with_array(
        mut self,
        path: impl Into<String>,
        dtype: DType,
        shape: impl Into<Vec<usize>>,
    ) -> AbstractOutputs {
        self.tree.insert(
            path.into(),
            AbstractLeaf::Array(ShapeDType {
                shape: shape.into(),
                dtype,
            }),
        );
        self
    }

    /// Adds a plain output.
    pub fn with_plain(mut self, path: impl Into<String>, value: Plain) -> AbstractOutputs {
        self.tree.insert(path.into(), AbstractLeaf::Plain(value));
        self
    }

    /// Unwraps into the abstract tree.
    pub fn into_tree(self) -> AbstractTree {
        self.tree
    }
}
