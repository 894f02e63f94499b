//! Array encodings on the wire, as tesseract-core 1.15 writes and reads them.
//!
//! This module owns the conversion between JSON values and [`Tensor`]s:
//!
//! - decoding request arrays ([`decode_array`]): encoded-array objects in `json`/`raw`,
//!   `base64` (optionally an lz4 frame) and `binref` encodings, and bare JSON numbers, bools and
//!   nested lists;
//! - numpy-compatible dtype casting ([`cast`]) and size-1 broadcasting ([`broadcast_to`]);
//! - encoding response arrays ([`encode_array`], [`encode_abstract`]);
//! - rebuilding nested JSON from a path-keyed tree ([`unflatten`]).
//!
//! Everything here is pure apart from reading binref files; it knows nothing about schemas,
//! wasm or HTTP. Error kinds and messages copy tesseract-core's (`runtime/array_encoding.py`),
//! because clients rebuild pydantic errors from them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value, json};
use tesseract_model::path::{self as tree_path, Segment};
use tesseract_model::{AbstractLeaf, DType, Data, Leaf, Plain, ShapeDType, Tensor};

mod answer;
mod narrow;
mod nonfinite;
#[cfg(test)]
mod tests;

pub use answer::{Answer, EncodedArray, JsonBuffer};
use narrow::WireDType;
pub use nonfinite::{is_marker, marker_number, marker_value, python_tokens, serialize_echo};

/// Error kind for a buffer that cannot be decoded (bad base64, bad lz4, wrong length, ...).
pub const ARRAY_DECODE_ERROR: &str = "array_decode_error";
/// Error kind for a value that is not numeric (strings, objects, null).
pub const ARRAY_NON_NUMERIC: &str = "array_non_numeric";
/// Error kind for a dtype that cannot be cast to the declared one.
pub const ARRAY_DTYPE_MISMATCH: &str = "array_dtype_mismatch";
/// Error kind for a value that does not fit the target dtype.
pub const ARRAY_VALUE_OUT_OF_RANGE: &str = "array_value_out_of_range";
/// Error kind for fractional floats sent where integers are expected.
pub const ARRAY_EXPECTED_INTEGER: &str = "array_expected_integer";
/// Error kind for a dtype name that is not valid or not supported here.
pub const ARRAY_INVALID_DTYPE: &str = "array_invalid_dtype";
/// Error kind for a rank mismatch.
pub const ARRAY_DIMENSIONALITY_MISMATCH: &str = "array_dimensionality_mismatch";
/// Error kind for a dimension that neither matches nor broadcasts.
pub const ARRAY_SHAPE_MISMATCH: &str = "array_shape_mismatch";

/// Every dtype name tesseract-core accepts on the wire (`AllowedDtypes`). Only the ones
/// [`DType`] covers can carry data here; the others are still recognised so that errors can say
/// "not supported" rather than "not a dtype", and so abstract evaluation can cast them.
pub const NUMPY_DTYPES: [&str; 14] = [
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "bool",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "complex64",
    "complex128",
];

/// Where and how array buffers may be read from, and how much one request may decode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The directory `binref` paths are relative to; `None` refuses binref input.
    pub binref_root: Option<PathBuf>,
    /// What one request may make the decoder allocate.
    pub limits: DecodeLimits,
    /// Tensor elements decoded so far with these options. Clones share it: make one per
    /// request with [`DecodeOptions::for_request`].
    pub spent: ElementBudget,
}

/// Limits on a request's wire data, each checked before the memory it guards is allocated.
/// The defaults suit a 2-core, 4 GiB machine serving components with the default 512 MiB of
/// guest memory: no single request can make the host allocate more than a few hundred MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest array a request may send, in bytes once decoded (shape × dtype size). Checked
    /// from the declared shape before a base64, lz4 or binref buffer is decoded, and lz4
    /// output is cut off there even when the frame does not declare its size.
    pub max_array_bytes: u64,
    /// Most tensor elements all arrays of one request may hold together (inputs and
    /// (co)tangents, before broadcasting).
    pub max_request_elements: u64,
    /// Longest path in a request, in bytes: binref file paths, path sets such as
    /// `jvp_inputs`, (co)tangent keys and object keys.
    pub max_path_bytes: usize,
    /// Deepest nesting of a JSON body. At most [`MAX_JSON_DEPTH`], serde_json's own limit.
    pub max_json_depth: usize,
    /// Most JSON values (numbers, strings, lists, objects, ...) in one body; each becomes a
    /// node of tens of bytes, so this bounds the parsed body whatever the byte size allows.
    pub max_json_values: usize,
}

/// The deepest JSON nesting the parser can take at all (serde_json's recursion limit).
pub const MAX_JSON_DEPTH: usize = 128;

impl Default for DecodeLimits {
    fn default() -> DecodeLimits {
        DecodeLimits {
            max_array_bytes: 256 << 20,
            max_request_elements: 1 << 25,
            max_path_bytes: 1024,
            max_json_depth: 64,
            max_json_values: 1 << 19,
        }
    }
}

/// A running count of decoded tensor elements, shared by clones. Comparing two budgets is
/// always equal: it is bookkeeping, not configuration.
#[derive(Debug, Clone, Default)]
pub struct ElementBudget(Arc<AtomicU64>);

impl PartialEq for ElementBudget {
    fn eq(&self, _: &ElementBudget) -> bool {
        true
    }
}

impl Eq for ElementBudget {}

impl DecodeOptions {
    /// The same options with a fresh element budget, for one request.
    pub fn for_request(&self) -> DecodeOptions {
        DecodeOptions {
            spent: ElementBudget::default(),
            ..self.clone()
        }
    }

    /// Checks a path against [`DecodeLimits::max_path_bytes`].
    ///
    /// # Errors
    /// A message naming the limit.
    pub fn check_path(&self, path: &str) -> Result<(), String> {
        let max = self.limits.max_path_bytes;
        if path.len() > max {
            return Err(format!(
                "path of {} bytes is longer than the server's limit of {max} bytes (--max-path-length)",
                path.len()
            ));
        }
        Ok(())
    }

    /// Counts an array the server allocates for the request without decoding it (a
    /// (co)tangent broadcast or copied across a batch, the zeros a derived abstract_eval
    /// applies the component to) against the same limits as a decoded one, before it exists.
    ///
    /// # Errors
    /// An [`ArrayError`] naming the limit it would break.
    pub fn charge_allocation(&self, shape: &[usize], dtype: DType) -> Result<(), ArrayError> {
        let nbytes = checked_numel(shape)
            .and_then(|n| n.checked_mul(dtype.size_bytes()))
            .unwrap_or(usize::MAX);
        self.charge(shape, dtype, nbytes)
    }

    /// Counts an array of `shape` and `dtype` against the limits before it is allocated.
    fn charge(&self, shape: &[usize], dtype: DType, nbytes: usize) -> Result<(), ArrayError> {
        let limits = &self.limits;
        let nbytes = u64::try_from(nbytes).unwrap_or(u64::MAX);
        if nbytes > limits.max_array_bytes {
            return Err(ArrayError::too_large(format!(
                "array of shape {} and dtype {dtype} would take {nbytes} bytes, more than the server's limit of {} bytes per array (--max-array-size)",
                py_shape(shape),
                limits.max_array_bytes
            )));
        }
        let n = checked_numel(shape).map_or(u64::MAX, |n| u64::try_from(n).unwrap_or(u64::MAX));
        let before = self
            .spent
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(s.saturating_add(n))
            })
            .unwrap_or(u64::MAX);
        let total = before.saturating_add(n);
        if total > limits.max_request_elements {
            return Err(ArrayError::too_large(format!(
                "the request's arrays hold {total} elements with this one (shape {}), more than the server's limit of {} per request (--max-request-elements)",
                py_shape(shape),
                limits.max_request_elements
            )));
        }
        Ok(())
    }
}

/// Why an array could not be decoded or cast. `kind` is tesseract-core's error type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{msg}")]
pub struct ArrayError {
    /// The tesseract/pydantic error type, e.g. [`ARRAY_DECODE_ERROR`].
    pub kind: &'static str,
    /// The human-readable message.
    pub msg: String,
    /// The error context (always a JSON object, `{}` when there is none).
    pub ctx: Value,
}

impl ArrayError {
    fn new(kind: &'static str, msg: impl Into<String>, ctx: Value) -> ArrayError {
        ArrayError {
            kind,
            msg: msg.into(),
            ctx,
        }
    }

    /// A buffer problem, worded as tesseract-core words it.
    fn decode(encoding: &str, error: impl Into<String>) -> ArrayError {
        let error = error.into();
        ArrayError::new(
            ARRAY_DECODE_ERROR,
            format!("Failed to decode array buffer ({encoding} encoding): {error}"),
            json!({ "encoding": encoding, "error": error }),
        )
    }

    /// A problem with the encoded-array object itself rather than its buffer.
    fn structure(error: impl Into<String>) -> ArrayError {
        let error = error.into();
        ArrayError::new(
            ARRAY_DECODE_ERROR,
            format!("Invalid encoded array: {error}"),
            json!({ "error": error }),
        )
    }

    /// An object that is not a valid encoded array (unknown or missing keys, a dtype that
    /// reaches no real dtype, ...). Upstream's encoded-array model then fails and the object is
    /// read as plain data, which is non-numeric: `array_non_numeric`, with the reason added.
    fn not_encoded(reason: impl Into<String>) -> ArrayError {
        ArrayError::new(
            ARRAY_NON_NUMERIC,
            format!(
                "Could not parse value as a numeric array (contains non-numeric data): {}",
                reason.into()
            ),
            json!({}),
        )
    }

    /// A request over one of the server's [`DecodeLimits`].
    fn too_large(msg: String) -> ArrayError {
        ArrayError::new(ARRAY_DECODE_ERROR, msg.clone(), json!({ "error": msg }))
    }

    fn non_numeric() -> ArrayError {
        ArrayError::new(
            ARRAY_NON_NUMERIC,
            "Could not parse value as a numeric array (contains non-numeric data)",
            json!({}),
        )
    }

    fn dtype_mismatch(actual: &str, expected: DType) -> ArrayError {
        ArrayError::new(
            ARRAY_DTYPE_MISMATCH,
            format!("Array dtype '{actual}' cannot be safely cast to '{expected}'"),
            json!({ "actual_dtype": actual, "expected_dtype": expected.name() }),
        )
    }

    fn out_of_range(expected: DType, value: String) -> ArrayError {
        ArrayError::new(
            ARRAY_VALUE_OUT_OF_RANGE,
            format!("Array values do not fit into dtype '{expected}' (e.g. {value})"),
            json!({ "expected_dtype": expected.name(), "value": value }),
        )
    }

    fn expected_integer() -> ArrayError {
        ArrayError::new(
            ARRAY_EXPECTED_INTEGER,
            "Expected integer data, but array contains floating point values",
            json!({}),
        )
    }
}

fn supported_list() -> String {
    DType::ALL
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a wire dtype name into a supported [`DType`].
///
/// # Errors
/// `array_invalid_dtype` for names that are not numpy dtypes, and for numpy dtypes this
/// server cannot hold data in (float16, int8, uint*, complex*); the message lists the supported
/// ones.
pub fn parse_dtype(name: &str) -> Result<DType, ArrayError> {
    if let Some(d) = DType::from_name(name) {
        return Ok(d);
    }
    let allowed = supported_list();
    let msg = if NUMPY_DTYPES.contains(&name) {
        format!(
            "Array dtype '{name}' is not supported by this server; supported dtypes are: {allowed}"
        )
    } else {
        format!("Array has unsupported dtype '{name}'; must be one of: {allowed}")
    };
    Err(ArrayError::new(
        ARRAY_INVALID_DTYPE,
        msg,
        json!({ "actual_dtype": name, "allowed_dtypes": allowed }),
    ))
}

/// numpy's `can_cast(from, to, "same_kind")` for any wire dtype name, or `None` when `from`
/// is not a numpy dtype name.
///
/// Kinds are ordered bool < unsigned < signed < float < complex and a cast is allowed to the
/// same or a later kind at any size; that is exactly numpy's same_kind table for these types.
pub fn can_cast_same_kind(from: &str, to: DType) -> Option<bool> {
    let rank = |name: &str| -> Option<u8> {
        Some(match name {
            "bool" => 0,
            "uint8" | "uint16" | "uint32" | "uint64" => 1,
            "int8" | "int16" | "int32" | "int64" => 2,
            "float16" | "float32" | "float64" => 3,
            "complex64" | "complex128" => 4,
            _ => return None,
        })
    };
    Some(rank(from)? <= rank(to.name())?)
}

/// Number of elements of `shape`, or `None` when the product overflows `usize`.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// numpy's tuple repr, used in messages so they read like tesseract-core's: `()`, `(3,)`,
/// `(2, 3)`.
pub fn py_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_owned(),
        [d] => format!("({d},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `repr(float)`: error contexts carry values the way `str(x.item())` prints them.
fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let a = x.abs();
    if a == 0.0 || (1e-4..1e16).contains(&a) {
        let s = format!("{x}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        // Rust writes `1e300`/`1e-5`; Python writes `1e+300`/`1e-05`.
        let s = format!("{x:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                format!("{mantissa}e{sign}{digits:0>2}")
            }
            None => s,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// Decodes one request array: an encoded-array object or a bare JSON number, bool or nested
/// list. The result keeps the dtype the request stated (or numpy would infer); use [`cast`] to
/// reach a declared dtype.
///
/// # Errors
/// `array_non_numeric` for strings, null and non-array objects; `array_decode_error` for a bad
/// object or buffer; `array_invalid_dtype` for unsupported dtypes; `array_expected_integer` /
/// `array_value_out_of_range` when a JSON buffer does not fit its stated dtype.
pub fn decode_array(value: &Value, opts: &DecodeOptions) -> Result<Tensor, ArrayError> {
    match value {
        Value::Object(map) if looks_encoded(map) => decode_encoded(map, opts),
        _ => {
            let t = decode_bare(value)?;
            // Already parsed JSON, so nothing large was allocated; it still counts.
            opts.charge(
                t.shape(),
                t.dtype(),
                t.len().saturating_mul(t.dtype().size_bytes()),
            )?;
            Ok(t)
        }
    }
}

/// An object is taken as an encoded array if it uses any of the model's keys; any other
/// object is just non-numeric data, which is what numpy would make of it.
pub(crate) fn looks_encoded(map: &Map<String, Value>) -> bool {
    ["object_type", "shape", "dtype", "data"]
        .iter()
        .any(|k| map.contains_key(*k))
}

fn decode_bare(value: &Value) -> Result<Tensor, ArrayError> {
    let (shape, data) = infer(value).map_err(|e| match e {
        InferError::NonNumeric => ArrayError::non_numeric(),
        // numpy raises ValueError, which pydantic reports as a plain value_error.
        InferError::Ragged => ArrayError::new(
            "value_error",
            "Value error, setting an array element with a sequence: nested lists have inhomogeneous lengths",
            json!({ "error": {} }),
        ),
        InferError::Array(e) => e,
    })?;
    Tensor::new(shape, data).map_err(|e| ArrayError::structure(e.to_string()))
}

fn decode_encoded(map: &Map<String, Value>, opts: &DecodeOptions) -> Result<Tensor, ArrayError> {
    if let Some(extra) = map
        .keys()
        .find(|k| !["object_type", "shape", "dtype", "data"].contains(&k.as_str()))
    {
        return Err(ArrayError::not_encoded(format!(
            "extra key '{extra}' is not permitted"
        )));
    }
    match map.get("object_type") {
        None => {}
        Some(Value::String(s)) if s == "array" => {}
        Some(_) => return Err(ArrayError::not_encoded("'object_type' must be \"array\"")),
    }
    let shape = parse_shape(
        map.get("shape")
            .ok_or_else(|| ArrayError::not_encoded("missing 'shape'"))?,
    )
    .ok_or_else(|| ArrayError::not_encoded("'shape' must be a list of non-negative integers"))?;
    let wire = match map.get("dtype") {
        Some(Value::String(s)) => WireDType::parse(s)
            .ok_or_else(|| ArrayError::not_encoded(format!("'{s}' is not a real numpy dtype")))?,
        Some(_) => return Err(ArrayError::not_encoded("'dtype' must be a string")),
        None => return Err(ArrayError::not_encoded("missing 'dtype'")),
    };
    let data = match map.get("data") {
        Some(Value::Object(d)) => d,
        Some(_) => return Err(ArrayError::not_encoded("'data' must be an object")),
        None => return Err(ArrayError::not_encoded("missing 'data'")),
    };
    if let Some(extra) = data
        .keys()
        .find(|k| !["buffer", "encoding", "compression"].contains(&k.as_str()))
    {
        return Err(ArrayError::not_encoded(format!(
            "extra key 'data.{extra}' is not permitted"
        )));
    }
    let encoding = match data.get("encoding") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ArrayError::not_encoded("'data.encoding' must be a string")),
        None => return Err(ArrayError::not_encoded("missing 'data.encoding'")),
    };
    let lz4 = match data.get("compression") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "lz4" => true,
        Some(other) => {
            return Err(ArrayError::not_encoded(format!(
                "unsupported compression {other}; expected null or \"lz4\""
            )));
        }
    };
    let buffer = data
        .get("buffer")
        .ok_or_else(|| ArrayError::not_encoded("missing 'data.buffer'"))?;
    // Checked before touching the buffer so that a huge declared shape cannot drive any
    // allocation below.
    let dtype = wire.holder();
    let Some(nbytes) = checked_numel(&shape).and_then(|n| n.checked_mul(wire.size_bytes())) else {
        return Err(ArrayError::structure(format!(
            "shape {} has more elements than this server can address",
            py_shape(&shape)
        )));
    };
    opts.charge(&shape, dtype, nbytes)?;

    let data = match encoding {
        "json" => {
            if lz4 {
                return Err(ArrayError::not_encoded(
                    "json-encoded buffers cannot be compressed",
                ));
            }
            decode_json_buffer(buffer, &shape, wire, encoding)?
        }
        "base64" => {
            let Value::String(text) = buffer else {
                return Err(ArrayError::not_encoded("'data.buffer' must be a string"));
            };
            if !lz4 && let WireDType::Held(dtype) = wire {
                check_base64_len(text, Some(nbytes))?;
                decode_base64_data(text, dtype, nbytes)?
            } else {
                decode_base64_bytes(text, lz4, nbytes, wire, encoding)?
            }
        }
        "binref" => {
            let Value::String(text) = buffer else {
                return Err(ArrayError::not_encoded("'data.buffer' must be a string"));
            };
            let bytes = read_binref(text, lz4, nbytes, opts)
                .map_err(|e| ArrayError::decode(encoding, e))?;
            wire.read_le_bytes(&bytes, nbytes)
                .map_err(|e| ArrayError::decode(encoding, e))?
        }
        "cuda_ipc" => {
            return Err(ArrayError::decode(
                encoding,
                "cuda_ipc encoding is not supported by this server",
            ));
        }
        other => {
            return Err(ArrayError::not_encoded(format!(
                "unknown encoding '{other}'; expected one of json, base64, binref"
            )));
        }
    };
    Tensor::new(shape, data).map_err(|e| ArrayError::decode(encoding, e.to_string()))
}

fn parse_shape(value: &Value) -> Option<Vec<usize>> {
    value
        .as_array()?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect()
}

/// A json buffer is `np.asarray(buffer).reshape(shape)` followed by a checked cast to the
/// stated dtype, so only the element count has to match the shape.
fn decode_json_buffer(
    buffer: &Value,
    shape: &[usize],
    wire: WireDType,
    encoding: &str,
) -> Result<Data, ArrayError> {
    let (found, data) = infer(buffer).map_err(|e| match e {
        InferError::NonNumeric => ArrayError::decode(encoding, "buffer contains non-numeric data"),
        InferError::Ragged => {
            ArrayError::decode(encoding, "nested lists have inhomogeneous lengths")
        }
        InferError::Array(e) => e,
    })?;
    if checked_numel(&found) != checked_numel(shape) {
        return Err(ArrayError::decode(
            encoding,
            format!(
                "cannot reshape array of size {} into shape {}",
                data.len(),
                py_shape(shape)
            ),
        ));
    }
    wire.fit_json(convert(data, wire.holder(), CastMode::Unsafe)?)
}

/// Checks a base64 text's length: a multiple of 4, and when the plain byte length is known,
/// that length, so that a wrong-sized buffer is refused before decoding.
fn check_base64_len(text: &str, expected: Option<usize>) -> Result<(), ArrayError> {
    if !text.len().is_multiple_of(4) {
        return Err(ArrayError::decode(
            "base64",
            "invalid base64: length is not a multiple of 4",
        ));
    }
    if let Some(expected) = expected {
        let len = base64_decoded_len(text);
        if len != expected {
            return Err(ArrayError::decode(
                "base64",
                format!("buffer holds {len} bytes, but shape and dtype need {expected}"),
            ));
        }
    }
    Ok(())
}

/// The bytes a padded base64 text of a multiple of 4 characters decodes to.
fn base64_decoded_len(text: &str) -> usize {
    let padding = text.bytes().rev().take(2).filter(|&b| b == b'=').count();
    (text.len() / 4 * 3).saturating_sub(padding)
}

/// Decodes strict, padded standard base64 into bytes.
fn decode_base64(text: &str, expected: Option<usize>) -> Result<Vec<u8>, ArrayError> {
    check_base64_len(text, expected)?;
    decode_base64_into::<u8>(text, base64_decoded_len(text), |b| b)
}

/// A base64 buffer that is lz4-compressed or holds a dtype this server widens: bytes first,
/// then elements.
fn decode_base64_bytes(
    text: &str,
    lz4: bool,
    nbytes: usize,
    wire: WireDType,
    encoding: &str,
) -> Result<Data, ArrayError> {
    let bytes = decode_base64(text, if lz4 { None } else { Some(nbytes) })?;
    let bytes = if lz4 {
        lz4_decompress(&bytes, nbytes).map_err(|e| ArrayError::decode(encoding, e))?
    } else {
        bytes
    };
    wire.read_le_bytes(&bytes, nbytes)
        .map_err(|e| ArrayError::decode(encoding, e))
}

/// A base64 buffer of a dtype held as is, decoded straight into the element vector (no byte
/// vector in between). `text` has passed [`check_base64_len`] for `nbytes`.
fn decode_base64_data(text: &str, dtype: DType, nbytes: usize) -> Result<Data, ArrayError> {
    let n = nbytes / dtype.size_bytes().max(1);
    Ok(match dtype {
        DType::Float32 => Data::Float32(decode_base64_into(text, n, FromLe::le_to_native)?),
        DType::Float64 => Data::Float64(decode_base64_into(text, n, FromLe::le_to_native)?),
        DType::Int32 => Data::Int32(decode_base64_into(text, n, FromLe::le_to_native)?),
        DType::Int64 => Data::Int64(decode_base64_into(text, n, FromLe::le_to_native)?),
        // numpy reads any nonzero byte as True.
        DType::Bool => Data::Bool(
            decode_base64_into::<u8>(text, n, |b| b)?
                .into_iter()
                .map(|b| b != 0)
                .collect(),
        ),
    })
}

/// Little-endian element reads for [`decode_base64_into`]; a no-op on little-endian hosts.
trait FromLe: bytemuck::Pod {
    fn le_to_native(self) -> Self;
}

macro_rules! from_le_int {
    ($($t:ty),*) => {$(
        impl FromLe for $t {
            fn le_to_native(self) -> $t {
                <$t>::from_le(self)
            }
        }
    )*};
}
from_le_int!(i32, i64);

impl FromLe for f32 {
    fn le_to_native(self) -> f32 {
        f32::from_bits(u32::from_le(self.to_bits()))
    }
}

impl FromLe for f64 {
    fn le_to_native(self) -> f64 {
        f64::from_bits(u64::from_le(self.to_bits()))
    }
}

/// Decodes `head`, whole unpadded 4-character groups, to the start of `out`; returns the
/// bytes written. `base64-simd` first (about 4× the `base64` crate on megabyte buffers); when
/// it refuses, the `base64` crate decides, so what is accepted and every error message stay
/// the `base64` crate's.
fn decode_head(head: &[u8], out: &mut [u8]) -> Result<usize, base64::DecodeSliceError> {
    let len = head.len() / 4 * 3;
    if head.len().is_multiple_of(4)
        && let Some(dst) = out.get_mut(..len)
        && base64_simd::STANDARD
            .decode(head, base64_simd::Out::from_slice(dst))
            .is_ok_and(|d| d.len() == len)
    {
        return Ok(len);
    }
    BASE64.decode_slice(head, out)
}

/// Decodes base64 text holding exactly `n` little-endian `T`s into a `Vec<T>`.
fn decode_base64_into<T: bytemuck::Pod>(
    text: &str,
    n: usize,
    from_le: impl Fn(T) -> T,
) -> Result<Vec<T>, ArrayError> {
    let mut out = vec![T::zeroed(); n];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out);
    // The last 4-character quantum carries any padding and may decode to fewer than 3 bytes,
    // so it goes through a small buffer: `decode_slice` wants room for whole groups.
    let (head, tail) = text.as_bytes().split_at(text.len().saturating_sub(4));
    let mut last = [0u8; 3];
    let decoded = decode_head(head, bytes).and_then(|written| {
        let k = BASE64.decode_slice(tail, &mut last)?;
        Ok((written, k))
    });
    match decoded {
        Ok((written, k)) if written + k == bytes.len() => {
            bytes[written..].copy_from_slice(&last[..k]);
        }
        // Decoding the whole text again words the error as it reads from the start.
        _ => {
            return Err(match BASE64.decode(text) {
                Err(e) => ArrayError::decode("base64", format!("invalid base64: {e}")),
                Ok(b) => ArrayError::decode(
                    "base64",
                    format!(
                        "buffer holds {} bytes, but shape and dtype need {}",
                        b.len(),
                        bytes.len()
                    ),
                ),
            });
        }
    }
    if cfg!(target_endian = "big") {
        for x in &mut out {
            *x = from_le(*x);
        }
    }
    Ok(out)
}

const LZ4_MAGIC: u32 = 0x184D_2204;

/// Decompresses an lz4 frame that must hold exactly `expected` bytes.
///
/// The frame's declared content size, when present, is compared first so that a forged header
/// is refused without decompressing; the output is also capped at `expected + 1` bytes and its
/// initial capacity is bounded by lz4's maximum ratio, so neither a lying header nor a huge
/// declared shape can force a large allocation.
fn lz4_decompress(bytes: &[u8], expected: usize) -> Result<Vec<u8>, String> {
    if let Some(declared) = lz4_declared_size(bytes)
        && u64::try_from(expected).ok() != Some(declared)
    {
        return Err(format!(
            "lz4 frame declares {declared} bytes, but shape and dtype need {expected}"
        ));
    }
    // lz4 cannot expand data by more than ~255x.
    let mut out = Vec::with_capacity(expected.min(bytes.len().saturating_mul(256)));
    let limit = u64::try_from(expected)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    lz4_flex::frame::FrameDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("invalid lz4 frame: {e}"))?;
    if out.len() != expected {
        let got = if out.len() > expected {
            format!("more than {expected}")
        } else {
            out.len().to_string()
        };
        return Err(format!(
            "lz4 frame holds {got} bytes, but shape and dtype need {expected}"
        ));
    }
    Ok(out)
}

/// The content size an lz4 frame header declares, if it declares one.
fn lz4_declared_size(bytes: &[u8]) -> Option<u64> {
    let magic = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let flg = *bytes.get(4)?;
    if magic != LZ4_MAGIC || flg & 0x08 == 0 {
        return None;
    }
    // The content size follows FLG and BD.
    Some(u64::from_le_bytes(bytes.get(6..14)?.try_into().ok()?))
}

/// Splits `<path>[:<offset>[:<compressed_size>]]` the way tesseract-core's lazy regex does:
/// the shortest non-empty path, then up to two numeric suffixes.
fn parse_binref(buffer: &str) -> Result<(&str, u64, Option<u64>), String> {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parse = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| format!("number {s} in binref buffer is too large"))
    };
    let parts: Vec<&str> = buffer.rsplitn(3, ':').collect();
    if let [size, offset, path] = parts[..]
        && numeric(size)
        && numeric(offset)
        && !path.is_empty()
    {
        return Ok((path, parse(offset)?, Some(parse(size)?)));
    }
    if let Some((path, offset)) = buffer.rsplit_once(':')
        && numeric(offset)
        && !path.is_empty()
    {
        return Ok((path, parse(offset)?, None));
    }
    if buffer.is_empty() {
        return Err(
            "empty binref buffer; expected '<path>[:<offset>[:<compressed_size>]]'".to_owned(),
        );
    }
    Ok((buffer, 0, None))
}

/// Resolves a binref path inside `root`, refusing anything that could name a file outside it.
fn resolve_binref(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let rel_path = Path::new(rel);
    if rel_path.is_absolute()
        || rel_path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "binref path '{rel}' must be relative to the input path and must not contain '..'"
        ));
    }
    let root = root
        .canonicalize()
        .map_err(|e| format!("input path {}: {e}", root.display()))?;
    // Canonicalizing resolves symlinks, which is what the containment check must see.
    let full = root
        .join(rel_path)
        .canonicalize()
        .map_err(|e| format!("binref file '{rel}': {e}"))?;
    if !full.starts_with(&root) {
        return Err(format!(
            "binref path '{rel}' resolves outside the input path"
        ));
    }
    Ok(full)
}

fn read_binref(
    buffer: &str,
    lz4: bool,
    nbytes: usize,
    opts: &DecodeOptions,
) -> Result<Vec<u8>, String> {
    opts.check_path(buffer)?;
    let (rel, offset, compressed_size) = parse_binref(buffer)?;
    let Some(root) = &opts.binref_root else {
        return Err("binref input is not available: the server has no input path".to_owned());
    };
    let full = resolve_binref(root, rel)?;
    let mut file = File::open(&full).map_err(|e| format!("binref file '{rel}': {e}"))?;
    let file_len = file
        .metadata()
        .map_err(|e| format!("binref file '{rel}': {e}"))?
        .len();
    let to_read = if lz4 {
        compressed_size.ok_or("compressed_size is required in buffer spec when compression is set (expected format: '<path>:<offset>:<compressed_size>')")?
    } else {
        u64::try_from(nbytes).map_err(|_| "array too large".to_owned())?
    };
    // Checked against the file before allocating, so the shape cannot request more memory
    // than the file could fill.
    let end = offset
        .checked_add(to_read)
        .ok_or("binref offset and size overflow")?;
    if end > file_len {
        return Err(format!(
            "binref file '{rel}' has {file_len} bytes; cannot read {to_read} bytes at offset {offset}"
        ));
    }
    let len = usize::try_from(to_read).map_err(|_| "binref size too large".to_owned())?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("binref file '{rel}': {e}"))?;
    let mut bytes = vec![0u8; len];
    file.read_exact(&mut bytes)
        .map_err(|e| format!("binref file '{rel}': {e}"))?;
    if lz4 {
        lz4_decompress(&bytes, nbytes)
    } else {
        Ok(bytes)
    }
}

fn data_from_le_bytes(dtype: DType, bytes: &[u8], expected: usize) -> Result<Data, String> {
    if bytes.len() != expected {
        return Err(format!(
            "buffer holds {} bytes, but shape and dtype need {expected}",
            bytes.len()
        ));
    }
    macro_rules! le {
        ($t:ty, $n:literal) => {
            bytes
                .chunks_exact($n)
                .map(|c| {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(c);
                    <$t>::from_le_bytes(a)
                })
                .collect()
        };
    }
    Ok(match dtype {
        DType::Float32 => Data::Float32(le!(f32, 4)),
        DType::Float64 => Data::Float64(le!(f64, 8)),
        DType::Int32 => Data::Int32(le!(i32, 4)),
        DType::Int64 => Data::Int64(le!(i64, 8)),
        // numpy reads any nonzero byte as True.
        DType::Bool => Data::Bool(bytes.iter().map(|&b| b != 0).collect()),
    })
}

#[derive(Debug)]
enum InferError {
    NonNumeric,
    Ragged,
    Array(ArrayError),
}

#[derive(Debug, Clone, Copy)]
enum Scalar {
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX`: numpy would make it uint64.
    Big(u64),
    Float(f64),
}

/// `np.asarray` for parsed JSON: the shape comes from the first element at each depth and
/// every list must agree with it; the dtype is bool if all leaves are bools, float64 if any
/// is a float, int64 otherwise (float64 for an empty list, as numpy does).
fn infer(value: &Value) -> Result<(Vec<usize>, Data), InferError> {
    let mut shape = Vec::new();
    let mut probe = value;
    while let Value::Array(items) = probe {
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    let mut leaves = Vec::new();
    collect(value, &shape, &mut leaves)?;

    let has_float = leaves.iter().any(|s| matches!(s, Scalar::Float(_)));
    let has_int = leaves
        .iter()
        .any(|s| matches!(s, Scalar::Int(_) | Scalar::Big(_)));
    // Integers beyond int64 make numpy's dtype uint64, which only a float target takes
    // whole; float64 holds them as numpy would cast them (int targets get a range error).
    let has_big = leaves.iter().any(|s| matches!(s, Scalar::Big(_)));
    let data = if has_float || has_big || leaves.is_empty() {
        Data::Float64(
            leaves
                .iter()
                .map(|s| match *s {
                    Scalar::Bool(b) => f64::from(u8::from(b)),
                    Scalar::Int(i) => i as f64,
                    Scalar::Big(u) => u as f64,
                    Scalar::Float(f) => f,
                })
                .collect(),
        )
    } else if has_int {
        let mut out = Vec::with_capacity(leaves.len());
        for s in &leaves {
            out.push(match *s {
                Scalar::Bool(b) => i64::from(b),
                Scalar::Int(i) => i,
                Scalar::Big(u) => {
                    return Err(InferError::Array(ArrayError::out_of_range(
                        DType::Int64,
                        u.to_string(),
                    )));
                }
                Scalar::Float(_) => 0,
            });
        }
        Data::Int64(out)
    } else {
        Data::Bool(
            leaves
                .iter()
                .map(|s| matches!(s, Scalar::Bool(true)))
                .collect(),
        )
    };
    Ok((shape, data))
}

fn collect(value: &Value, shape: &[usize], out: &mut Vec<Scalar>) -> Result<(), InferError> {
    match (value, shape.split_first()) {
        (Value::Array(items), Some((&n, rest))) => {
            if items.len() != n {
                return Err(InferError::Ragged);
            }
            items.iter().try_for_each(|item| collect(item, rest, out))
        }
        (Value::Array(_), None) => Err(InferError::Ragged),
        (leaf, None) => {
            out.push(scalar(leaf)?);
            Ok(())
        }
        // A scalar where a list was expected: ragged if numeric, non-numeric otherwise.
        (leaf, Some(_)) => Err(match scalar(leaf) {
            Ok(_) => InferError::Ragged,
            Err(e) => e,
        }),
    }
}

fn scalar(value: &Value) -> Result<Scalar, InferError> {
    match value {
        Value::Bool(b) => Ok(Scalar::Bool(*b)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(Scalar::Int(i))
            } else if let Some(u) = n.as_u64() {
                Ok(Scalar::Big(u))
            } else {
                n.as_f64().map(Scalar::Float).ok_or(InferError::NonNumeric)
            }
        }
        // NaN and ±Infinity, which Python's JSON parser accepts (see `nonfinite`).
        Value::String(s) => marker_value(s)
            .map(Scalar::Float)
            .ok_or(InferError::NonNumeric),
        _ => Err(InferError::NonNumeric),
    }
}

// ---------------------------------------------------------------------------------------------
// Casting and broadcasting
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CastMode {
    /// numpy `astype` as tesseract-core's `_astype_checked` guards it: anything goes to bool.
    Unsafe,
    /// numpy "same_kind": nothing but bool goes to bool.
    SameKind,
}

/// Casts to `to` following tesseract-core's checked same_kind casting.
///
/// bool casts to anything; ints cast to ints when every value fits and to floats always;
/// float64 casts to float32 unless a finite value overflows; floats cast to ints only when
/// every value is integral and fits; nothing but bool casts to bool.
///
/// # Errors
/// `array_dtype_mismatch`, `array_expected_integer` or `array_value_out_of_range`.
pub fn cast(t: Tensor, to: DType) -> Result<Tensor, ArrayError> {
    if t.dtype() == to {
        return Ok(t);
    }
    let (shape, data) = t.into_parts();
    let data = convert(data, to, CastMode::SameKind)?;
    Tensor::new(shape, data).map_err(|e| ArrayError::structure(e.to_string()))
}

fn int_to_i32(v: &[i64]) -> Result<Vec<i32>, ArrayError> {
    v.iter()
        .map(|&x| {
            i32::try_from(x).map_err(|_| ArrayError::out_of_range(DType::Int32, x.to_string()))
        })
        .collect()
}

fn float_to_int<T>(
    v: &[f64],
    to: DType,
    lo: f64,
    hi_exclusive: f64,
    conv: impl Fn(f64) -> T,
) -> Result<Vec<T>, ArrayError> {
    if v.iter().any(|x| !x.is_finite() || x.fract() != 0.0) {
        return Err(ArrayError::expected_integer());
    }
    if let Some(&x) = v.iter().find(|&&x| x < lo || x >= hi_exclusive) {
        return Err(ArrayError::out_of_range(to, py_float(x)));
    }
    Ok(v.iter().map(|&x| conv(x)).collect())
}

fn convert(data: Data, to: DType, mode: CastMode) -> Result<Data, ArrayError> {
    let from = data.dtype();
    if from == to {
        return Ok(data);
    }
    if to == DType::Bool && mode == CastMode::SameKind {
        return Err(ArrayError::dtype_mismatch(from.name(), to));
    }
    // Bounds as f64: 2^31 and 2^63 are exact, so `< hi` is the precise range test.
    const I32_LO: f64 = -2_147_483_648.0;
    const I32_HI: f64 = 2_147_483_648.0;
    const I64_LO: f64 = -9_223_372_036_854_775_808.0;
    const I64_HI: f64 = 9_223_372_036_854_775_808.0;
    Ok(match (data, to) {
        (Data::Bool(v), _) => {
            let ones: Vec<f64> = v.iter().map(|&b| f64::from(u8::from(b))).collect();
            Data::from_f64(to, &ones)
        }
        (Data::Int32(v), DType::Int64) => Data::Int64(v.into_iter().map(i64::from).collect()),
        (Data::Int32(v), DType::Float32) => {
            Data::Float32(v.into_iter().map(|x| x as f32).collect())
        }
        (Data::Int32(v), DType::Float64) => Data::Float64(v.into_iter().map(f64::from).collect()),
        (Data::Int32(v), DType::Bool) => Data::Bool(v.into_iter().map(|x| x != 0).collect()),
        (Data::Int64(v), DType::Int32) => Data::Int32(int_to_i32(&v)?),
        (Data::Int64(v), DType::Float32) => {
            Data::Float32(v.into_iter().map(|x| x as f32).collect())
        }
        (Data::Int64(v), DType::Float64) => {
            Data::Float64(v.into_iter().map(|x| x as f64).collect())
        }
        (Data::Int64(v), DType::Bool) => Data::Bool(v.into_iter().map(|x| x != 0).collect()),
        (Data::Float32(v), DType::Float64) => Data::Float64(v.into_iter().map(f64::from).collect()),
        (Data::Float64(v), DType::Float32) => {
            if let Some(&x) = v
                .iter()
                .find(|x| x.is_finite() && !(**x as f32).is_finite())
            {
                return Err(ArrayError::out_of_range(to, py_float(x)));
            }
            Data::Float32(v.into_iter().map(|x| x as f32).collect())
        }
        (Data::Float32(v), DType::Int32 | DType::Int64) => {
            let wide: Vec<f64> = v.into_iter().map(f64::from).collect();
            convert(Data::Float64(wide), to, mode)?
        }
        (Data::Float64(v), DType::Int32) => {
            Data::Int32(float_to_int(&v, to, I32_LO, I32_HI, |x| x as i32)?)
        }
        (Data::Float64(v), DType::Int64) => {
            Data::Int64(float_to_int(&v, to, I64_LO, I64_HI, |x| x as i64)?)
        }
        // numpy's astype: NaN is truthy.
        (Data::Float32(v), DType::Bool) => Data::Bool(v.into_iter().map(|x| x != 0.0).collect()),
        (Data::Float64(v), DType::Bool) => Data::Bool(v.into_iter().map(|x| x != 0.0).collect()),
        // Same-dtype pairs returned early above.
        (data, _) => data,
    })
}

/// numpy broadcasting restricted to equal ranks: each dimension must already match or be 1.
/// Returns `None` when the shapes are incompatible or the target overflows `usize`.
pub fn broadcast_to(t: Tensor, shape: &[usize]) -> Option<Tensor> {
    if t.shape() == shape {
        return Some(t);
    }
    let src = t.shape();
    if src.len() != shape.len() || src.iter().zip(shape).any(|(&s, &d)| s != d && s != 1) {
        return None;
    }
    let n = checked_numel(shape)?;
    // Source strides, zero along broadcast axes.
    let mut strides = vec![0usize; shape.len()];
    let mut acc = 1usize;
    for ax in (0..shape.len()).rev() {
        strides[ax] = if src[ax] == 1 { 0 } else { acc };
        acc = acc.saturating_mul(src[ax]);
    }
    let data = match t.data() {
        Data::Float32(v) => Data::Float32(gather_broadcast(v, n, shape, &strides)?),
        Data::Float64(v) => Data::Float64(gather_broadcast(v, n, shape, &strides)?),
        Data::Int32(v) => Data::Int32(gather_broadcast(v, n, shape, &strides)?),
        Data::Int64(v) => Data::Int64(gather_broadcast(v, n, shape, &strides)?),
        Data::Bool(v) => Data::Bool(gather_broadcast(v, n, shape, &strides)?),
    };
    Tensor::new(shape.to_vec(), data).ok()
}

/// Walks the `n` elements of `shape` in C order, reading `v` at the offset `strides` give.
/// Offsets are computed on the fly: an index vector would double the memory of a broadcast.
fn gather_broadcast<T: Copy>(
    v: &[T],
    n: usize,
    shape: &[usize],
    strides: &[usize],
) -> Option<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(n).ok()?;
    let mut counter = vec![0usize; shape.len()];
    let mut offset = 0usize;
    for _ in 0..n {
        out.push(*v.get(offset)?);
        for ax in (0..shape.len()).rev() {
            counter[ax] += 1;
            offset += strides[ax];
            if counter[ax] < shape[ax] {
                break;
            }
            offset -= strides[ax] * counter[ax];
            counter[ax] = 0;
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// The response array format (tesseract-core's `json` and `json+base64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Nested JSON lists.
    Json,
    /// Little-endian C-order bytes in standard base64.
    JsonBase64,
}

/// Compression of base64 buffers. JSON buffers are never compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain bytes.
    #[default]
    None,
    /// An lz4 frame, as `lz4.frame.compress` writes it.
    Lz4,
}

/// Encodes a response array as tesseract-core does:
/// `{"object_type":"array","shape":[..],"dtype":"..","data":{"buffer":..,"encoding":..}}`.
///
/// JSON buffers are nested lists (a bare value for a scalar) with NaN/±Inf as `null` and
/// float32 written as its exact f64 value, like numpy's `tolist`. `compression` only applies
/// to base64.
pub fn encode_array(t: &Tensor, format: OutputFormat, compression: Compression) -> Value {
    let data = match format {
        OutputFormat::Json => json!({ "buffer": json_buffer(t), "encoding": "json" }),
        OutputFormat::JsonBase64 => match compression {
            Compression::None => {
                json!({ "buffer": base64_le(t.data()), "encoding": "base64" })
            }
            // Compressing into a Vec cannot fail in practice; should it ever, the plain
            // encoding is still a correct answer every client can read.
            Compression::Lz4 => match lz4_compress(&le_bytes(t.data())) {
                Ok(c) => {
                    json!({ "buffer": base64_simd::STANDARD.encode_to_string(c), "encoding": "base64", "compression": "lz4" })
                }
                Err(_) => json!({ "buffer": base64_le(t.data()), "encoding": "base64" }),
            },
        },
    };
    json!({
        "object_type": "array",
        "shape": t.shape(),
        "dtype": t.dtype().name(),
        "data": data,
    })
}

/// An array's shape and dtype as abstract_eval returns them: `{"shape":[..],"dtype":".."}`.
pub fn encode_abstract(sd: &ShapeDType) -> Value {
    json!({ "shape": sd.shape, "dtype": sd.dtype.name() })
}

/// Python's `lz4.frame.compress` defaults: independent 64 KiB blocks, content size stored,
/// no checksums.
fn lz4_compress(bytes: &[u8]) -> Result<Vec<u8>, lz4_flex::frame::Error> {
    let info = lz4_flex::frame::FrameInfo::new()
        .content_size(u64::try_from(bytes.len()).ok())
        .block_size(lz4_flex::frame::BlockSize::Max64KB)
        .block_mode(lz4_flex::frame::BlockMode::Independent);
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    enc.write_all(bytes)?;
    enc.finish()
}

/// Base64 of the data's little-endian bytes.
fn base64_le(data: &Data) -> String {
    let mut out = Vec::new();
    append_base64_le(data, &mut out);
    // The base64 alphabet is ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the base64 of the data's little-endian bytes to `out`. On a little-endian host
/// those bytes are the slice itself, encoded in one SIMD pass (`base64-simd`: about 4× the
/// `base64` crate on a 10⁶-element answer); elsewhere a stack-sized chunk at a time, so a
/// multi-megabyte tensor is not first copied into a byte vector of its own.
fn append_base64_le(data: &Data, out: &mut Vec<u8>) {
    // A multiple of 3 bytes for every element size, so no chunk but the last is padded.
    const CHUNK_ELEMS: usize = 3 * 1024;
    fn chunked<T: Copy, const N: usize>(v: &[T], out: &mut Vec<u8>, bytes: impl Fn(T) -> [u8; N]) {
        out.reserve(base64::encoded_len(v.len() * N, true).unwrap_or_default());
        let mut buf = Vec::with_capacity(CHUNK_ELEMS * N);
        for chunk in v.chunks(CHUNK_ELEMS) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|&x| bytes(x)));
            base64_simd::STANDARD.encode_append(&buf, out);
        }
    }
    fn native<T: bytemuck::NoUninit>(v: &[T], out: &mut Vec<u8>) {
        base64_simd::STANDARD.encode_append(bytemuck::cast_slice::<T, u8>(v), out);
    }
    match data {
        // One byte per element: no byte order.
        Data::Bool(v) => native(v, out),
        Data::Float32(v) if cfg!(target_endian = "little") => native(v, out),
        Data::Float64(v) if cfg!(target_endian = "little") => native(v, out),
        Data::Int32(v) if cfg!(target_endian = "little") => native(v, out),
        Data::Int64(v) if cfg!(target_endian = "little") => native(v, out),
        Data::Float32(v) => chunked(v, out, f32::to_le_bytes),
        Data::Float64(v) => chunked(v, out, f64::to_le_bytes),
        Data::Int32(v) => chunked(v, out, i32::to_le_bytes),
        Data::Int64(v) => chunked(v, out, i64::to_le_bytes),
    }
}

fn le_bytes(data: &Data) -> Vec<u8> {
    match data {
        Data::Float32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::Float64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::Int32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::Int64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
    }
}

/// A float as JSON, `null` for NaN and ±Inf as orjson writes them.
pub fn float_json(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

// Builds the nested lists straight from the tensor's slice: no flat `Vec<Value>` of every
// element first.
fn json_buffer(t: &Tensor) -> Value {
    match t.data() {
        Data::Float32(v) => nest(v, t.shape(), |&x| float_json(f64::from(x))),
        Data::Float64(v) => nest(v, t.shape(), |&x| float_json(x)),
        Data::Int32(v) => nest(v, t.shape(), |&x| Value::from(x)),
        Data::Int64(v) => nest(v, t.shape(), |&x| Value::from(x)),
        Data::Bool(v) => nest(v, t.shape(), |&x| Value::Bool(x)),
    }
}

fn nest<T>(elems: &[T], shape: &[usize], leaf: impl Fn(&T) -> Value + Copy) -> Value {
    match shape.split_first() {
        // The tensor invariant guarantees an element here.
        None => elems.first().map_or(Value::Null, leaf),
        Some((_, [])) => Value::Array(elems.iter().map(leaf).collect()),
        Some((&n, rest)) => {
            let step = elems.len().checked_div(n).unwrap_or(0);
            Value::Array(
                (0..n)
                    .map(|i| {
                        let part = elems.get(i * step..(i + 1) * step);
                        nest(part.unwrap_or_default(), rest, leaf)
                    })
                    .collect(),
            )
        }
    }
}

/// A plain leaf as response JSON: `Plain::Json` text is parsed back (kept as a string if the
/// component sent invalid JSON), and a non-finite float is `null`.
pub fn plain_to_json(plain: &Plain) -> Value {
    match plain {
        Plain::Bool(b) => Value::Bool(*b),
        Plain::Int(i) => Value::from(*i),
        Plain::Float(x) => float_json(*x),
        Plain::Text(s) => Value::String(s.clone()),
        Plain::Json(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))
        }
    }
}

/// A tree leaf as response JSON: tensors through [`encode_array`], plain values through
/// [`plain_to_json`].
pub fn leaf_to_json(leaf: &Leaf, format: OutputFormat, compression: Compression) -> Value {
    match leaf {
        Leaf::Tensor(t) => encode_array(t, format, compression),
        Leaf::Plain(p) => plain_to_json(p),
    }
}

/// An abstract leaf as abstract_eval response JSON.
pub fn abstract_leaf_to_json(leaf: &AbstractLeaf) -> Value {
    match leaf {
        AbstractLeaf::Array(sd) => encode_abstract(sd),
        AbstractLeaf::Plain(p) => plain_to_json(p),
    }
}

// ---------------------------------------------------------------------------------------------
// Tree <-> nested JSON
// ---------------------------------------------------------------------------------------------

/// A path-keyed tree that does not describe one nested value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot unflatten path {path:?}: {reason}")]
pub struct UnflattenError {
    /// The offending path.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

enum Node {
    /// Not yet known to be a leaf, object or list.
    Empty,
    Leaf(Value),
    Object(BTreeMap<String, Node>),
    List(BTreeMap<usize, Node>),
}

/// Rebuilds nested JSON from values keyed by concrete paths: `a.v` becomes `{"a":{"v":..}}`,
/// `items.[1]` an element of the list `items`, `named.{k}` the entry `k` of the object `named`.
/// Model fields and dict keys both become object keys.
///
/// # Errors
/// On an unparseable path, a path that is both a leaf and a container, a node used both as a
/// list and an object, or list indices that are not exactly `0..n`.
pub fn unflatten(tree: &BTreeMap<String, Value>) -> Result<Value, UnflattenError> {
    let mut root = Node::Empty;
    for (path, value) in tree {
        let err = |reason: &str| UnflattenError {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        let segments = tree_path::parse(path).map_err(|e| err(e.reason))?;
        insert(&mut root, &segments, value.clone()).map_err(err)?;
    }
    match root {
        Node::Empty => Ok(Value::Object(Map::new())),
        root => finish(root, &mut Vec::new()),
    }
}

fn insert(node: &mut Node, segments: &[Segment], value: Value) -> Result<(), &'static str> {
    let Some((seg, rest)) = segments.split_first() else {
        return match node {
            Node::Empty => {
                *node = Node::Leaf(value);
                Ok(())
            }
            Node::Leaf(_) => Err("the path is given twice"),
            _ => Err("the path is both a leaf and a container"),
        };
    };
    if matches!(node, Node::Empty) {
        *node = match seg {
            Segment::Index(_) => Node::List(BTreeMap::new()),
            Segment::Field(_) | Segment::Key(_) => Node::Object(BTreeMap::new()),
        };
    }
    match (node, seg) {
        (Node::Object(map), Segment::Field(k) | Segment::Key(k)) => {
            insert(map.entry(k.clone()).or_insert(Node::Empty), rest, value)
        }
        (Node::List(map), Segment::Index(i)) => {
            insert(map.entry(*i).or_insert(Node::Empty), rest, value)
        }
        (Node::Leaf(_), _) => Err("the path is both a leaf and a container"),
        _ => Err("a node is used both as a list and as an object"),
    }
}

fn finish(node: Node, at: &mut Vec<Segment>) -> Result<Value, UnflattenError> {
    match node {
        Node::Empty => Ok(Value::Null),
        Node::Leaf(v) => Ok(v),
        Node::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                at.push(Segment::Field(k.clone()));
                let v = finish(v, at)?;
                at.pop();
                out.insert(k, v);
            }
            Ok(Value::Object(out))
        }
        Node::List(map) => {
            let n = map.len();
            if map.keys().copied().ne(0..n) {
                let indices: Vec<String> = map.keys().map(usize::to_string).collect();
                return Err(UnflattenError {
                    path: tree_path::format(at),
                    reason: format!(
                        "list indices must be exactly 0..{n}, got [{}]",
                        indices.join(", ")
                    ),
                });
            }
            let mut out = Vec::with_capacity(n);
            for (i, v) in map {
                at.push(Segment::Index(i));
                out.push(finish(v, at)?);
                at.pop();
            }
            Ok(Value::Array(out))
        }
    }
}
