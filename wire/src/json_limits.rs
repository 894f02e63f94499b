//! The JSON limits of a request body ([`DecodeLimits::max_json_depth`],
//! [`DecodeLimits::max_json_values`], and [`DecodeLimits::max_path_bytes`] for object keys),
//! checked by one pass over the bytes that allocates nothing, before the body becomes a
//! `serde_json::Value`: every JSON value is a node of tens of bytes, so a small body could
//! otherwise turn into a huge tree, or a deep one.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::codec::DecodeLimits;

/// The first limit a body breaks, found while scanning it.
struct Scan<'a> {
    limits: &'a DecodeLimits,
    values: usize,
    broken: Option<String>,
}

/// One JSON value at `depth` (the top level is 1).
struct ScanValue<'s, 'a> {
    scan: &'s RefCell<Scan<'a>>,
    depth: usize,
}

/// An object key.
struct ScanKey<'s, 'a> {
    scan: &'s RefCell<Scan<'a>>,
}

impl ScanValue<'_, '_> {
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
}

impl<'de> DeserializeSeed<'de> for ScanValue<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScanValue<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.count(false)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.count(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.count(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.count(false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.count(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.count(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.count(true)?;
        let inner = || ScanValue {
            scan: self.scan,
            depth: self.depth + 1,
        };
        while seq.next_element_seed(inner())?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.count(true)?;
        while map.next_key_seed(ScanKey { scan: self.scan })?.is_some() {
            map.next_value_seed(ScanValue {
                scan: self.scan,
                depth: self.depth + 1,
            })?;
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ScanKey<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ScanKey<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
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
        Ok(())
    }
}

/// The first limit `bytes` breaks, as a message naming its flag, or `None`. Malformed JSON
/// is not this function's concern: the real parse reports it with its own wording.
pub fn broken_limit(bytes: &[u8], limits: &DecodeLimits) -> Option<String> {
    let scan = RefCell::new(Scan {
        limits,
        values: 0,
        broken: None,
    });
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = ScanValue {
        scan: &scan,
        depth: 1,
    }
    .deserialize(&mut de);
    scan.into_inner().broken
}
