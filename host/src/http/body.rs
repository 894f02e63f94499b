//! Request bodies as FastAPI reads them: JSON when the content type says so (or says nothing),
//! a `missing` error when empty, and upstream's `json_invalid` error when not JSON.
//!
//! Before a body becomes a [`Value`], one allocation-free pass over its bytes checks the
//! server's nesting, value-count and key-length limits, so a small body cannot turn into a
//! huge tree (every JSON value is a node of tens of bytes) or a deep one.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

use super::error::{ApiError, loc};
use crate::codec::DecodeLimits;
use crate::schema::{Loc, ValidationError};

/// Whether a `Content-Type` means JSON: `application/json` or `application/*+json`, with any
/// parameters. A missing header does not: FastAPI's `strict_content_type` (on by default)
/// reads such a body as bytes.
fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", sub)) => sub == "json" || sub.ends_with("+json"),
        _ => false,
    }
}

/// Python's `json` wording for the common failures, so messages read like upstream's.
fn python_message(serde_message: &str) -> &str {
    match serde_message {
        "expected value" | "expected ident" | "invalid number" | "EOF while parsing a value" => {
            "Expecting value"
        }
        "key must be a string" => "Expecting property name enclosed in double quotes",
        "expected `:`" => "Expecting ':' delimiter",
        "expected `,` or `}`"
        | "expected `,` or `]`"
        | "EOF while parsing an object"
        | "EOF while parsing a list" => "Expecting ',' delimiter",
        "EOF while parsing a string" => "Unterminated string starting at",
        "trailing characters" => "Extra data",
        other => other,
    }
}

/// The character offset Python's decoder reports: where the error was seen, or the end of
/// the text when it ran out.
fn error_position(text: &str, err: &serde_json::Error) -> usize {
    if err.classify() == serde_json::error::Category::Eof {
        return text.chars().count();
    }
    let line_start: usize = text
        .split_inclusive('\n')
        .take(err.line().saturating_sub(1))
        .map(str::len)
        .sum();
    let mut byte = (line_start + err.column().saturating_sub(1)).min(text.len());
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    text[..byte].chars().count()
}

fn json_invalid(text: &str, err: &serde_json::Error) -> ApiError {
    let full = err.to_string();
    let message = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m);
    ApiError::invalid(ValidationError {
        kind: "json_invalid".into(),
        loc: vec![Loc::from("body"), Loc::Index(error_position(text, err))],
        msg: "JSON decode error".into(),
        input: json!({}),
        ctx: Some(json!({ "error": python_message(message) })),
    })
}

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
    /// Counts one value; the error stops the parser at once.
    fn count<E: de::Error>(&self) -> Result<(), E> {
        let mut scan = self.scan.borrow_mut();
        scan.values += 1;
        let limits = scan.limits;
        let broken = if self.depth > limits.max_json_depth {
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
        self.count()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.count()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.count()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.count()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.count()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.count()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.count()?;
        let inner = || ScanValue {
            scan: self.scan,
            depth: self.depth + 1,
        };
        while seq.next_element_seed(inner())?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.count()?;
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

/// The limit `bytes` breaks, if any. Malformed JSON is not this function's concern: the
/// real parse reports it with upstream's wording.
fn broken_limit(bytes: &[u8], limits: &DecodeLimits) -> Option<String> {
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

/// Reads a request body into the value [`crate::request::handle`] validates.
///
/// A body that is not declared as JSON is handed on as a string, so validation reports
/// upstream's `model_attributes_type` at `["body"]`.
///
/// # Errors
/// `missing` for an empty JSON body, `json_invalid` for malformed JSON or JSON over the
/// nesting, value-count or key-length limits of `limits`, all 422.
pub fn parse(
    content_type: Option<&str>,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<Value, ApiError> {
    let text = String::from_utf8_lossy(bytes);
    // FastAPI looks at the content type only for a non-empty body.
    if !bytes.is_empty() && !is_json(content_type) {
        return Ok(Value::String(text.into_owned()));
    }
    // Python's JSON accepts NaN, Infinity and -Infinity; see `codec::python_tokens`.
    let bytes: &[u8] = &crate::codec::python_tokens(bytes);
    if bytes.is_empty() {
        return Err(ApiError::invalid(ValidationError::missing(
            loc(&["body"]),
            Value::Null,
        )));
    }
    if let Some(msg) = broken_limit(bytes, limits) {
        return Err(ApiError::invalid(ValidationError {
            kind: "json_invalid".into(),
            loc: loc(&["body"]),
            msg: msg.clone(),
            input: json!({}),
            ctx: Some(json!({ "error": msg })),
        }));
    }
    match serde_json::from_slice(bytes).map_err(|e| json_invalid(&text, &e))? {
        // FastAPI takes a JSON `null` body for no body at all.
        Value::Null => Err(ApiError::invalid(ValidationError::missing(
            loc(&["body"]),
            Value::Null,
        ))),
        value => Ok(value),
    }
}
