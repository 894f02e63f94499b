//! Python's JSON numbers that JSON itself lacks.
//!
//! tesseract-core parses request bodies with Python's `json`, which accepts the tokens `NaN`,
//! `Infinity` and `-Infinity` and reads a number too large for a float as ±inf. serde_json
//! refuses all of these, and its `Value` cannot hold a non-finite number. So before parsing,
//! [`python_tokens`] rewrites each such token outside strings into a marker string that no
//! client sends (it starts with U+0000), and the array decoder reads markers back as floats
//! ([`marker_value`]). Anywhere else a marker is just a string, and fails validation as one.
//! Integer literals beyond 64 bits become such strings too (see [`python_tokens`]).

use std::borrow::Cow;

use serde::{Serialize, Serializer};
use serde_json::Value;

const NAN: &str = "\u{0}NaN";
const INF: &str = "\u{0}Infinity";
const NEG_INF: &str = "\u{0}-Infinity";

/// The float a marker stands for.
pub fn marker_value(s: &str) -> Option<f64> {
    match s {
        NAN => Some(f64::NAN),
        INF => Some(f64::INFINITY),
        NEG_INF => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// The number any marker [`python_tokens`] made stands for: a non-finite float, or a big
/// integer as the nearest float. Arrays take only the former ([`marker_value`]): upstream
/// keeps a big integer exact, which makes its array non-numeric.
pub fn marker_number(s: &str) -> Option<f64> {
    marker_value(s).or_else(|| {
        let digits = s.strip_prefix('\u{0}')?;
        if is_integer_literal(digits.as_bytes()) {
            digits.parse().ok()
        } else {
            None
        }
    })
}

/// Whether `s` is a marker [`python_tokens`] made: a non-finite float or a big integer.
pub fn is_marker(s: &str) -> bool {
    marker_number(s).is_some()
}

/// Serializes a request value for an error's echo, markers back as numbers: a non-finite
/// float as `null`, as answers write it (upstream's encoder refuses it and answers 500), and a
/// big integer as the nearest float.
pub fn serialize_echo<S: Serializer>(value: &Value, serializer: S) -> Result<S::Ok, S::Error> {
    Echo(value).serialize(serializer)
}

struct Echo<'a>(&'a Value);

impl Serialize for Echo<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::String(s) => match marker_number(s) {
                Some(x) if x.is_finite() => serializer.serialize_f64(x),
                Some(_) => serializer.serialize_unit(),
                None => serializer.serialize_str(s),
            },
            Value::Array(items) => serializer.collect_seq(items.iter().map(Echo)),
            Value::Object(map) => serializer.collect_map(map.iter().map(|(k, v)| (k, Echo(v)))),
            other => other.serialize(serializer),
        }
    }
}

fn marker_json(x: f64) -> &'static str {
    if x.is_nan() {
        "\"\\u0000NaN\""
    } else if x > 0.0 {
        "\"\\u0000Infinity\""
    } else {
        "\"\\u0000-Infinity\""
    }
}

/// Rewrites Python-only number tokens outside strings into marker strings; borrows `bytes`
/// unchanged when there are none (the usual case). Malformed JSON stays malformed.
pub fn python_tokens(bytes: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0; // bytes[..copied] are in `out` already
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip the string, escapes included, a quote or backslash at a time: request
                // bodies are mostly long base64 strings.
                i += 1;
                loop {
                    let rest = bytes.get(i..).unwrap_or_default();
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(k) if rest[k] == b'\\' => i += k + 2,
                        Some(k) => {
                            i += k + 1;
                            break;
                        }
                        None => {
                            i = bytes.len();
                            break;
                        }
                    }
                }
            }
            b'N' | b'I' | b'-' | b'0'..=b'9' => {
                let start = i;
                let token_end = bytes[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')))
                    .map_or(bytes.len(), |n| i + n);
                let token = &bytes[start..token_end];
                // A token before `:` stands where a key must be a string: left alone, the
                // body stays malformed, as Python's parser finds it.
                let next = bytes[token_end..].iter().find(|b| !b.is_ascii_whitespace());
                if next == Some(&b':') {
                    i = token_end.max(start + 1);
                    continue;
                }
                // An integer literal beyond 64 bits: Python keeps it exact and numpy makes it
                // an object array, which serde_json's f64 would hide. A marker keeps it
                // non-numeric.
                if is_integer_literal(token)
                    && std::str::from_utf8(token)
                        .is_ok_and(|t| t.parse::<i64>().is_err() && t.parse::<u64>().is_err())
                {
                    let buf = out.get_or_insert_with(|| Vec::with_capacity(bytes.len() + 16));
                    buf.extend_from_slice(&bytes[copied..start]);
                    buf.extend_from_slice(b"\"\\u0000");
                    buf.extend_from_slice(token);
                    buf.extend_from_slice(b"\"");
                    copied = token_end;
                    i = token_end;
                    continue;
                }
                let value = match token {
                    b"NaN" => Some(f64::NAN),
                    b"Infinity" => Some(f64::INFINITY),
                    b"-Infinity" => Some(f64::NEG_INFINITY),
                    // A float literal too large for a float: Python reads it as ±inf (an
                    // integer literal stays an exact int there, so it is left alone).
                    _ => std::str::from_utf8(token)
                        .ok()
                        .filter(|t| t.contains(['e', 'E', '.']))
                        .and_then(|t| t.parse::<f64>().ok())
                        .filter(|x| x.is_infinite()),
                };
                if let Some(x) = value {
                    let buf = out.get_or_insert_with(|| Vec::with_capacity(bytes.len() + 16));
                    buf.extend_from_slice(&bytes[copied..start]);
                    buf.extend_from_slice(marker_json(x).as_bytes());
                    copied = token_end;
                }
                i = token_end.max(start + 1);
            }
            _ => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(bytes),
        Some(mut buf) => {
            buf.extend_from_slice(&bytes[copied.min(bytes.len())..]);
            Cow::Owned(buf)
        }
    }
}

/// A JSON integer literal, `-?(0|[1-9][0-9]*)`. Only these become big-integer markers: a
/// token such as `1-2` is malformed JSON and must stay malformed.
fn is_integer_literal(token: &[u8]) -> bool {
    let digits = token.strip_prefix(b"-").unwrap_or(token);
    match digits {
        [] => false,
        [b'0', rest @ ..] => rest.is_empty(),
        _ => digits.iter().all(u8::is_ascii_digit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn rewrite(text: &str) -> String {
        String::from_utf8(python_tokens(text.as_bytes()).into_owned()).expect("utf-8")
    }

    #[test]
    fn plain_json_is_borrowed() {
        let text = br#"{"a": [1, -2.5e3, 1e308], "NaN": "Infinity -Infinity"}"#;
        assert!(matches!(python_tokens(text), Cow::Borrowed(_)));
    }

    #[test]
    fn tokens_become_markers_outside_strings() {
        let text =
            rewrite(r#"{"x": NaN, "y": [Infinity, -Infinity, 2e400, -1E999], "s": "NaN\"NaN"}"#);
        let v: Value = serde_json::from_str(&text).expect("valid JSON after rewriting");
        assert_eq!(
            marker_value(v["x"].as_str().expect("marker")).map(f64::is_nan),
            Some(true)
        );
        let ys: Vec<f64> = v["y"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|m| m.as_str().and_then(marker_value))
            .collect();
        assert_eq!(
            ys,
            [
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY
            ]
        );
        assert_eq!(v["s"], json!("NaN\"NaN"));
    }

    #[test]
    fn integers_beyond_64_bits_become_non_numeric_markers() {
        let v: Value = serde_json::from_str(&rewrite(
            "[1180591620717411303424, 18446744073709551615, -9223372036854775808]",
        ))
        .expect("valid JSON after rewriting");
        assert_eq!(v[0], json!("\u{0}1180591620717411303424"));
        assert_eq!(marker_value(v[0].as_str().expect("marker")), None);
        assert_eq!(v[1], json!(18446744073709551615u64));
        assert_eq!(v[2], json!(i64::MIN));
    }

    #[test]
    fn strings_are_skipped_whole_whatever_they_escape() {
        let text = r#"["a\"NaN\\", NaN, "Infinity\\\"", -Infinity, "unterminated NaN"#;
        let out = rewrite(text);
        assert_eq!(
            out,
            r#"["a\"NaN\\", "\u0000NaN", "Infinity\\\"", "\u0000-Infinity", "unterminated NaN"#
        );
        // A backslash as the very last byte must not run past the end.
        assert_eq!(rewrite("\"x\\"), "\"x\\");
    }

    #[test]
    fn malformed_json_stays_malformed() {
        assert!(serde_json::from_str::<Value>(&rewrite("{\"x\": NaNa}")).is_err());
        assert!(serde_json::from_str::<Value>(&rewrite("[Infinity")).is_err());
        // Digits and dashes that are no integer literal are not big integers either: they
        // used to become marker strings and turn invalid JSON valid.
        for bad in [
            "{\"x\": 1-2}",
            "[12-3]",
            "[--5]",
            "[-]",
            "[0123456789012345678901234]",
            "{\"inputs\": {}, 12-3: 4}",
            "{\"inputs\": {NaN: 1}}",
            "{Infinity : 1}",
            "{123456789012345678901234567890: 1}",
        ] {
            assert!(
                serde_json::from_str::<Value>(&rewrite(bad)).is_err(),
                "{bad} became {}",
                rewrite(bad)
            );
        }
    }
}
