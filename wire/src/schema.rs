//! Validation of requests against a component's declared input schema.
//!
//! This module owns turning a request's `inputs` JSON into a flattened [`Tree`] (or, for
//! abstract evaluation, an [`AbstractTree`]) keyed by concrete paths, and the pydantic-style
//! errors tesseract-core answers with (HTTP 422 `{"detail":[{type,loc,msg,input,ctx}]}`).
//!
//! The walk is guided by the declared field templates (`a`, `a.v`, `items.[]`, `named.{}`):
//! a JSON key whose path is a template is a leaf, a key that is a proper prefix of templates
//! descends, anything else is forbidden. Every error is collected, not just the first, since
//! pydantic reports them all. Array leaves go through [`codec`]: decode, rank and size checks,
//! size-1 broadcasting, then a checked cast to the declared dtype.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Value, json};
use tesseract_model::path::{self as tree_path, Segment, TemplateSegment};
use tesseract_model::schema::{ArraySpec, Dim, Field, FieldKind, Info, ShapeSpec};
use tesseract_model::{AbstractLeaf, AbstractTree, DType, Leaf, Plain, ShapeDType, Tensor, Tree};

use crate::codec::{self, ArrayError, DecodeOptions};

#[cfg(test)]
mod tests;

/// One step of an error location: an object key or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Loc {
    /// An object key; serializes as a JSON string.
    Key(String),
    /// A list index; serializes as a JSON integer.
    Index(usize),
}

impl Serialize for Loc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Loc::Key(k) => s.serialize_str(k),
            Loc::Index(i) => s.serialize_u64(*i as u64),
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Key(k) => f.write_str(k),
            Loc::Index(i) => write!(f, "{i}"),
        }
    }
}

impl From<&str> for Loc {
    fn from(key: &str) -> Loc {
        Loc::Key(key.to_owned())
    }
}

fn display_loc(loc: &[Loc]) -> String {
    loc.iter().map(Loc::to_string).collect::<Vec<_>>().join(".")
}

/// One request validation error, serialized as pydantic's `{type, loc, msg, input, ctx?}`.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{}: {msg}", display_loc(loc))]
pub struct ValidationError {
    /// The error type: pydantic's (`missing`, `extra_forbidden`, `int_type`, ...) or
    /// tesseract-core's (`array_decode_error`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Where the error is, starting with the caller's prefix (e.g. `["body", "inputs"]`).
    pub loc: Vec<Loc>,
    /// The human-readable message, pydantic's or tesseract-core's wording.
    pub msg: String,
    /// The offending value (for `missing`, the object the field is missing from).
    #[serde(serialize_with = "codec::serialize_echo")]
    pub input: Value,
    /// Structured details (`{"actual_dims": 2, ...}`); omitted from JSON when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl ValidationError {
    /// pydantic's `missing` error.
    pub fn missing(loc: Vec<Loc>, input: Value) -> ValidationError {
        ValidationError {
            kind: "missing".into(),
            loc,
            msg: "Field required".into(),
            input,
            ctx: None,
        }
    }

    /// pydantic's `extra_forbidden` error.
    pub fn extra_forbidden(loc: Vec<Loc>, input: Value) -> ValidationError {
        ValidationError {
            kind: "extra_forbidden".into(),
            loc,
            msg: "Extra inputs are not permitted".into(),
            input,
            ctx: None,
        }
    }

    /// A codec error at `loc`; `input` is the value that failed.
    pub fn from_array(loc: Vec<Loc>, input: Value, err: ArrayError) -> ValidationError {
        ValidationError {
            kind: err.kind.into(),
            loc,
            msg: err.msg,
            input,
            ctx: Some(err.ctx),
        }
    }

    /// pydantic's `value_error`, as a validator raising `ValueError(msg)` produces it.
    pub fn value_error(loc: Vec<Loc>, input: Value, msg: &str) -> ValidationError {
        ValidationError {
            kind: "value_error".into(),
            loc,
            msg: format!("Value error, {msg}"),
            input,
            ctx: Some(json!({ "error": {} })),
        }
    }
}

/// All the errors of one request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ValidationError::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl ValidationErrors {
    /// The 422 body: `{"detail":[...]}`.
    pub fn to_detail(&self) -> Value {
        json!({ "detail": self.0 })
    }
}

// ---------------------------------------------------------------------------------------------
// Array leaf helpers, reusable for tangents, cotangents and outputs
// ---------------------------------------------------------------------------------------------

/// numpy's repr of a declared shape: `(None, 3)`, or `...` for any rank.
fn py_spec(spec: &ShapeSpec) -> String {
    match spec {
        ShapeSpec::AnyRank => "...".to_owned(),
        ShapeSpec::Ranked(dims) => {
            let parts: Vec<String> = dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => n.to_string(),
                    Dim::Any => "None".to_owned(),
                })
                .collect();
            match parts.as_slice() {
                [] => "()".to_owned(),
                [one] => format!("({one},)"),
                _ => format!("({})", parts.join(", ")),
            }
        }
    }
}

/// Checks `shape` against a declared shape and returns the shape to broadcast to.
///
/// The rank must match (unless any rank is declared); a `None` dimension takes any size; a
/// fixed size N takes N, or 1 which broadcasts to N.
///
/// # Errors
/// `array_dimensionality_mismatch` (ctx `actual_dims`, `expected_dims`) or
/// `array_shape_mismatch` (ctx `actual_shape`, `expected_shape`), worded as tesseract-core.
pub fn check_shape(spec: &ShapeSpec, shape: &[usize]) -> Result<Vec<usize>, ArrayError> {
    let dims = match spec {
        ShapeSpec::AnyRank => return Ok(shape.to_vec()),
        ShapeSpec::Ranked(dims) => dims,
    };
    if dims.len() != shape.len() {
        return Err(ArrayError {
            kind: codec::ARRAY_DIMENSIONALITY_MISMATCH,
            msg: format!(
                "Array has wrong number of dimensions: got {}D, expected {}D",
                shape.len(),
                dims.len()
            ),
            ctx: json!({ "actual_dims": shape.len(), "expected_dims": dims.len() }),
        });
    }
    let target: Vec<usize> = dims
        .iter()
        .zip(shape)
        .map(|(d, &s)| match d {
            Dim::Fixed(n) => *n,
            Dim::Any => s,
        })
        .collect();
    if target.iter().zip(shape).any(|(&t, &s)| s != t && s != 1) {
        return Err(ArrayError {
            kind: codec::ARRAY_SHAPE_MISMATCH,
            msg: format!(
                "Array shape {} is incompatible with expected shape {}",
                codec::py_shape(shape),
                codec::py_shape(&target)
            ),
            ctx: json!({ "actual_shape": shape, "expected_shape": target }),
        });
    }
    Ok(target)
}

/// Fits a decoded tensor to a declared array: shape check, cast, then broadcast.
///
/// Casting before broadcasting keeps the cast on the smaller array; shape errors still come
/// first, as in tesseract-core.
///
/// # Errors
/// The shape errors of [`check_shape`] and the cast errors of [`codec::cast`].
pub fn conform(t: Tensor, spec: &ArraySpec) -> Result<Tensor, ArrayError> {
    let target = check_shape(&spec.shape, t.shape())?;
    let t = codec::cast(t, spec.dtype)?;
    let actual = t.shape().to_vec();
    codec::broadcast_to(t, &target).ok_or_else(|| ArrayError {
        kind: codec::ARRAY_SHAPE_MISMATCH,
        msg: format!(
            "Array shape {} cannot be broadcast to {}",
            codec::py_shape(&actual),
            codec::py_shape(&target)
        ),
        ctx: json!({ "actual_shape": actual, "expected_shape": target }),
    })
}

/// Decodes one array and fits it to a declared array (see [`conform`]). Broadcasting to a
/// larger declared shape makes a new array, so it is charged to the request's limits first:
/// `[0]` sent for a declared `(1024, 1024)` would otherwise turn 3 bytes into 8 MiB.
///
/// # Errors
/// Any decode, shape or cast error, or a broadcast the request's limits do not allow.
pub fn decode_for_spec(
    value: &Value,
    spec: &ArraySpec,
    opts: &DecodeOptions,
) -> Result<Tensor, ArrayError> {
    if let Value::Object(map) = value
        && codec::looks_encoded(map)
    {
        encoded_fits_spec(map, spec)?;
    }
    let t = codec::decode_array(value, opts)?;
    let target = check_shape(&spec.shape, t.shape())?;
    if target != t.shape() {
        opts.charge_allocation(&target, spec.dtype)?;
    }
    conform(t, spec)
}

/// tesseract-core types an encoded array's `shape` and `dtype` from the declared array (the
/// rank, each fixed size N as 1 or N, the dtypes that cast to the declared one). An object
/// outside those types fails the encoded-array model and is then read as plain data, which
/// is non-numeric; so these are `array_non_numeric`, not shape or dtype errors.
fn encoded_fits_spec(
    map: &serde_json::Map<String, Value>,
    spec: &ArraySpec,
) -> Result<(), ArrayError> {
    let not_encoded = |why: String| ArrayError {
        kind: codec::ARRAY_NON_NUMERIC,
        msg: format!("Could not parse value as a numeric array (contains non-numeric data): {why}"),
        ctx: json!({}),
    };
    if let (ShapeSpec::Ranked(dims), Some(Value::Array(shape))) = (&spec.shape, map.get("shape")) {
        if shape.len() != dims.len() {
            return Err(not_encoded(format!(
                "an encoded array of rank {} where rank {} is declared",
                shape.len(),
                dims.len()
            )));
        }
        for (d, s) in dims.iter().zip(shape) {
            if let (Dim::Fixed(n), Some(s)) = (d, s.as_u64())
                && s != 1
                && Some(s) != u64::try_from(*n).ok()
            {
                return Err(not_encoded(format!("size {s} where {n} is declared")));
            }
        }
    }
    if let Some(Value::String(name)) = map.get("dtype") {
        let int = |n: &str| n.starts_with("int") || n.starts_with("uint");
        let castable = codec::can_cast_same_kind(name, spec.dtype) == Some(true)
            || (int(name) && int(spec.dtype.name()));
        if !castable {
            return Err(not_encoded(format!(
                "dtype '{name}' does not cast to '{}'",
                spec.dtype
            )));
        }
    }
    Ok(())
}

/// Decodes one array and casts it to `dtype`, without shape checks (used for tangents, whose
/// shape is checked against the actual primal instead).
///
/// # Errors
/// Any decode or cast error.
pub fn decode_as(value: &Value, dtype: DType, opts: &DecodeOptions) -> Result<Tensor, ArrayError> {
    codec::cast(codec::decode_array(value, opts)?, dtype)
}

// ---------------------------------------------------------------------------------------------
// Plain leaves
// ---------------------------------------------------------------------------------------------

/// The JSON Schema `type`s this module checks; anything else passes through as JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlainType {
    Bool,
    Int,
    Number,
    Str,
    Other,
}

impl PlainType {
    fn of_schema(json_schema: &str) -> PlainType {
        let schema: Value = serde_json::from_str(json_schema).unwrap_or(Value::Null);
        match schema.get("type").and_then(Value::as_str) {
            Some("boolean") => PlainType::Bool,
            Some("integer") => PlainType::Int,
            Some("number") => PlainType::Number,
            Some("string") => PlainType::Str,
            _ => PlainType::Other,
        }
    }
}

/// A plain value's type failure: (kind, msg).
type PlainError = (&'static str, &'static str);

/// Converts a plain value as pydantic's lax validation in Python mode does (FastAPI validates
/// the parsed body that way): booleans also from 0/1 and the strings `true`/`false`/`yes`/
/// `no`/`on`/`off`/`t`/`f`/`y`/`n`/`1`/`0`; integers also from integral floats, booleans and
/// numeric strings; numbers also from integers, booleans and numeric strings.
fn plain_value(ty: PlainType, value: &Value) -> Result<Plain, PlainError> {
    const INT_TYPE: PlainError = ("int_type", "Input should be a valid integer");
    const INT_PARSING: PlainError = (
        "int_parsing",
        "Input should be a valid integer, unable to parse string as an integer",
    );
    const BOOL_PARSING: PlainError = (
        "bool_parsing",
        "Input should be a valid boolean, unable to interpret input",
    );
    match ty {
        PlainType::Bool => match value {
            Value::Bool(b) => Ok(Plain::Bool(*b)),
            Value::Number(n) => match n.as_f64() {
                Some(0.0) => Ok(Plain::Bool(false)),
                Some(1.0) => Ok(Plain::Bool(true)),
                _ => Err(BOOL_PARSING),
            },
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "0" | "off" | "f" | "false" | "n" | "no" => Ok(Plain::Bool(false)),
                "1" | "on" | "t" | "true" | "y" | "yes" => Ok(Plain::Bool(true)),
                _ => Err(BOOL_PARSING),
            },
            _ => Err(("bool_type", "Input should be a valid boolean")),
        },
        PlainType::Int => match value {
            Value::Bool(b) => Ok(Plain::Int(i64::from(*b))),
            // An integer literal beyond 64 bits (see `codec::python_tokens`).
            Value::String(s) if s.starts_with('\u{0}') => Err(INT_TYPE),
            Value::String(s) => {
                let t = s.trim().replace('_', "");
                t.parse::<i64>().map(Plain::Int).map_err(|_| INT_PARSING)
            }
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Plain::Int(i))
                } else if n.is_u64() {
                    // Python ints are unbounded; components take 64-bit integers.
                    Err(INT_TYPE)
                } else {
                    let f = n.as_f64().ok_or(INT_TYPE)?;
                    if f.fract() != 0.0 {
                        Err((
                            "int_from_float",
                            "Input should be a valid integer, got a number with a fractional part",
                        ))
                    } else if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0)
                        .contains(&f)
                    {
                        Ok(Plain::Int(f as i64))
                    } else {
                        Err(INT_TYPE)
                    }
                }
            }
            _ => Err(INT_TYPE),
        },
        PlainType::Number => match value {
            Value::Bool(b) => Ok(Plain::Float(f64::from(u8::from(*b)))),
            // A marker is a Python number; a big integer is an int, which a float field
            // takes (as the nearest float).
            Value::String(s) => codec::marker_number(s)
                .map_or_else(|| s.trim().parse::<f64>(), Ok)
                .map(Plain::Float)
                .map_err(|_| {
                    (
                        "float_parsing",
                        "Input should be a valid number, unable to parse string as a number",
                    )
                }),
            _ => value
                .as_f64()
                .map(Plain::Float)
                .ok_or(("float_type", "Input should be a valid number")),
        },
        // A marker stands for a Python number token (`NaN`, a big integer), which upstream
        // refuses as a string.
        PlainType::Str => value
            .as_str()
            .filter(|s| !codec::is_marker(s))
            .map(|s| Plain::Text(s.to_owned()))
            .ok_or(("string_type", "Input should be a valid string")),
        PlainType::Other => Ok(Plain::Json(value.to_string())),
    }
}

// ---------------------------------------------------------------------------------------------
// The template trie and the walk
// ---------------------------------------------------------------------------------------------

/// The declared fields arranged by template segment.
#[derive(Default)]
struct Node<'a> {
    leaf: Option<(&'a Field, PlainType)>,
    /// Model fields, in declaration order (errors are reported in that order).
    fields: Vec<(&'a str, Node<'a>)>,
    any_index: Option<Box<Node<'a>>>,
    any_key: Option<Box<Node<'a>>>,
    /// The template of this node, to name nested models in errors.
    template: String,
}

impl<'a> Node<'a> {
    fn build(fields: &'a [Field]) -> Node<'a> {
        let mut root = Node::default();
        for field in fields {
            let mut node = &mut root;
            for seg in tree_path::parse_template(&field.path) {
                let template = if node.template.is_empty() {
                    String::new()
                } else {
                    format!("{}.", node.template)
                };
                node = match seg {
                    TemplateSegment::Field(name) => {
                        let at = match node.fields.iter().position(|(n, _)| *n == name) {
                            Some(at) => at,
                            None => {
                                let name_ref = field_name_ref(field, &name);
                                let child = Node {
                                    template: format!("{template}{name}"),
                                    ..Node::default()
                                };
                                node.fields.push((name_ref, child));
                                node.fields.len() - 1
                            }
                        };
                        &mut node.fields[at].1
                    }
                    TemplateSegment::AnyIndex => &mut **node.any_index.get_or_insert_with(|| {
                        Box::new(Node {
                            template: format!("{template}[]"),
                            ..Node::default()
                        })
                    }),
                    TemplateSegment::AnyKey => &mut **node.any_key.get_or_insert_with(|| {
                        Box::new(Node {
                            template: format!("{template}{{}}"),
                            ..Node::default()
                        })
                    }),
                };
            }
            let plain = match &field.kind {
                FieldKind::Plain { json_schema } => PlainType::of_schema(json_schema),
                FieldKind::Array(_) => PlainType::Other,
            };
            node.leaf = Some((field, plain));
        }
        root
    }

    /// Whether a missing node can be filled entirely from defaults: every leaf below it is
    /// reached through model fields only and has a default.
    fn all_defaulted(&self) -> bool {
        match self.leaf {
            Some((field, _)) => field.default.is_some(),
            None => {
                self.any_index.is_none()
                    && self.any_key.is_none()
                    && !self.fields.is_empty()
                    && self.fields.iter().all(|(_, n)| n.all_defaulted())
            }
        }
    }
}

/// Borrows a template segment's name from the field's path, so the trie needs no owned keys.
fn field_name_ref<'a>(field: &'a Field, name: &str) -> &'a str {
    field.path.split('.').find(|s| *s == name).unwrap_or("")
}

/// One leaf failure: `sub` extends the leaf's location (e.g. `["shape"]`).
struct LeafError {
    sub: Vec<Loc>,
    kind: String,
    msg: String,
    input: Value,
    ctx: Option<Value>,
}

impl LeafError {
    fn array(input: &Value, err: ArrayError) -> LeafError {
        LeafError {
            sub: Vec::new(),
            kind: err.kind.into(),
            msg: err.msg,
            input: input.clone(),
            ctx: Some(err.ctx),
        }
    }
}

/// What array leaves become: tensors for concrete requests, shapes for abstract ones.
trait Sink {
    type Leaf;
    fn array(&self, value: &Value, spec: &ArraySpec) -> Result<Self::Leaf, Vec<LeafError>>;
    /// A declared default: always array data, even where requests send shapes.
    fn array_default(&self, value: &Value, spec: &ArraySpec) -> Result<Self::Leaf, Vec<LeafError>>;
    fn plain(&self, plain: Plain) -> Self::Leaf;
}

struct Concrete<'o>(&'o DecodeOptions);

impl Sink for Concrete<'_> {
    type Leaf = Leaf;

    fn array(&self, value: &Value, spec: &ArraySpec) -> Result<Leaf, Vec<LeafError>> {
        decode_for_spec(value, spec, self.0)
            .map(Leaf::Tensor)
            .map_err(|e| vec![LeafError::array(value, e)])
    }

    fn array_default(&self, value: &Value, spec: &ArraySpec) -> Result<Leaf, Vec<LeafError>> {
        self.array(value, spec)
    }

    fn plain(&self, plain: Plain) -> Leaf {
        Leaf::Plain(plain)
    }
}

struct Abstract;

impl Sink for Abstract {
    type Leaf = AbstractLeaf;

    fn array(&self, value: &Value, spec: &ArraySpec) -> Result<AbstractLeaf, Vec<LeafError>> {
        abstract_array(value, spec).map(AbstractLeaf::Array)
    }

    fn array_default(
        &self,
        value: &Value,
        spec: &ArraySpec,
    ) -> Result<AbstractLeaf, Vec<LeafError>> {
        // Defaults never name files, so no binref root is needed.
        decode_for_spec(value, spec, &DecodeOptions::default())
            .map(|t| {
                AbstractLeaf::Array(ShapeDType {
                    shape: t.shape().to_vec(),
                    dtype: spec.dtype,
                })
            })
            .map_err(|e| vec![LeafError::array(value, e)])
    }

    fn plain(&self, plain: Plain) -> AbstractLeaf {
        AbstractLeaf::Plain(plain)
    }
}

/// Validates a `ShapeDType` (`{"shape":[..],"dtype":".."}`, extra keys ignored) against a
/// declared array; the result carries the declared dtype, as tesseract-core casts it.
fn abstract_array(value: &Value, spec: &ArraySpec) -> Result<ShapeDType, Vec<LeafError>> {
    let err =
        |sub: Vec<Loc>, kind: &str, msg: String, input: &Value, ctx: Option<Value>| LeafError {
            sub,
            kind: kind.to_owned(),
            msg,
            input: input.clone(),
            ctx,
        };
    let Value::Object(map) = value else {
        return Err(vec![err(
            Vec::new(),
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from".into(),
            value,
            None,
        )]);
    };
    let mut errors = Vec::new();

    let shape = match map.get("shape") {
        None => {
            errors.push(err(
                vec!["shape".into()],
                "missing",
                "Field required".into(),
                value,
                None,
            ));
            None
        }
        Some(Value::Array(dims)) => {
            let mut shape = Vec::with_capacity(dims.len());
            for (i, d) in dims.iter().enumerate() {
                let sub = vec![Loc::from("shape"), Loc::Index(i)];
                match (d.as_u64().and_then(|u| usize::try_from(u).ok()), d.as_i64()) {
                    (Some(u), _) => shape.push(u),
                    (None, Some(_)) => errors.push(err(
                        sub,
                        "greater_than_equal",
                        "Input should be greater than or equal to 0".into(),
                        d,
                        Some(json!({ "ge": 0 })),
                    )),
                    (None, None) => {
                        errors.push(err(
                            sub,
                            "int_type",
                            "Input should be a valid integer".into(),
                            d,
                            None,
                        ));
                    }
                }
            }
            (shape.len() == dims.len()).then_some(shape)
        }
        Some(other) => {
            errors.push(err(
                vec!["shape".into()],
                "tuple_type",
                "Input should be a valid tuple".into(),
                other,
                None,
            ));
            None
        }
    };

    match map.get("dtype") {
        None => errors.push(err(
            vec!["dtype".into()],
            "missing",
            "Field required".into(),
            value,
            None,
        )),
        Some(Value::String(name)) if codec::NUMPY_DTYPES.contains(&name.as_str()) => {}
        Some(Value::String(name)) => {
            let quoted: Vec<String> = codec::NUMPY_DTYPES
                .iter()
                .map(|d| format!("'{d}'"))
                .collect();
            let expected = match quoted.split_last() {
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            };
            errors.push(err(
                vec!["dtype".into()],
                "literal_error",
                format!("Input should be {expected}"),
                &Value::String(name.clone()),
                Some(json!({ "expected": expected })),
            ));
        }
        Some(other) => {
            errors.push(err(
                vec!["dtype".into()],
                "string_type",
                "Input should be a valid string".into(),
                other,
                None,
            ));
        }
    }
    // As pydantic: the ShapeDType validator (shape, then dtype) runs only on a valid model.
    if !errors.is_empty() {
        return Err(errors);
    }

    // tesseract-core reports abstract shape mismatches through a plain ValueError.
    let target = shape.and_then(|shape| match check_shape(&spec.shape, &shape) {
        Ok(target) => Some(target),
        Err(_) => {
            let msg = format!(
                "Value error, Expected shape: {}. Found: {}.",
                py_spec(&spec.shape),
                codec::py_shape(&shape)
            );
            errors.push(err(
                Vec::new(),
                "value_error",
                msg,
                value,
                Some(json!({ "error": {} })),
            ));
            None
        }
    });
    if let (Some(_), Some(Value::String(name))) = (&target, map.get("dtype"))
        && codec::can_cast_same_kind(name, spec.dtype) == Some(false)
    {
        let msg = format!(
            "Array dtype '{name}' cannot be safely cast to '{}'",
            spec.dtype
        );
        let ctx = json!({ "actual_dtype": name, "expected_dtype": spec.dtype.name() });
        errors.push(err(
            Vec::new(),
            codec::ARRAY_DTYPE_MISMATCH,
            msg,
            value,
            Some(ctx),
        ));
    }
    match target {
        Some(shape) if errors.is_empty() => Ok(ShapeDType {
            shape,
            dtype: spec.dtype,
        }),
        _ => Err(errors),
    }
}

struct Walker<'s, S: Sink> {
    sink: &'s S,
    out: std::collections::BTreeMap<String, S::Leaf>,
    errors: Vec<ValidationError>,
    loc: Vec<Loc>,
    path: Vec<Segment>,
}

impl<S: Sink> Walker<'_, S> {
    fn error(&mut self, kind: &str, msg: impl Into<String>, input: &Value, ctx: Option<Value>) {
        self.errors.push(ValidationError {
            kind: kind.to_owned(),
            loc: self.loc.clone(),
            msg: msg.into(),
            input: input.clone(),
            ctx,
        });
    }

    fn enter(&mut self, loc: Loc, seg: Segment) {
        self.loc.push(loc);
        self.path.push(seg);
    }

    fn leave(&mut self) {
        self.loc.pop();
        self.path.pop();
    }

    fn node(&mut self, node: &Node<'_>, value: &Value) {
        if let Some((field, plain)) = node.leaf {
            self.leaf(field, plain, value);
        } else if let Some(child) = &node.any_index {
            let Value::Array(items) = value else {
                return self.error("list_type", "Input should be a valid list", value, None);
            };
            for (i, item) in items.iter().enumerate() {
                self.enter(Loc::Index(i), Segment::Index(i));
                self.node(child, item);
                self.leave();
            }
        } else if node.fields.is_empty() && node.any_key.is_some() {
            let Value::Object(map) = value else {
                return self.error(
                    "dict_type",
                    "Input should be a valid dictionary",
                    value,
                    None,
                );
            };
            for (key, item) in map {
                self.dict_entry(node, key, item);
            }
        } else {
            self.model(node, value);
        }
    }

    fn model(&mut self, node: &Node<'_>, value: &Value) {
        let Value::Object(map) = value else {
            // FastAPI validates the parsed body in Python mode, where pydantic names this
            // `model_attributes_type` (`model_type` is the JSON-mode name).
            return self.error(
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
                value,
                None,
            );
        };
        for (name, child) in &node.fields {
            self.enter(
                Loc::Key((*name).to_owned()),
                Segment::Field((*name).to_owned()),
            );
            match map.get(*name) {
                Some(item) => self.node(child, item),
                None => self.absent(child, value),
            }
            self.leave();
        }
        for (key, item) in map {
            if node.fields.iter().any(|(name, _)| name == key) {
                continue;
            }
            if node.any_key.is_some() {
                self.dict_entry(node, key, item);
            } else {
                self.loc.push(Loc::Key(key.clone()));
                self.errors.push(ValidationError::extra_forbidden(
                    self.loc.clone(),
                    item.clone(),
                ));
                self.loc.pop();
            }
        }
    }

    fn dict_entry(&mut self, node: &Node<'_>, key: &str, item: &Value) {
        let Some(child) = &node.any_key else { return };
        self.enter(Loc::Key(key.to_owned()), Segment::Key(key.to_owned()));
        if key.is_empty() {
            // An empty key has no path (`{}` is the template), so the tree could not hold it.
            self.errors.push(ValidationError::value_error(
                self.loc.clone(),
                item.clone(),
                "dict keys must not be empty",
            ));
        } else {
            self.node(child, item);
        }
        self.leave();
    }

    /// A field missing from its object: defaults fill it, otherwise it is `missing`.
    fn absent(&mut self, node: &Node<'_>, parent: &Value) {
        match node.leaf {
            Some((field, plain)) => match &field.default {
                Some(text) => self.default(field, plain, text),
                None => self
                    .errors
                    .push(ValidationError::missing(self.loc.clone(), parent.clone())),
            },
            None if node.all_defaulted() => {
                for (name, child) in &node.fields {
                    self.enter(
                        Loc::Key((*name).to_owned()),
                        Segment::Field((*name).to_owned()),
                    );
                    self.absent(child, parent);
                    self.leave();
                }
            }
            None => self
                .errors
                .push(ValidationError::missing(self.loc.clone(), parent.clone())),
        }
    }

    fn default(&mut self, field: &Field, plain: PlainType, text: &str) {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            // The component declared a default that is not JSON; the request is not at fault,
            // but the field cannot be filled either.
            let msg = format!("the declared default of '{}' is not valid JSON", field.path);
            return self.error("default_invalid", msg, &Value::Null, None);
        };
        match &field.kind {
            // `Optional[Array] = None`: the leaf is simply absent.
            FieldKind::Array(_) if value.is_null() => {}
            FieldKind::Array(spec) => {
                let result = self.sink.array_default(&value, spec);
                self.array_result(result);
            }
            // pydantic does not validate defaults; a default that does not fit its own type is
            // still passed on, as JSON.
            FieldKind::Plain { .. } => {
                let plain =
                    plain_value(plain, &value).unwrap_or_else(|_| Plain::Json(value.to_string()));
                self.emit(self.sink.plain(plain));
            }
        }
    }

    fn leaf(&mut self, field: &Field, plain: PlainType, value: &Value) {
        match &field.kind {
            FieldKind::Array(spec) => {
                if value.is_null() && field.default.as_deref().map(str::trim) == Some("null") {
                    return;
                }
                let result = self.sink.array(value, spec);
                self.array_result(result);
            }
            FieldKind::Plain { .. } => match plain_value(plain, value) {
                Ok(p) => self.emit(self.sink.plain(p)),
                Err((kind, msg)) => self.error(kind, msg, value, None),
            },
        }
    }

    fn array_result(&mut self, result: Result<S::Leaf, Vec<LeafError>>) {
        match result {
            Ok(leaf) => self.emit(leaf),
            Err(errors) => {
                for e in errors {
                    let mut loc = self.loc.clone();
                    loc.extend(e.sub);
                    self.errors.push(ValidationError {
                        kind: e.kind,
                        loc,
                        msg: e.msg,
                        input: e.input,
                        ctx: e.ctx,
                    });
                }
            }
        }
    }

    fn emit(&mut self, leaf: S::Leaf) {
        self.out.insert(tree_path::format(&self.path), leaf);
    }
}

fn walk<S: Sink>(
    info: &Info,
    inputs: &Value,
    loc: &[Loc],
    sink: &S,
) -> Result<std::collections::BTreeMap<String, S::Leaf>, ValidationErrors> {
    let root = Node::build(&info.inputs);
    let mut walker = Walker {
        sink,
        out: std::collections::BTreeMap::new(),
        errors: Vec::new(),
        loc: loc.to_vec(),
        path: Vec::new(),
    };
    walker.model(&root, inputs);
    if walker.errors.is_empty() {
        Ok(walker.out)
    } else {
        Err(ValidationErrors(walker.errors))
    }
}

/// Validates a request's `inputs` object against the declared input fields and flattens it.
///
/// Array leaves are decoded (any encoding), checked for rank and fixed sizes, broadcast from
/// size 1 and cast to the declared dtype; plain leaves are checked against a
/// boolean/integer/number/string JSON Schema `type` (other schemas pass through as JSON text).
/// Missing fields take their declared defaults. Paths are concrete (`items.[1]`,
/// `named.{k}`) with dict keys escaped. `loc` prefixes every error location.
///
/// # Errors
/// Every problem found, in field order, as pydantic would list them.
pub fn validate_inputs(
    info: &Info,
    inputs: &Value,
    opts: &DecodeOptions,
    loc: &[Loc],
) -> Result<Tree, ValidationErrors> {
    walk(info, inputs, loc, &Concrete(opts))
}

/// Like [`validate_inputs`] for abstract evaluation: array leaves are `{"shape","dtype"}`
/// (extra keys ignored, so full encoded arrays are accepted too), checked for rank and fixed
/// sizes and for a dtype castable to the declared one, which the result carries.
///
/// # Errors
/// Every problem found; a non-castable dtype is `array_dtype_mismatch`.
pub fn validate_abstract_inputs(
    info: &Info,
    inputs: &Value,
    loc: &[Loc],
) -> Result<AbstractTree, ValidationErrors> {
    walk(info, inputs, loc, &Abstract)
}
