//! Typed access to what the host passes in, and builders for what the component returns.
//!
//! Arrays come out as `ndarray` views of the declared dtype, plain values as Rust values. A
//! read that cannot be served is an [`Error`] that says whose fault it is, never a panic; the
//! rule is on [`Inputs`].

use std::fmt;

use ndarray::{Array, ArrayViewD, Dimension, IxDyn};
use tesseract_model::schema::{Dim, Field, FieldKind, ShapeSpec};
use tesseract_model::{
    AbstractLeaf, AbstractTree, DType, Element, Leaf, Plain, ShapeDType, Tensor, Tree, Vectors,
    path,
};

use crate::{Error, Schema};

/// A mistake in the component's own code, which the host's validation rules out for any
/// request: reported as `failed` (HTTP 500), a server-side fault.
fn component_bug(what: impl fmt::Display) -> Error {
    Error::failed(format!("bug in the component: {what}"))
}

/// `path` names an element of a list or dict (`items.[3]`, `named.{k}`): whether it exists
/// depends on the request, so the message points the author at `contains`.
fn is_element(path: &str) -> bool {
    path::parse(path).is_ok_and(|s| {
        s.iter()
            .any(|s| matches!(s, path::Segment::Index(_) | path::Segment::Key(_)))
    })
}

fn missing(what: &str, path: &str) -> Error {
    if is_element(path) {
        component_bug(format_args!(
            "it read {what} `{path}`, which this request does not carry \
             (check `contains` before reading a list or dict element)"
        ))
    } else {
        component_bug(format_args!(
            "it read {what} `{path}`, which its schema does not declare \
             (the host passes every declared input)"
        ))
    }
}

/// Views `tensor` as dtype `T`. `declared` is the field's declared dtype when the schema is
/// known: a tensor of another dtype than a `T` the schema agrees with broke the schema.
fn view<'a, T: Element>(
    tensor: &'a Tensor,
    declared: Option<DType>,
    what: &str,
    path: &str,
) -> Result<ArrayViewD<'a, T>, Error> {
    let data = tensor.as_slice::<T>().ok_or_else(|| {
        if declared == Some(T::DTYPE) {
            Error::invalid_input(format!(
                "{what} `{path}` has dtype {}, but its schema declares {}",
                tensor.dtype(),
                T::DTYPE
            ))
        } else {
            component_bug(format_args!(
                "it read {what} `{path}` as {}, but the host passes it as {}, its declared dtype",
                T::DTYPE,
                declared.unwrap_or(tensor.dtype()),
            ))
        }
    })?;
    // `Tensor` keeps its buffer and shape consistent, so this cannot fail for a tensor the host
    // or the SDK built.
    ArrayViewD::from_shape(IxDyn(tensor.shape()), data).map_err(|e| {
        component_bug(format_args!(
            "{what} `{path}` has an inconsistent shape: {e}"
        ))
    })
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
///
/// # Whose fault an error is
///
/// A read that cannot be served says whose fault it is by comparing what the component reads
/// with what its schema declares:
///
/// - They disagree (a path the schema does not declare, another dtype, kind, JSON type or
///   rank): the component's own bug, `failed` (HTTP 500). The host validates every request
///   against the schema before the component runs (every declared input present, arrays cast
///   to their declared dtype, (co)tangents keyed and cast as the call requires), so no client
///   can cause these.
/// - They agree but the inputs do not (a declared input missing, of another dtype or rank):
///   the caller broke the schema, `invalid-input` (HTTP 422). Over HTTP the host refuses such
///   requests itself; callers that bypass it (`tesseract-wasm check`, native tests) see it here.
/// - The schema leaves the shape open (`any_rank`) and the component refuses the client's
///   rank: `invalid-input`, the client's to fix.
///
/// The schema is known when the inputs come through [`crate::dispatch`] (the component's own
/// path); inputs built by hand without [`Inputs::declared_by`] class a missing path or a wrong
/// dtype as `failed` and a wrong rank as `invalid-input`.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    tree: Tree,
    /// The schema the host validated `tree` against, consulted only to class a rank error.
    schema: Option<fn() -> Schema>,
}

impl Inputs {
    /// Empty inputs; add fields with [`Inputs::with_array`] and friends (useful in native tests).
    pub fn new() -> Inputs {
        Inputs::default()
    }

    /// Wraps an already-flattened tree.
    pub fn from_tree(tree: Tree) -> Inputs {
        Inputs { tree, schema: None }
    }

    /// Names the schema these inputs should satisfy (as [`crate::dispatch`] does), so an error
    /// can tell the component's bug (a read the schema disagrees with: `failed`) from inputs
    /// that break the schema (`invalid-input`); see the module docs. It is built only when a
    /// read fails.
    pub fn declared_by(mut self, schema: fn() -> Schema) -> Inputs {
        self.schema = Some(schema);
        self
    }

    /// Whether a field is present at `path`: every declared field is, so this is for list and
    /// dict elements (`items.[3]`, `named.{k}`), whose number the request decides.
    pub fn contains(&self, path: &str) -> bool {
        self.tree.contains_key(path)
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

    /// What the schema declares at `path`'s template, when [`Inputs::declared_by`] named one.
    /// Built only on an error path: a component's schema is cheap, but not free.
    fn declared(&self, path: &str) -> Option<Field> {
        let schema = self.schema?;
        let template = path::template(&path::parse(path).ok()?);
        schema()
            .into_info()
            .inputs
            .into_iter()
            .find(|f| f.path == template)
    }

    fn leaf(&self, path: &str) -> Result<&Leaf, Error> {
        self.tree.get(path).ok_or_else(|| {
            // A declared field (not a list or dict element, whose number the request decides)
            // is always passed; its absence means the caller bypassed validation.
            if !is_element(path) && self.declared(path).is_some() {
                Error::invalid_input(format!("missing input `{path}`"))
            } else {
                missing("input", path)
            }
        })
    }

    fn tensor(&self, path: &str) -> Result<&Tensor, Error> {
        match self.leaf(path)? {
            Leaf::Tensor(t) => Ok(t),
            Leaf::Plain(_) => Err(match self.declared(path).map(|f| f.kind) {
                Some(FieldKind::Array(_)) => Error::invalid_input(format!(
                    "input `{path}` is a plain value, but its schema declares an array"
                )),
                _ => component_bug(format_args!(
                    "it read input `{path}` as an array, but its schema declares a plain value"
                )),
            }),
        }
    }

    fn plain(&self, path: &str) -> Result<&Plain, Error> {
        match self.leaf(path)? {
            Leaf::Plain(p) => Ok(p),
            Leaf::Tensor(_) => Err(match self.declared(path).map(|f| f.kind) {
                Some(FieldKind::Plain { .. }) => Error::invalid_input(format!(
                    "input `{path}` is an array, but its schema declares a plain value"
                )),
                _ => component_bug(format_args!(
                    "it read input `{path}` as a plain value, but its schema declares an array"
                )),
            }),
        }
    }

    /// The host converts a plain value to its declared JSON type, so reading another type is
    /// the component's bug.
    fn wrong_plain(path: &str, expected: &str, got: &Plain) -> Error {
        component_bug(format_args!(
            "it read input `{path}` as {expected}, but its schema declares another JSON type \
             (this request's value: {got:?})"
        ))
    }

    /// The array at `path` does not have the shape the component reads it as (`reading`);
    /// `fits` says whether a declared shape guarantees the read. A fixed rank the read does not
    /// fit is the component's bug. A declared shape that does fit means the caller broke the
    /// schema; one that leaves the rank open (`any_rank`) means the client sent a rank the
    /// component refuses; both are `invalid-input`, as is a shape we cannot judge
    /// ([`Inputs::declared_by`] unset).
    fn wrong_shape(
        &self,
        path: &str,
        reading: &str,
        shape: &[usize],
        fits: fn(&[Dim]) -> bool,
    ) -> Error {
        let declared = self.declared(path).and_then(|f| match f.kind {
            FieldKind::Array(spec) => match spec.shape {
                ShapeSpec::Ranked(dims) => Some(dims),
                ShapeSpec::AnyRank => None,
            },
            FieldKind::Plain { .. } => None,
        });
        match declared {
            Some(dims) if !fits(&dims) => component_bug(format_args!(
                "it read input `{path}` as {reading}, but its schema declares it with {} \
                 dimension(s) (this request's has shape {shape:?})",
                dims.len()
            )),
            _ => Error::invalid_input(format!(
                "input `{path}` has shape {shape:?}, expected {reading}"
            )),
        }
    }

    fn declared_dtype(&self, path: &str) -> Option<DType> {
        match self.declared(path)?.kind {
            FieldKind::Array(spec) => Some(spec.dtype),
            FieldKind::Plain { .. } => None,
        }
    }

    /// The array at `path`, viewed with dtype `T`.
    ///
    /// # Errors
    /// `failed` (the component's bug) if the schema declares no input at `path`, or declares a
    /// plain value, or another dtype than `T`; `invalid-input` if the schema agrees with the
    /// read but the inputs break it.
    pub fn array<T: Element>(&self, path: &str) -> Result<ArrayViewD<'_, T>, Error> {
        let tensor = self.tensor(path)?;
        if tensor.dtype() == T::DTYPE {
            view(tensor, None, "input", path)
        } else {
            view(tensor, self.declared_dtype(path), "input", path)
        }
    }

    /// The array at `path` as a 1-D view.
    ///
    /// # Errors
    /// As [`Inputs::array`]; if it is not 1-D, `failed` when the schema declares another rank,
    /// `invalid-input` when it declares rank 1 (the inputs break it) or any rank (the client
    /// chose one the component refuses).
    pub fn array1<T: Element>(&self, path: &str) -> Result<ndarray::ArrayView1<'_, T>, Error> {
        let array = self.array(path)?;
        if array.ndim() != 1 {
            return Err(self.wrong_shape(path, "a vector", array.shape(), |d| d.len() == 1));
        }
        array
            .into_dimensionality()
            .map_err(|e| component_bug(format_args!("input `{path}` is not a vector: {e}")))
    }

    /// The scalar array at `path`.
    ///
    /// # Errors
    /// As [`Inputs::array`]; if it does not hold exactly one element, `failed` when the schema
    /// declares a shape that can hold more, `invalid-input` otherwise (as [`Inputs::array1`]).
    pub fn scalar<T: Element>(&self, path: &str) -> Result<T, Error> {
        let array = self.array::<T>(path)?;
        match array.as_slice() {
            Some([x]) => Ok(*x),
            _ => Err(self.wrong_shape(path, "a scalar", array.shape(), |d| {
                d.iter().all(|d| *d == Dim::Fixed(1))
            })),
        }
    }

    /// The plain boolean at `path`.
    ///
    /// # Errors
    /// `failed` (the component's bug) if no input is at `path` or it is not declared boolean.
    pub fn boolean(&self, path: &str) -> Result<bool, Error> {
        match self.plain(path)? {
            Plain::Bool(b) => Ok(*b),
            other => Err(Self::wrong_plain(path, "a boolean", other)),
        }
    }

    /// The plain integer at `path`.
    ///
    /// # Errors
    /// `failed` (the component's bug) if no input is at `path` or it is not declared integer.
    pub fn integer(&self, path: &str) -> Result<i64, Error> {
        match self.plain(path)? {
            Plain::Int(i) => Ok(*i),
            other => Err(Self::wrong_plain(path, "an integer", other)),
        }
    }

    /// The plain number at `path` (an integer is widened).
    ///
    /// # Errors
    /// `failed` (the component's bug) if no input is at `path` or it is not declared a number
    /// or integer.
    pub fn number(&self, path: &str) -> Result<f64, Error> {
        match self.plain(path)? {
            Plain::Float(x) => Ok(*x),
            Plain::Int(i) => Ok(*i as f64),
            other => Err(Self::wrong_plain(path, "a number", other)),
        }
    }

    /// The plain string at `path`.
    ///
    /// # Errors
    /// `failed` (the component's bug) if no input is at `path` or it is not declared string.
    pub fn string(&self, path: &str) -> Result<&str, Error> {
        match self.plain(path)? {
            Plain::Text(s) => Ok(s),
            other => Err(Self::wrong_plain(path, "a string", other)),
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
    /// The host passes a (co)tangent for exactly the paths the call names (`jvp_inputs`,
    /// `vjp_outputs`, ...), cast to that field's declared dtype.
    ///
    /// # Errors
    /// `failed` (the component's bug) if no array is at `path` or its dtype is not `T`.
    pub fn get<T: Element>(&self, path: &str) -> Result<ArrayViewD<'_, T>, Error> {
        let t = self.map.get(path).ok_or_else(|| {
            component_bug(format_args!(
                "it read the (co)tangent for `{path}`, which this call does not carry \
                 (the call carries one for each path it names; check `contains` first)"
            ))
        })?;
        view(t, None, "(co)tangent", path)
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

    /// Whether a field is present at `path` (for list and dict elements; see
    /// [`Inputs::contains`]).
    pub fn contains(&self, path: &str) -> bool {
        self.tree.contains_key(path)
    }

    /// The shape of the array at `path`.
    ///
    /// # Errors
    /// `failed` (the component's bug) if no input is at `path` or it is a plain value.
    pub fn shape(&self, path: &str) -> Result<&[usize], Error> {
        match self.tree.get(path) {
            Some(AbstractLeaf::Array(sd)) => Ok(&sd.shape),
            Some(AbstractLeaf::Plain(_)) => Err(component_bug(format_args!(
                "it read the shape of input `{path}`, but its schema declares a plain value"
            ))),
            None => Err(missing("input", path)),
        }
    }

    /// The plain value at `path`.
    ///
    /// # Errors
    /// `failed` (the component's bug) if no input is at `path` or it is an array.
    pub fn plain(&self, path: &str) -> Result<&Plain, Error> {
        match self.tree.get(path) {
            Some(AbstractLeaf::Plain(p)) => Ok(p),
            Some(AbstractLeaf::Array(_)) => Err(component_bug(format_args!(
                "it read input `{path}` as a plain value, but its schema declares an array"
            ))),
            None => Err(missing("input", path)),
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

#[cfg(test)]
mod tests {
    use ndarray::{arr1, arr2};

    use super::*;
    use crate::{ErrorKind, Field};

    fn schema() -> Schema {
        Schema::new("t", "0.1.0")
            .input(Field::array("x", DType::Float64, [None]))
            .input(Field::array("m", DType::Float64, [None, None]))
            .input(Field::any_rank("free", DType::Float64))
            .input(Field::integer("n"))
            .input(Field::array("items.[]", DType::Float64, [None]))
    }

    /// What the host passes for `schema()`.
    fn inputs() -> Inputs {
        Inputs::new()
            .with_array("x", arr1(&[1.0, 2.0]))
            .with_array("m", arr2(&[[1.0, 2.0], [3.0, 4.0]]))
            .with_array("free", arr2(&[[1.0], [2.0]]))
            .with_plain("n", Plain::Int(3))
            .with_array("items.[0]", arr1(&[5.0]))
            .declared_by(schema)
    }

    fn kind<T: fmt::Debug>(r: Result<T, Error>) -> (ErrorKind, String) {
        match r {
            Err(e) => (e.kind, e.message),
            Ok(v) => panic!("expected an error, got {v:?}"),
        }
    }

    #[test]
    fn a_declared_field_reads_back() {
        let i = inputs();
        assert_eq!(i.array1::<f64>("x").ok(), Some(arr1(&[1.0, 2.0]).view()));
        assert_eq!(i.integer("n").ok(), Some(3));
        assert_eq!(i.number("n").ok(), Some(3.0));
        assert!(i.contains("items.[0]") && !i.contains("items.[1]"));
    }

    #[test]
    fn reading_an_undeclared_field_is_the_components_bug() {
        let (kind, msg) = kind(inputs().array::<f64>("xx"));
        assert_eq!(kind, ErrorKind::Failed);
        assert!(msg.contains("bug in the component"), "{msg}");
        assert!(
            msg.contains("`xx`, which its schema does not declare"),
            "{msg}"
        );
    }

    #[test]
    fn reading_a_list_element_the_request_lacks_is_the_components_bug() {
        let (kind, msg) = kind(inputs().array::<f64>("items.[1]"));
        assert_eq!(kind, ErrorKind::Failed);
        assert!(msg.contains("check `contains`"), "{msg}");
    }

    #[test]
    fn reading_the_wrong_dtype_is_the_components_bug() {
        let (kind, msg) = kind(inputs().array1::<f32>("x"));
        assert_eq!(kind, ErrorKind::Failed);
        assert!(
            msg.contains("as float32") && msg.contains("float64"),
            "{msg}"
        );
        assert_eq!(self::kind(inputs().scalar::<i32>("x")).0, ErrorKind::Failed);
    }

    #[test]
    fn reading_the_wrong_kind_or_json_type_is_the_components_bug() {
        let i = inputs();
        assert_eq!(kind(i.array::<f64>("n")).0, ErrorKind::Failed);
        assert_eq!(kind(i.integer("x")).0, ErrorKind::Failed);
        assert_eq!(kind(i.boolean("n")).0, ErrorKind::Failed);
        assert_eq!(kind(i.string("n")).0, ErrorKind::Failed);
        let i = Inputs::new().with_plain("n", Plain::Float(3.5));
        assert_eq!(kind(i.integer("n")).0, ErrorKind::Failed);
    }

    #[test]
    fn a_rank_the_schema_fixes_is_the_components_bug() {
        let (kind, msg) = kind(inputs().array1::<f64>("m"));
        assert_eq!(kind, ErrorKind::Failed);
        assert!(msg.contains("declares it with 2 dimension(s)"), "{msg}");
        assert_eq!(self::kind(inputs().scalar::<f64>("x")).0, ErrorKind::Failed);
        assert_eq!(self::kind(inputs().scalar::<f64>("m")).0, ErrorKind::Failed);
    }

    #[test]
    fn inputs_that_break_a_schema_the_read_agrees_with_are_invalid_input() {
        let broken = Inputs::new()
            .with_array("x", arr1(&[1.0_f32]))
            .with_array("m", arr1(&[1.0]))
            .with_array("s", arr1(&[1.0, 2.0]))
            .with_plain("p", Plain::Int(1))
            .declared_by(|| {
                schema()
                    .input(Field::scalar("s", DType::Float64))
                    .input(Field::array("p", DType::Float64, [None]))
            });
        let (kind, msg) = kind(broken.array1::<f64>("x"));
        assert_eq!(kind, ErrorKind::InvalidInput, "{msg}");
        assert_eq!(
            msg,
            "input `x` has dtype float32, but its schema declares float64"
        );
        assert_eq!(
            self::kind(broken.array::<f64>("free")),
            (ErrorKind::InvalidInput, "missing input `free`".into())
        );
        assert_eq!(
            self::kind(broken.scalar::<f64>("s")).0,
            ErrorKind::InvalidInput
        );
        assert_eq!(
            self::kind(broken.array::<f64>("p")).0,
            ErrorKind::InvalidInput
        );
        let rank2 = Inputs::new()
            .with_array("x", arr2(&[[1.0]]))
            .declared_by(schema);
        assert_eq!(
            self::kind(rank2.array1::<f64>("x")).0,
            ErrorKind::InvalidInput
        );
        // The read disagrees with the schema: still the component's bug.
        assert_eq!(self::kind(broken.array::<i32>("x")).0, ErrorKind::Failed);
        assert_eq!(self::kind(broken.integer("x")).0, ErrorKind::Failed);
    }

    #[test]
    fn a_rank_the_client_chose_is_invalid_input() {
        let (kind, msg) = kind(inputs().array1::<f64>("free"));
        assert_eq!(kind, ErrorKind::InvalidInput);
        assert_eq!(msg, "input `free` has shape [2, 1], expected a vector");
        assert_eq!(
            self::kind(inputs().scalar::<f64>("free")).0,
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn without_a_schema_a_rank_error_stays_invalid_input() {
        let i = Inputs::new()
            .with_array("m", arr2(&[[1.0, 2.0]]))
            .with_array("v", arr1(&[1.0, 2.0]));
        assert_eq!(kind(i.array1::<f64>("m")).0, ErrorKind::InvalidInput);
        assert_eq!(kind(i.scalar::<f64>("v")).0, ErrorKind::InvalidInput);
    }

    #[test]
    fn a_missing_or_mistyped_cotangent_is_the_components_bug() {
        let a = Arrays::new().with("y", arr1(&[1.0_f64]));
        assert!(a.get::<f64>("y").is_ok());
        let (kind, msg) = kind(a.get::<f64>("x"));
        assert_eq!(kind, ErrorKind::Failed);
        assert!(msg.contains("(co)tangent for `x`"), "{msg}");
        assert_eq!(self::kind(a.get::<f32>("y")).0, ErrorKind::Failed);
    }

    #[test]
    fn abstract_inputs_blame_the_component_too() {
        let mut tree = AbstractTree::new();
        tree.insert("n".into(), AbstractLeaf::Plain(Plain::Int(1)));
        let a = AbstractInputs::from_tree(tree);
        assert_eq!(kind(a.shape("n")).0, ErrorKind::Failed);
        assert_eq!(kind(a.shape("x")).0, ErrorKind::Failed);
        assert!(a.plain("n").is_ok() && a.contains("n"));
    }
}
