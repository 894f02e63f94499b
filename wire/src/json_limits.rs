//! The JSON limits of a request body ([`DecodeLimits::max_json_depth`],
//! [`DecodeLimits::max_json_values`], and [`DecodeLimits::max_path_bytes`] for object keys),
//! checked while the body becomes a `serde_json::Value`: every JSON value is a node of tens
//! of bytes, so a small body could otherwise turn into a huge tree, or a deep one.
//!
//! [`parse`] checks and builds in one pass, and stops at the first limit broken, so it never
//! builds more than `max_json_values` nodes. A body that might break the value limit itself
//! is first scanned by a dry run that allocates nothing, so the most common refusal of a
//! hostile body costs no tree at all. Large bodies of base64 arrays hold few values and skip
//! the dry run: serde_json's scan of their multi-megabyte strings is the costliest part of
//! parsing them, and a second pass paid it twice.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::codec::DecodeLimits;

/// The first limit a body breaks, found while scanning it.
struct Scan<'a> {
    limits: &'a DecodeLimits,
    values: usize,
    broken: Option<String>,
}

/// One JSON value at `depth` (the top level is 1). With `BUILD` false it is a dry run: every
/// value comes out as `null` and nothing is allocated.
struct ScanValue<'s, 'a, const BUILD: bool> {
    scan: &'s RefCell<Scan<'a>>,
    depth: usize,
}

/// An object key (empty in a dry run).
struct ScanKey<'s, 'a, const BUILD: bool> {
    scan: &'s RefCell<Scan<'a>>,
}

impl<const BUILD: bool> ScanValue<'_, '_, BUILD> {
    /// Counts one value (a list or object when `container`: those are what nest); the error
    /// stops the parser at once.
    fn count<E: de::Error>(&self, container: bool) -> Result<(), E> {
        let mut scan = self.scan.borrow_mut();
        scan.values += 1;
        let limits = scan.limits;
        let broken = if container && self.depth > limits.max_json_depth {
            Some(format!(
                "JSON nested deeper than the server's limit of {} levels (--max-json-depth)",
                limits.max_json_depth
            ))
        } else if scan.values > limits.max_json_values {
            Some(format!(
                "JSON body holds more than the server's limit of {} values (--max-json-values); send large arrays base64-encoded",
                limits.max_json_values
            ))
        } else {
            None
        };
        match broken {
            Some(msg) => {
                scan.broken = Some(msg.clone());
                Err(E::custom(msg))
            }
            None => Ok(()),
        }
    }

    fn leaf(value: impl FnOnce() -> Value) -> Value {
        if BUILD { value() } else { Value::Null }
    }
}

impl<'de, const BUILD: bool> DeserializeSeed<'de> for ScanValue<'_, '_, BUILD> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

// Builds what serde_json's own `Value` visitor builds, node for node (a property test
// compares the two), so the rest of the server sees the same value either way.
impl<'de, const BUILD: bool> Visitor<'de> for ScanValue<'_, '_, BUILD> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        self.count(false)?;
        Ok(Self::leaf(|| Value::Bool(b)))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        self.count(false)?;
        Ok(Self::leaf(|| Value::Number(n.into())))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        self.count(false)?;
        Ok(Self::leaf(|| Value::Number(n.into())))
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Value, E> {
        self.count(false)?;
        Ok(Self::leaf(|| {
            Number::from_f64(x).map_or(Value::Null, Value::Number)
        }))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.count(false)?;
        Ok(Self::leaf(|| Value::String(s.to_owned())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        self.count(false)?;
        Ok(Self::leaf(|| Value::String(s)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.count(false)?;
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.count(true)?;
        let inner = || ScanValue::<BUILD> {
            scan: self.scan,
            depth: self.depth + 1,
        };
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner())? {
            if BUILD {
                items.push(item);
            }
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.count(true)?;
        let mut object = Map::new();
        while let Some(key) = map.next_key_seed(ScanKey::<BUILD> { scan: self.scan })? {
            let value = map.next_value_seed(ScanValue::<BUILD> {
                scan: self.scan,
                depth: self.depth + 1,
            })?;
            if BUILD {
                // A repeated key keeps its first place and its last value, as in serde_json.
                object.insert(key, value);
            }
        }
        Ok(Value::Object(object))
    }
}

impl<'de, const BUILD: bool> DeserializeSeed<'de> for ScanKey<'_, '_, BUILD> {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, const BUILD: bool> Visitor<'de> for ScanKey<'_, '_, BUILD> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<String, E> {
        let mut scan = self.scan.borrow_mut();
        let max = scan.limits.max_path_bytes;
        if key.len() > max {
            let msg = format!(
                "JSON object key of {} bytes is longer than the server's limit of {max} bytes (--max-path-length)",
                key.len()
            );
            scan.broken = Some(msg.clone());
            return Err(E::custom(msg));
        }
        Ok(if BUILD { key.to_owned() } else { String::new() })
    }
}

/// Why a body did not become a value.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// It breaks one of the server's limits; the message names the flag.
    #[error("{0}")]
    Limit(String),
    /// It is not JSON: serde_json's error, with its position.
    #[error(transparent)]
    Json(serde_json::Error),
}

/// Parses one JSON document, as `serde_json::from_slice::<Value>` does, but stops at the first
/// limit of `limits` it breaks. Whichever comes first, a broken limit or a syntax error, is
/// the one reported.
///
/// One difference, on purpose: with serde_json's `raw_value` feature on (axum turns it on in
/// the server's build), `from_slice` reads an object whose key is serde_json's private
/// raw-value marker as a second, unchecked JSON document. Here it is an ordinary key, as in
/// Python.
///
/// # Errors
/// [`ParseError::Limit`] or [`ParseError::Json`].
pub fn parse(bytes: &[u8], limits: &DecodeLimits) -> Result<Value, ParseError> {
    // Every value takes at least a byte, so a body shorter than the limit cannot break it and
    // is not scanned for the bound.
    if bytes.len() > limits.max_json_values && most_values(bytes) > limits.max_json_values {
        run::<false>(bytes, limits)?;
    }
    run::<true>(bytes, limits)
}

/// An upper bound on the values `bytes` can hold: each one is the document itself or follows
/// a `[`, `,` or `:`. Base64 strings hold none of those bytes, so for a body of base64 arrays
/// the bound is close to the truth.
fn most_values(bytes: &[u8]) -> usize {
    1 + memchr::memchr3_iter(b'[', b',', b':', bytes).count()
}

/// One pass of the parser; with `BUILD` false, a dry run that allocates nothing.
fn run<const BUILD: bool>(bytes: &[u8], limits: &DecodeLimits) -> Result<Value, ParseError> {
    let scan = RefCell::new(Scan {
        limits,
        values: 0,
        broken: None,
    });
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = ScanValue::<BUILD> {
        scan: &scan,
        depth: 1,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    match (parsed, scan.into_inner().broken) {
        (_, Some(msg)) => Err(ParseError::Limit(msg)),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(ParseError::Json(e)),
    }
}

/// The first limit `bytes` breaks, as a message naming its flag, or `None` (also when the
/// bytes are not JSON before they break one). A dry run: builds nothing.
pub fn broken_limit(bytes: &[u8], limits: &DecodeLimits) -> Option<String> {
    match run::<false>(bytes, limits) {
        Err(ParseError::Limit(msg)) => Some(msg),
        _ => None,
    }
}
