//! Request bodies as FastAPI reads them: JSON when the content type says so (or says nothing),
//! a `missing` error when empty, and upstream's `json_invalid` error when not JSON.
//!
//! A body becomes a [`Value`] in one pass that also checks the server's nesting, value-count
//! and key-length limits ([`json_limits::parse`]), stopping at the first one broken.

use serde_json::{Value, json};
use tesseract_wire::json_limits::{self, ParseError};

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
    // FastAPI looks at the content type only for a non-empty body.
    if !bytes.is_empty() && !is_json(content_type) {
        return Ok(Value::String(String::from_utf8_lossy(bytes).into_owned()));
    }
    // Only an error message needs the body as text; a valid multi-megabyte body is not
    // scanned for it.
    let raw = bytes;
    // Python's JSON accepts NaN, Infinity and -Infinity; see `codec::python_tokens`.
    let bytes: &[u8] = &crate::codec::python_tokens(bytes);
    if bytes.is_empty() {
        return Err(ApiError::invalid(ValidationError::missing(
            loc(&["body"]),
            Value::Null,
        )));
    }
    match json_limits::parse(bytes, limits).map_err(|e| match e {
        ParseError::Limit(msg) => ApiError::invalid(ValidationError {
            kind: "json_invalid".into(),
            loc: loc(&["body"]),
            msg: msg.clone(),
            input: json!({}),
            ctx: Some(json!({ "error": msg })),
        }),
        ParseError::Json(e) => json_invalid(&String::from_utf8_lossy(raw), &e),
    })? {
        // FastAPI takes a JSON `null` body for no body at all.
        Value::Null => Err(ApiError::invalid(ValidationError::missing(
            loc(&["body"]),
            Value::Null,
        ))),
        value => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::parse;
    use crate::codec::DecodeLimits;

    #[test]
    fn serde_jsons_raw_value_marker_is_an_ordinary_key() {
        // axum turns on serde_json's `raw_value` feature in this crate's build, under which
        // `from_slice::<Value>` parses this key's string as a second JSON document, past every
        // limit: eight values here, against a limit of four.
        let key = "$serde_json::private::RawValue";
        let body = json!({ key: "[0, 0, 0, 0, 0, 0, 0, 0]" });
        let limits = DecodeLimits {
            max_json_values: 4,
            ..DecodeLimits::default()
        };
        let parsed = parse(
            Some("application/json"),
            body.to_string().as_bytes(),
            &limits,
        );
        assert_eq!(parsed.ok(), Some(body));
    }
}
