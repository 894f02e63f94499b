//! The decode limits: each refusal comes before the allocation it guards, and names the flag.

use std::hash::Hasher as _;
use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tesseract_wire::codec::{ARRAY_DECODE_ERROR, DecodeLimits, DecodeOptions, decode_array};

const GIB: u64 = 1 << 30;

/// An lz4 frame header declaring `content_size` bytes, with a valid header checksum, followed
/// by one tiny block and the end mark: a "bomb" whose header promises far more than it holds.
fn lz4_frame_declaring(content_size: u64) -> Vec<u8> {
    let mut descriptor = vec![0x68u8, 0x40]; // version 1, independent blocks, content size; 64 KiB blocks
    descriptor.extend(content_size.to_le_bytes());
    let mut h = twox_hash::XxHash32::with_seed(0);
    h.write(&descriptor);
    let checksum = ((h.finish() >> 8) & 0xFF) as u8;
    let mut frame = 0x184D_2204u32.to_le_bytes().to_vec();
    frame.extend(&descriptor);
    frame.push(checksum);
    // One uncompressed block of 8 zero bytes, then the end mark.
    frame.extend((8u32 | 0x8000_0000).to_le_bytes());
    frame.extend([0u8; 8]);
    frame.extend(0u32.to_le_bytes());
    frame
}

/// An lz4 frame of `len` zero bytes that does not declare its size.
fn lz4_zeros_undeclared(len: usize) -> Vec<u8> {
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(&vec![0u8; len]).expect("compress");
    enc.finish().expect("finish")
}

fn base64_array(shape: Value, dtype: &str, bytes: &[u8], lz4: bool) -> Value {
    json!({"shape": shape, "dtype": dtype, "data": {
        "buffer": BASE64.encode(bytes), "encoding": "base64",
        "compression": if lz4 { json!("lz4") } else { Value::Null }}})
}

fn msg_of(v: &Value, opts: &DecodeOptions) -> String {
    let e = decode_array(v, opts).expect_err("refused");
    assert_eq!(e.kind, ARRAY_DECODE_ERROR, "{}", e.msg);
    e.msg
}

#[test]
fn an_array_over_the_size_limit_is_refused_from_its_shape() {
    let opts = DecodeOptions::default();
    // A base64 "bomb": a 1 TiB shape with an 8-byte buffer.
    let v = base64_array(json!([1u64 << 37]), "float64", &[0; 8], false);
    assert!(msg_of(&v, &opts).contains("--max-array-size"));
    // A buffer that really is over a small limit.
    let small = DecodeOptions {
        limits: DecodeLimits {
            max_array_bytes: 1024,
            ..DecodeLimits::default()
        },
        ..DecodeOptions::default()
    };
    let v = base64_array(json!([256]), "float64", &[0; 2048], false);
    let m = msg_of(&v, &small);
    assert!(m.contains("2048 bytes") && m.contains("1024"), "{m}");
    let v = base64_array(json!([128]), "float64", &[0; 1024], false);
    assert!(decode_array(&v, &small).is_ok());
}

#[test]
fn an_lz4_bomb_is_refused_before_decompressing() {
    let frame = lz4_frame_declaring(100 * GIB);
    assert!(frame.len() < 64);
    let opts = DecodeOptions::default();
    // Shape agreeing with the 100 GiB header: over the array limit.
    let v = base64_array(json!([100 * GIB / 8]), "float64", &frame, true);
    assert!(msg_of(&v, &opts).contains("--max-array-size"));
    // Small shape: the header disagrees with it.
    let v = base64_array(json!([4]), "float64", &frame, true);
    let m = msg_of(&v, &opts);
    assert!(m.contains("declares 107374182400 bytes"), "{m}");
}

#[test]
fn lz4_output_is_cut_at_the_declared_shape_when_the_frame_declares_no_size() {
    // 16 MiB of zeros compress to ~64 KiB; the shape wants 32 bytes.
    let frame = lz4_zeros_undeclared(16 << 20);
    assert!(frame.len() < 100_000);
    let v = base64_array(json!([4]), "float64", &frame, true);
    let m = msg_of(&v, &DecodeOptions::default());
    assert!(m.contains("more than 32"), "{m}");
}

#[test]
fn a_shape_product_overflowing_usize_is_refused() {
    let v = base64_array(json!([u64::MAX, u64::MAX, 2]), "float64", &[0; 8], false);
    assert!(msg_of(&v, &DecodeOptions::default()).contains("more elements"));
}

#[test]
fn the_element_budget_spans_a_request_and_resets_for_the_next() {
    let server = DecodeOptions {
        limits: DecodeLimits {
            max_request_elements: 1000,
            ..DecodeLimits::default()
        },
        ..DecodeOptions::default()
    };
    let six_hundred = base64_array(json!([600]), "float32", &[0; 2400], false);
    let one_request = server.for_request();
    assert!(decode_array(&six_hundred, &one_request).is_ok());
    let m = msg_of(&six_hundred, &one_request);
    assert!(
        m.contains("1200 elements") && m.contains("--max-request-elements"),
        "{m}"
    );
    // Plain JSON lists count too.
    let listed = json!(vec![0.5; 600]);
    assert!(decode_array(&listed, &server.for_request()).is_ok());
    let two = server.for_request();
    assert!(decode_array(&listed, &two).is_ok());
    assert!(decode_array(&listed, &two).is_err());
    // The next request starts from zero.
    assert!(decode_array(&six_hundred, &server.for_request()).is_ok());
}

#[test]
fn long_binref_paths_are_refused_before_touching_the_file_system() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = DecodeOptions {
        binref_root: Some(dir.path().to_path_buf()),
        ..DecodeOptions::default()
    };
    let long = format!("{}.bin:0", "a/".repeat(1000));
    let v =
        json!({"shape": [1], "dtype": "float64", "data": {"buffer": long, "encoding": "binref"}});
    assert!(msg_of(&v, &opts).contains("--max-path-length"));
}

mod json {
    use proptest::prelude::*;
    use serde_json::Value;
    use tesseract_wire::codec::DecodeLimits;
    use tesseract_wire::json_limits::{ParseError, broken_limit, parse};

    fn limits(depth: usize, values: usize, key: usize) -> DecodeLimits {
        DecodeLimits {
            max_json_depth: depth,
            max_json_values: values,
            max_path_bytes: key,
            ..DecodeLimits::default()
        }
    }

    #[test]
    fn depth_counts_nesting_from_one() {
        let l = limits(3, 100, 100);
        assert_eq!(broken_limit(br#"{"a": [[1]]}"#, &l), None);
        let m = broken_limit(br#"{"a": [[[1]]]}"#, &l).expect("depth 4");
        assert!(m.contains("--max-json-depth"), "{m}");
        // Far past serde_json's own recursion limit: still our message, not a crash.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let m = broken_limit(deep.as_bytes(), &DecodeLimits::default()).expect("deep");
        assert!(m.contains("64 levels"), "{m}");
    }

    #[test]
    fn every_value_counts_containers_included() {
        let l = limits(10, 5, 100);
        // The object, the list and three numbers.
        assert_eq!(broken_limit(br#"{"a": [1, 2, 3]}"#, &l), None);
        let m = broken_limit(br#"{"a": [1, 2, 3, 4]}"#, &l).expect("6 values");
        assert!(m.contains("--max-json-values"), "{m}");
        let m = broken_limit(b"[[], [], [], [], [], []]", &l).expect("7 values");
        assert!(m.contains("--max-json-values"), "{m}");
    }

    #[test]
    fn long_object_keys_are_refused() {
        let l = limits(10, 100, 8);
        assert_eq!(broken_limit(br#"{"12345678": 1}"#, &l), None);
        let m = broken_limit(br#"{"123456789": 1}"#, &l).expect("9 bytes");
        assert!(m.contains("--max-path-length"), "{m}");
    }

    /// JSON texts built to hit what a value visitor can get wrong: repeated keys (first
    /// place, last value), escapes, every number form, and nesting.
    /// With `unique_keys`, no object repeats a key, so the document's values are the text's.
    fn json_text(unique_keys: bool) -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec!["a", "b", "a\\u0041", "\\n", "k\\\"q"]);
        // Weighted so that most documents parse: one `1e400` (out of range, a JSON error)
        // anywhere makes the whole document an error.
        let leaf = prop_oneof![
            4 => Just("null".to_owned()),
            4 => any::<bool>().prop_map(|b| b.to_string()),
            4 => any::<i64>().prop_map(|n| n.to_string()),
            4 => any::<u64>().prop_map(|n| n.to_string()),
            4 => any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(|x| format!("{x:e}")),
            1 => Just("1e400".to_owned()),
            4 => Just("-0.0".to_owned()),
            4 => Just("18446744073709551616".to_owned()),
            4 => "[a-z\\\\\"\u{e9}\u{1F600} ]{0,8}"
                .prop_map(|s| { serde_json::to_string(&s).unwrap_or_default() }),
            4 => Just("\"\\ud83d\\ude00\\u00e9\"".to_owned()),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                prop::collection::vec((key.clone(), inner), 0..6).prop_map(move |entries| {
                    let body: Vec<String> = entries
                        .into_iter()
                        .enumerate()
                        .map(|(i, (k, v))| {
                            if unique_keys {
                                format!("\"{k}{i}\": {v}")
                            } else {
                                format!("\"{k}\": {v}")
                            }
                        })
                        .collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }

    fn roomy() -> DecodeLimits {
        limits(1000, 1 << 20, 1 << 10)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Within the limits the one-pass parse builds exactly serde_json's value, key order
        /// included (the server relies on `preserve_order`).
        #[test]
        fn parse_builds_what_serde_json_builds(text in json_text(false)) {
            let ours = comparable(parse(text.as_bytes(), &roomy()));
            let theirs = serde_json::from_slice::<Value>(text.as_bytes()).map_err(|e| e.to_string());
            // Key order too: `Value`'s equality ignores it, its text does not.
            prop_assert_eq!(
                ours.as_ref().map(Value::to_string),
                theirs.as_ref().map(Value::to_string)
            );
            prop_assert_eq!(ours, theirs);
        }

        /// At exactly its value count a document still parses (most documents also take the
        /// dry run first, whose bound counts every `,` and `:`); one value fewer refuses it.
        #[test]
        fn the_value_limit_is_exact(text in json_text(true)) {
            let Ok(value) = serde_json::from_slice::<Value>(text.as_bytes()) else {
                return Ok(());
            };
            let n = values(&value);
            let at = limits(1000, n, 1 << 10);
            prop_assert_eq!(comparable(parse(text.as_bytes(), &at)), Ok(value));
            let below = limits(1000, n - 1, 1 << 10);
            prop_assert!(matches!(parse(text.as_bytes(), &below), Err(ParseError::Limit(_))));
        }

        /// Documents with one byte changed or cut short: refused at the same place with the
        /// same error, or accepted alike, with and without the dry run before the parse.
        #[test]
        fn parse_agrees_with_serde_json_on_damaged_documents(
            text in json_text(false),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"[]{}:,\"\\ 0-eE.x".to_vec()),
            cut in any::<bool>(),
        ) {
            let mut bytes = text.into_bytes();
            let i = at.index(bytes.len());
            if cut {
                bytes.truncate(i);
            } else {
                bytes[i] = byte;
            }
            let theirs = serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string());
            prop_assert_eq!(comparable(parse(&bytes, &roomy())), theirs.clone());
            // A value limit low enough that most documents take the dry run first (their `[`,
            // `,` and `:` outnumber it). Unless it is broken, the answer is still serde_json's.
            let dry_first = limits(1000, bytes.len() / 4 + 1, 1 << 10);
            let ours = comparable(parse(&bytes, &dry_first));
            if !matches!(&ours, Err(m) if m.starts_with("a limit")) {
                prop_assert_eq!(ours, theirs);
            }
        }

        /// Any bytes: accepted and refused alike, with serde_json's own error.
        #[test]
        fn parse_agrees_with_serde_json_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let ours = comparable(parse(&bytes, &roomy()));
            let theirs = serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string());
            prop_assert_eq!(ours, theirs);
        }
    }

    /// Values in a document, containers included, as the limit counts them.
    fn values(v: &Value) -> usize {
        1 + match v {
            Value::Array(items) => items.iter().map(values).sum(),
            Value::Object(members) => members.values().map(values).sum(),
            _ => 0,
        }
    }

    /// A parse result with serde_json's error text, so it compares with `from_slice`'s.
    fn comparable(r: Result<Value, ParseError>) -> Result<Value, String> {
        r.map_err(|e| match e {
            ParseError::Json(e) => e.to_string(),
            ParseError::Limit(m) => format!("a limit, not a JSON error: {m}"),
        })
    }

    #[test]
    fn a_broken_limit_wins_over_later_syntax_errors_and_a_syntax_error_over_later_limits() {
        let l = limits(10, 3, 100);
        // Four values before the stray comma: the limit is hit first.
        assert!(matches!(
            parse(b"[1, 2, 3, ,]", &l),
            Err(ParseError::Limit(_))
        ));
        // The syntax error comes before the fourth value; the dry run (five `,` and `[` for a
        // limit of three) reports it in serde_json's words.
        let text = b"[1, , 2, 3, 4]";
        let Err(ParseError::Json(e)) = parse(text, &l) else {
            panic!("the stray comma must be a JSON error");
        };
        let theirs = serde_json::from_slice::<Value>(text)
            .err()
            .map(|e| e.to_string());
        assert_eq!(Some(e.to_string()), theirs);
        // Trailing data after a value within the limits is serde_json's "trailing characters".
        let Err(ParseError::Json(e)) = parse(b"[1] x", &l) else {
            panic!("trailing data must be a JSON error");
        };
        assert!(e.to_string().contains("trailing characters"), "{e}");
    }

    #[test]
    fn malformed_json_is_left_to_the_parser() {
        let l = DecodeLimits::default();
        for text in [&b"{"[..], b"[1,", b"nope", b"", b"{\"a\" 1}"] {
            assert_eq!(
                broken_limit(text, &l),
                None,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
