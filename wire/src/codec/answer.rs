//! Response bodies whose arrays stay tensors until the body is serialized.
//!
//! Building an answer's arrays as [`Value`]s first costs a `Value` per element for `json`
//! answers (and a copy of each base64 string): for a 10⁶-element output that was most of the
//! answer's time. An [`Answer`] is the body's JSON with a slot at each array, and
//! [`Answer::to_json_vec`] writes each array straight from its tensor's slice: plain base64 into
//! the body bytes, other encodings through [`EncodedArray`]'s `Serialize`, which makes the
//! serializer calls the `Value` would have made. The bytes are identical to serializing
//! [`encode_array`]'s value.
//!
//! Code that wants the body as a [`Value`] (tests, binref output) still has one: [`Answer`]
//! derefs to the fully encoded value, built on first use.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::OnceLock;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
use tesseract_model::path::Segment;
use tesseract_model::{Data, Tensor};

use super::{
    Compression, OutputFormat, append_base64_le, base64_le, encode_array, le_bytes, lz4_compress,
};

/// A tensor as its encoded-array object, serialized exactly as [`encode_array`]'s value is,
/// without building that value.
#[derive(Debug, Clone, Copy)]
pub struct EncodedArray<'a> {
    pub tensor: &'a Tensor,
    pub format: OutputFormat,
    pub compression: Compression,
}

impl Serialize for EncodedArray<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.tensor;
        // The key order of `encode_array`'s `json!`, which `preserve_order` keeps.
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("object_type", "array")?;
        map.serialize_entry("shape", t.shape())?;
        map.serialize_entry("dtype", t.dtype().name())?;
        map.serialize_entry("data", &DataObject(*self))?;
        map.end()
    }
}

/// The `data` member of an encoded array.
struct DataObject<'a>(EncodedArray<'a>);

impl Serialize for DataObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let EncodedArray {
            tensor: t,
            format,
            compression,
        } = self.0;
        match (format, compression) {
            (OutputFormat::Json, _) => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("buffer", &JsonBuffer(t))?;
                map.serialize_entry("encoding", "json")?;
                map.end()
            }
            (OutputFormat::JsonBase64, Compression::Lz4) => {
                match lz4_compress(&le_bytes(t.data())) {
                    Ok(c) => {
                        let mut map = s.serialize_map(Some(3))?;
                        map.serialize_entry("buffer", &base64_simd::STANDARD.encode_to_string(c))?;
                        map.serialize_entry("encoding", "base64")?;
                        map.serialize_entry("compression", "lz4")?;
                        map.end()
                    }
                    // As `encode_array`: the plain encoding is still a correct answer.
                    Err(_) => plain_base64(s, t.data()),
                }
            }
            (OutputFormat::JsonBase64, Compression::None) => plain_base64(s, t.data()),
        }
    }
}

fn plain_base64<S: Serializer>(s: S, data: &Data) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(2))?;
    map.serialize_entry("buffer", &base64_le(data))?;
    map.serialize_entry("encoding", "base64")?;
    map.end()
}

/// A tensor's elements as nested JSON lists (a bare value for a scalar), written from its
/// slice. Floats go through `serialize_f64`, as a `Value::Number` does: the same digits, and
/// `null` for NaN and ±Inf; float32 is written as its exact float64 value, like numpy's
/// `tolist`.
pub struct JsonBuffer<'a>(pub &'a Tensor);

impl Serialize for JsonBuffer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shape = self.0.shape();
        match self.0.data() {
            Data::Float32(v) => Nested(v, shape).serialize(s),
            Data::Float64(v) => Nested(v, shape).serialize(s),
            Data::Int32(v) => Nested(v, shape).serialize(s),
            Data::Int64(v) => Nested(v, shape).serialize(s),
            Data::Bool(v) => Nested(v, shape).serialize(s),
        }
    }
}

/// One element type's JSON form, as `encode_array` writes it.
trait Element: Copy {
    fn write<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error>;
}

impl Element for f32 {
    fn write<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(f64::from(self))
    }
}

impl Element for f64 {
    fn write<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self)
    }
}

impl Element for i32 {
    fn write<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(self)
    }
}

impl Element for i64 {
    fn write<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self)
    }
}

impl Element for bool {
    fn write<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(self)
    }
}

struct One<T>(T);

impl<T: Element> Serialize for One<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.write(s)
    }
}

/// `elems` in C order as lists of `shape`.
struct Nested<'a, T>(&'a [T], &'a [usize]);

impl<T: Element> Serialize for Nested<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Nested(elems, shape) = *self;
        match shape.split_first() {
            // The tensor invariant guarantees an element here.
            None => match elems.first() {
                Some(&x) => x.write(s),
                None => s.serialize_unit(),
            },
            Some((&n, [])) => {
                let mut seq = s.serialize_seq(Some(n))?;
                for &x in elems {
                    seq.serialize_element(&One(x))?;
                }
                seq.end()
            }
            Some((&n, rest)) => {
                let step = elems.len().checked_div(n).unwrap_or(0);
                let mut seq = s.serialize_seq(Some(n))?;
                for i in 0..n {
                    let part = elems.get(i * step..(i + 1) * step).unwrap_or_default();
                    seq.serialize_element(&Nested(part, rest))?;
                }
                seq.end()
            }
        }
    }
}

/// Where an answer's arrays sit in its JSON: a tree of object keys and list indices.
#[derive(Debug, Clone, Default, PartialEq)]
struct Slots {
    here: Option<Tensor>,
    keys: BTreeMap<String, Slots>,
    items: BTreeMap<usize, Slots>,
}

impl Slots {
    fn is_empty(&self) -> bool {
        self.here.is_none() && self.keys.is_empty() && self.items.is_empty()
    }

    fn array_bytes(&self) -> usize {
        let here = self
            .here
            .as_ref()
            .map_or(0, |t| t.len() * t.dtype().size_bytes());
        self.keys
            .values()
            .chain(self.items.values())
            .fold(here, |sum, s| sum.saturating_add(s.array_bytes()))
    }

    fn at(&mut self, path: &[Segment]) -> &mut Slots {
        path.iter().fold(self, |node, seg| match seg {
            Segment::Field(k) | Segment::Key(k) => node.keys.entry(k.clone()).or_default(),
            Segment::Index(i) => node.items.entry(*i).or_default(),
        })
    }
}

/// A response body: JSON with the arrays kept as tensors until it is serialized.
///
/// [`Answer::to_json_vec`] writes each array from its tensor; `Deref` gives the whole body as a
/// [`Value`] (built once, on first use). Both produce the same JSON.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    skeleton: Value,
    slots: Slots,
    format: Option<(OutputFormat, Compression)>,
    full: OnceLock<Value>,
}

impl From<Value> for Answer {
    fn from(value: Value) -> Answer {
        Answer {
            skeleton: value,
            ..Answer::default()
        }
    }
}

impl Answer {
    /// An answer of `skeleton` whose arrays, added with [`Answer::put`], are encoded in
    /// `format` with `compression`.
    pub fn new(skeleton: Value, format: OutputFormat, compression: Compression) -> Answer {
        Answer {
            skeleton,
            format: Some((format, compression)),
            ..Answer::default()
        }
    }

    /// Puts `tensor`'s encoded array at `path` (object keys and list indices from the root),
    /// in place of what the skeleton has there. The skeleton must have a value at `path`
    /// (`null` will do): an array whose place is missing is not written.
    pub fn put(&mut self, path: &[Segment], tensor: Tensor) {
        self.slots.at(path).here = Some(tensor);
        self.full = OnceLock::new();
    }

    fn encoding(&self) -> (OutputFormat, Compression) {
        self.format
            .unwrap_or((OutputFormat::JsonBase64, Compression::None))
    }

    /// The body as compact JSON, byte for byte `serde_json::to_vec` of the value it derefs to,
    /// with each plain base64 array encoded straight into the output: no string of its own, and no
    /// scan of it for characters to escape, since the base64 alphabet has none. For a
    /// 10⁶-element answer both were more of the answer's time than the encoding itself.
    ///
    /// # Errors
    /// Those of `serde_json::to_writer`, which writing to a `Vec` does not have in practice.
    pub fn to_json_vec(&self) -> serde_json::Result<Vec<u8>> {
        let (format, compression) = self.encoding();
        let mut out = Vec::new();
        write_walk(
            &mut out,
            &self.skeleton,
            Some(&self.slots),
            format,
            compression,
        )?;
        Ok(out)
    }

    /// The raw size of the arrays still kept as tensors: what encoding them will walk.
    pub fn array_bytes(&self) -> usize {
        self.slots.array_bytes()
    }

    /// The whole body as a [`Value`], its arrays encoded.
    pub fn into_value(mut self) -> Value {
        self.value_mut();
        self.skeleton
    }

    /// The whole body as a mutable [`Value`], its arrays encoded (and no longer kept as
    /// tensors).
    pub fn value_mut(&mut self) -> &mut Value {
        if !self.slots.is_empty() {
            let (format, compression) = self.encoding();
            let slots = std::mem::take(&mut self.slots);
            fill(&mut self.skeleton, &slots, format, compression);
            self.full = OnceLock::new();
        }
        &mut self.skeleton
    }
}

fn fill(value: &mut Value, slots: &Slots, format: OutputFormat, compression: Compression) {
    if let Some(t) = &slots.here {
        *value = encode_array(t, format, compression);
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, child) in &slots.keys {
                if let Some(v) = map.get_mut(k) {
                    fill(v, child, format, compression);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in &slots.items {
                if let Some(v) = items.get_mut(*i) {
                    fill(v, child, format, compression);
                }
            }
        }
        _ => {}
    }
}

impl Deref for Answer {
    type Target = Value;

    fn deref(&self) -> &Value {
        if self.slots.is_empty() {
            return &self.skeleton;
        }
        self.full.get_or_init(|| {
            let mut value = self.skeleton.clone();
            let (format, compression) = self.encoding();
            fill(&mut value, &self.slots, format, compression);
            value
        })
    }
}

impl PartialEq for Answer {
    fn eq(&self, other: &Answer) -> bool {
        **self == **other
    }
}

/// The skeleton with each slot's array in its place, as `Value`'s own `Serialize` would write
/// it with each slot filled.
fn write_walk(
    out: &mut Vec<u8>,
    value: &Value,
    slots: Option<&Slots>,
    format: OutputFormat,
    compression: Compression,
) -> serde_json::Result<()> {
    let Some(slots) = slots.filter(|s| !s.is_empty()) else {
        return serde_json::to_writer(out, value);
    };
    if let Some(tensor) = &slots.here {
        return write_array(out, tensor, format, compression);
    }
    match value {
        Value::Object(map) => {
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k)?;
                out.push(b':');
                write_walk(out, v, slots.keys.get(k), format, compression)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_walk(out, v, slots.items.get(&i), format, compression)?;
            }
            out.push(b']');
        }
        other => serde_json::to_writer(out, other)?,
    }
    Ok(())
}

/// One [`EncodedArray`]: plain base64 by hand (the key order of `encode_array`), every other
/// encoding through `Serialize`.
fn write_array(
    out: &mut Vec<u8>,
    tensor: &Tensor,
    format: OutputFormat,
    compression: Compression,
) -> serde_json::Result<()> {
    if (format, compression) != (OutputFormat::JsonBase64, Compression::None) {
        return serde_json::to_writer(
            out,
            &EncodedArray {
                tensor,
                format,
                compression,
            },
        );
    }
    out.extend_from_slice(br#"{"object_type":"array","shape":"#);
    serde_json::to_writer(&mut *out, tensor.shape())?;
    out.extend_from_slice(br#","dtype":"#);
    serde_json::to_writer(&mut *out, tensor.dtype().name())?;
    out.extend_from_slice(br#","data":{"buffer":""#);
    append_base64_le(tensor.data(), out);
    out.extend_from_slice(br#"","encoding":"base64"}}"#);
    Ok(())
}
