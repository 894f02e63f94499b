//! tesseract-core's tree-path syntax.
//!
//! A path names one leaf of a nested input or output tree. Segments are joined by `.`:
//! a model field is its name (`a.v`), a list index is `[i]` (`items.[1]`), and a dict key is
//! `{key}` (`named.{k1}`). Inside braces `{`, `}` and `\` are escaped with `\`, and dots belong to
//! the key. A *template* replaces each index with `[]` and each key with `{}`: it is what a schema
//! declares (`items.[]`, `named.{}`).

use std::fmt;

/// One step into a tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A model attribute.
    Field(String),
    /// A list or tuple element.
    Index(usize),
    /// A dict entry.
    Key(String),
}

/// A path that does not follow the syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {path:?}: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: &'static str,
}

/// Parses a concrete path such as `named.{we.ird\{\}}` into segments.
///
/// # Errors
/// On an empty path or segment, an unterminated or badly escaped key, or a bad index.
pub fn parse(path: &str) -> Result<Vec<Segment>, PathError> {
    let err = |reason| PathError {
        path: path.to_owned(),
        reason,
    };
    if path.is_empty() {
        return Err(err("a path cannot be empty"));
    }
    let mut segments = Vec::new();
    let mut chars = path.chars().peekable();
    loop {
        match chars.peek() {
            Some('{') => {
                chars.next();
                let mut key = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some(c @ ('{' | '}' | '\\')) => key.push(c),
                            _ => {
                                return Err(err(
                                    "inside `{...}` only `{`, `}` and `\\` may follow `\\`",
                                ));
                            }
                        },
                        Some('}') => break,
                        Some('{') => return Err(err("an unescaped `{` inside a key")),
                        Some(c) => key.push(c),
                        None => return Err(err("a `{` without its closing `}`")),
                    }
                }
                if key.is_empty() {
                    return Err(err("a dict key cannot be empty"));
                }
                segments.push(Segment::Key(key));
            }
            Some('[') => {
                chars.next();
                let mut digits = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    digits.push(c);
                }
                if !closed {
                    return Err(err("a `[` without its closing `]`"));
                }
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("a list index must be `[` digits `]`"));
                }
                let index = digits
                    .parse()
                    .map_err(|_| err("a list index is too large"))?;
                segments.push(Segment::Index(index));
            }
            Some(_) => {
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    if matches!(c, '{' | '}' | '[' | ']') {
                        return Err(err("a field name cannot contain brackets or braces"));
                    }
                    name.push(c);
                    chars.next();
                }
                if name.is_empty() {
                    return Err(err("empty segment"));
                }
                segments.push(Segment::Field(name));
            }
            None => return Err(err("a path cannot end with `.`")),
        }
        match chars.next() {
            None => return Ok(segments),
            Some('.') => {}
            Some(_) => return Err(err("segments must be separated by `.`")),
        }
    }
}

/// Writes segments back in canonical form; `parse(&format(s)) == s`.
pub fn format(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match s {
            Segment::Field(name) => out.push_str(name),
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
            Segment::Key(k) => {
                out.push('{');
                out.push_str(&escape_key(k));
                out.push('}');
            }
        }
    }
    out
}

/// Escapes a dict key for use inside `{...}`.
pub fn escape_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        if matches!(c, '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The template a concrete path instantiates: indices become `[]`, keys `{}`.
pub fn template(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match s {
            Segment::Field(name) => out.push_str(name),
            Segment::Index(_) => out.push_str("[]"),
            Segment::Key(_) => out.push_str("{}"),
        }
    }
    out
}

/// One segment of a template: a field name, `[]` or `{}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TemplateSegment {
    Field(String),
    AnyIndex,
    AnyKey,
}

/// Splits a template such as `items.[]` or `named.{}.v`.
pub fn parse_template(template: &str) -> Vec<TemplateSegment> {
    template
        .split('.')
        .map(|s| match s {
            "[]" => TemplateSegment::AnyIndex,
            "{}" => TemplateSegment::AnyKey,
            name => TemplateSegment::Field(name.to_owned()),
        })
        .collect()
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(std::slice::from_ref(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, expected: &[Segment], expected_template: &str) {
        let parsed = parse(path).expect("valid path");
        assert_eq!(parsed, expected);
        assert_eq!(format(&parsed), path);
        assert_eq!(template(&parsed), expected_template);
    }

    #[test]
    fn parses_tesseract_core_examples() {
        use Segment::*;
        check("a.v", &[Field("a".into()), Field("v".into())], "a.v");
        check("items.[1]", &[Field("items".into()), Index(1)], "items.[]");
        check(
            "named.{k1}",
            &[Field("named".into()), Key("k1".into())],
            "named.{}",
        );
        check(
            r"named.{we.ird\{\}}",
            &[Field("named".into()), Key("we.ird{}".into())],
            "named.{}",
        );
        check(
            r"d.{a\\b}.x",
            &[Field("d".into()), Key(r"a\b".into()), Field("x".into())],
            "d.{}.x",
        );
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in [
            "", "a.", ".a", "a..b", "a.[x]", "a.[]", "a.{}", "a.{k", r"a.{k\q}", "a.{k}b", "a[1]",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        // Each refusal says why.
        for (bad, reason) in [
            ("a.[1", "a `[` without its closing `]`"),
            ("[3", "a `[` without its closing `]`"),
            ("a.{k}.[2", "a `[` without its closing `]`"),
            ("a.[+1]", "a list index must be `[` digits `]`"),
            ("a.[1x]", "a list index must be `[` digits `]`"),
            ("a.{k", "a `{` without its closing `}`"),
        ] {
            assert_eq!(parse(bad).map_err(|e| e.reason), Err(reason), "{bad:?}");
        }
        assert_eq!(
            parse("a.[12]").map_err(|e| e.reason),
            Ok(vec![Segment::Field("a".into()), Segment::Index(12)])
        );
    }

    #[test]
    fn templates_split_into_segments() {
        assert_eq!(
            parse_template("items.[].{}"),
            vec![
                TemplateSegment::Field("items".into()),
                TemplateSegment::AnyIndex,
                TemplateSegment::AnyKey
            ]
        );
    }
}
