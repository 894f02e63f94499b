use super::*;

fn no_opts() -> DecodeOptions {
    DecodeOptions::default()
}

/// Options with no size limits, to test the checks that hold regardless.
fn unlimited() -> DecodeOptions {
    DecodeOptions {
        limits: DecodeLimits {
            max_array_bytes: u64::MAX,
            max_request_elements: u64::MAX,
            ..DecodeLimits::default()
        },
        ..DecodeOptions::default()
    }
}

fn decode(v: Value) -> Result<Tensor, ArrayError> {
    decode_array(&v, &no_opts())
}

fn t<T: tesseract_model::Element>(shape: Vec<usize>, values: Vec<T>) -> Tensor {
    Tensor::new(shape, T::into_data(values)).expect("valid tensor")
}

fn err_kind(r: Result<Tensor, ArrayError>) -> &'static str {
    r.expect_err("should fail").kind
}

// --- base64 and lz4 -------------------------------------------------------------------------

#[test]
fn base64_float32_scalar_matches_tesseract() {
    let v = encode_array(
        &Tensor::scalar(56.5f32),
        OutputFormat::JsonBase64,
        Compression::None,
    );
    assert_eq!(
        v,
        json!({"object_type":"array","shape":[],"dtype":"float32","data":{"buffer":"AABiQg==","encoding":"base64"}})
    );
    let back = decode(
        json!({"shape":[],"dtype":"float32","data":{"buffer":"AABiQg==","encoding":"base64"}}),
    );
    assert_eq!(back.expect("decodes"), Tensor::scalar(56.5f32));
}

#[test]
fn captured_lz4_buffer_decodes() {
    let v = json!({"object_type":"array","shape":[],"dtype":"float32",
        "data":{"buffer":"BCJNGGhABAAAAAAAAADNBAAAgAAAYkIAAAAA","encoding":"base64","compression":"lz4"}});
    assert_eq!(decode(v).expect("decodes"), Tensor::scalar(56.5f32));
}

#[test]
fn lz4_output_round_trips_and_stores_content_size() {
    let x = t(vec![2, 3], vec![1.0f64, 2.0, 3.0, 4.0, 5.0, f64::NAN]);
    let v = encode_array(&x, OutputFormat::JsonBase64, Compression::Lz4);
    assert_eq!(v["data"]["compression"], "lz4");
    let bytes = BASE64
        .decode(v["data"]["buffer"].as_str().expect("string"))
        .expect("base64");
    assert_eq!(lz4_declared_size(&bytes), Some(48));
    let back = decode(v).expect("decodes");
    assert_eq!(back.shape(), &[2, 3]);
    let vals = back.as_slice::<f64>().expect("f64");
    assert_eq!(&vals[..5], &[1.0, 2.0, 3.0, 4.0, 5.0]);
    assert!(vals[5].is_nan(), "base64 keeps NaN");
}

#[test]
fn lz4_frame_without_content_size_is_accepted() {
    let raw: Vec<u8> = [1i32, 2, 3].iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(&raw).expect("write");
    let frame = enc.finish().expect("finish");
    assert_eq!(lz4_declared_size(&frame), None);
    let v = json!({"shape":[3],"dtype":"int32","data":{"buffer":BASE64.encode(frame),"encoding":"base64","compression":"lz4"}});
    assert_eq!(decode(v).expect("decodes"), t(vec![3], vec![1i32, 2, 3]));
}

fn frame_header(content_size: u64) -> Vec<u8> {
    let mut h = LZ4_MAGIC.to_le_bytes().to_vec();
    h.extend([0x68, 0x40]);
    h.extend(content_size.to_le_bytes());
    h.push(0); // header checksum: never reached
    h.extend([4, 0, 0, 0x80, 0, 0, 0x62, 0x42, 0, 0, 0, 0]);
    h
}

#[test]
fn lz4_frame_declaring_huge_size_is_refused_before_decoding() {
    let v = json!({"shape":[],"dtype":"float32",
        "data":{"buffer":BASE64.encode(frame_header(1 << 40)),"encoding":"base64","compression":"lz4"}});
    let e = decode(v).expect_err("refused");
    assert_eq!(e.kind, ARRAY_DECODE_ERROR);
    assert!(e.msg.contains("declares 1099511627776 bytes"), "{}", e.msg);
}

#[test]
fn lz4_huge_shape_matching_a_forged_header_does_not_allocate() {
    // Shape and header agree on 4 TiB; the output must stay bounded by the tiny input.
    let v = json!({"shape":[1u64 << 40],"dtype":"float32",
        "data":{"buffer":BASE64.encode(frame_header(4 << 40)),"encoding":"base64","compression":"lz4"}});
    assert_eq!(err_kind(decode(v)), ARRAY_DECODE_ERROR);
}

#[test]
fn lz4_output_is_capped_at_the_expected_size() {
    let raw = vec![0u8; 64];
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(&raw).expect("write");
    let frame = enc.finish().expect("finish");
    let e = lz4_decompress(&frame, 8).expect_err("too long");
    assert!(e.contains("more than 8"), "{e}");
    assert_eq!(lz4_decompress(&frame, 64).expect("exact"), raw);
}

#[test]
fn bad_base64_and_bad_lz4_are_decode_errors() {
    for buffer in ["AABiQg=", "AAB!Qg==", "AABiQgAA"] {
        let v = json!({"shape":[],"dtype":"float32","data":{"buffer":buffer,"encoding":"base64"}});
        assert_eq!(err_kind(decode(v)), ARRAY_DECODE_ERROR, "{buffer}");
    }
    let v = json!({"shape":[],"dtype":"float32","data":{"buffer":"AABiQg==","encoding":"base64","compression":"lz4"}});
    assert_eq!(err_kind(decode(v)), ARRAY_DECODE_ERROR);
    // Not a compression upstream's model allows: not an encoded array at all.
    let v = json!({"shape":[],"dtype":"float32","data":{"buffer":"AABiQg==","encoding":"base64","compression":"zstd"}});
    assert_eq!(err_kind(decode(v)), ARRAY_NON_NUMERIC);
}

#[test]
fn base64_bool_is_one_byte_per_element() {
    let x = t(vec![3], vec![true, false, true]);
    let v = encode_array(&x, OutputFormat::JsonBase64, Compression::None);
    assert_eq!(v["data"]["buffer"], BASE64.encode([1u8, 0, 1]));
    assert_eq!(decode(v).expect("decodes"), x);
}

#[test]
fn base64_int64_round_trips() {
    let x = t(vec![2, 2], vec![1i64, -2, i64::MAX, i64::MIN]);
    let v = encode_array(&x, OutputFormat::JsonBase64, Compression::None);
    assert_eq!(decode(v).expect("decodes"), x);
}

#[test]
fn base64_decodes_straight_into_elements_for_every_padding() {
    // 0..7 elements of 1, 4 and 8 bytes cover every remainder mod 3, so every padding.
    for n in 0..7usize {
        let f32s: Vec<f32> = (0..n).map(|i| i as f32 * -1.5 + 0.1).collect();
        let f64s: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let i32s: Vec<i32> = (0..n).map(|i| i32::MIN + i as i32).collect();
        let bools: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let cases = [
            t(vec![n], f32s),
            t(vec![n], f64s),
            t(vec![n], i32s),
            t(vec![n], bools),
        ];
        for x in cases {
            let v = encode_array(&x, OutputFormat::JsonBase64, Compression::None);
            assert_eq!(decode(v).expect("decodes"), x, "{n} elements");
        }
    }
}

#[test]
fn base64_errors_in_the_last_quantum_read_as_from_the_start() {
    // 8 bytes: "AAAAAAAAAAA=" — the bad symbol is in the last quantum, at offset 9.
    let v =
        json!({"shape":[2],"dtype":"float32","data":{"buffer":"AAAAAAAAA!A=","encoding":"base64"}});
    let e = decode(v).expect_err("refused");
    assert_eq!(e.kind, ARRAY_DECODE_ERROR);
    assert_eq!(
        e.msg,
        format!(
            "Failed to decode array buffer (base64 encoding): invalid base64: {}",
            BASE64.decode("AAAAAAAAA!A=").expect_err("bad")
        )
    );
    // Padding in the middle.
    let v =
        json!({"shape":[2],"dtype":"float32","data":{"buffer":"AAA=AAAAAAA=","encoding":"base64"}});
    assert_eq!(err_kind(decode(v)), ARRAY_DECODE_ERROR);
    // One byte short, though the length rule passes: "AAAAAAAAAA==" holds 7.
    let v =
        json!({"shape":[2],"dtype":"float32","data":{"buffer":"AAAAAAAAAA==","encoding":"base64"}});
    assert!(
        decode(v)
            .expect_err("short")
            .msg
            .contains("buffer holds 7 bytes")
    );
}

// --- shape sanity ----------------------------------------------------------------------------

#[test]
fn shape_overflowing_usize_is_refused() {
    for encoding in ["json", "base64", "binref"] {
        let v = json!({"shape":[u64::MAX, 2],"dtype":"float64","data":{"buffer":"AAAA","encoding":encoding}});
        let e = decode(v).expect_err("refused");
        assert_eq!(e.kind, ARRAY_DECODE_ERROR, "{encoding}");
        assert!(e.msg.contains("more elements"), "{}", e.msg);
    }
    // Element count fits but byte length does not.
    let v = json!({"shape":[usize::MAX / 2],"dtype":"float64","data":{"buffer":"AAAA","encoding":"base64"}});
    assert_eq!(err_kind(decode(v)), ARRAY_DECODE_ERROR);
}

#[test]
fn huge_base64_shape_is_refused_by_length() {
    // Even with no size limit configured, the buffer length is checked before decoding.
    let v = json!({"shape":[1u64 << 40],"dtype":"float64","data":{"buffer":"AABiQg==","encoding":"base64"}});
    let e = decode_array(&v, &unlimited()).expect_err("refused");
    assert!(e.msg.contains("buffer holds 4 bytes"), "{}", e.msg);
}

// --- encoded json ----------------------------------------------------------------------------

#[test]
fn json_buffers_decode_with_their_dtype() {
    let v = json!({"shape":[2,2],"dtype":"float32","data":{"buffer":[[1,2],[3,4.5]],"encoding":"json"}});
    assert_eq!(
        decode(v).expect("decodes"),
        t(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.5])
    );
    // "raw" is in upstream's decoder but not in its model's encodings, so it never decodes.
    let v = json!({"object_type":"array","shape":[],"dtype":"int32","data":{"buffer":7,"encoding":"raw"}});
    assert_eq!(err_kind(decode(v)), ARRAY_NON_NUMERIC);
    // numpy reshapes any buffer with the right element count.
    let v = json!({"shape":[4],"dtype":"int64","data":{"buffer":[[1,2],[3,4]],"encoding":"json","compression":null}});
    assert_eq!(decode(v).expect("decodes"), t(vec![4], vec![1i64, 2, 3, 4]));
    // astype semantics on the stated dtype: ints to bool are truthiness.
    let v = json!({"shape":[2],"dtype":"bool","data":{"buffer":[0,2],"encoding":"json"}});
    assert_eq!(decode(v).expect("decodes"), t(vec![2], vec![false, true]));
}

#[test]
fn json_buffer_problems() {
    let wrong_count =
        json!({"shape":[3],"dtype":"float64","data":{"buffer":[1,2],"encoding":"json"}});
    assert_eq!(err_kind(decode(wrong_count)), ARRAY_DECODE_ERROR);
    let ragged =
        json!({"shape":[2,2],"dtype":"float64","data":{"buffer":[[1,2],[3]],"encoding":"json"}});
    assert_eq!(err_kind(decode(ragged)), ARRAY_DECODE_ERROR);
    let strings = json!({"shape":[1],"dtype":"float64","data":{"buffer":["a"],"encoding":"json"}});
    assert_eq!(err_kind(decode(strings)), ARRAY_DECODE_ERROR);
    let fractional =
        json!({"shape":[2],"dtype":"int32","data":{"buffer":[1.5,2],"encoding":"json"}});
    let e = decode(fractional).expect_err("fractional");
    assert_eq!(e.kind, ARRAY_EXPECTED_INTEGER);
    assert_eq!(
        e.msg,
        "Expected integer data, but array contains floating point values"
    );
    let integral = json!({"shape":[2],"dtype":"int32","data":{"buffer":[1.0,2],"encoding":"json"}});
    assert_eq!(
        decode(integral).expect("integral floats"),
        t(vec![2], vec![1i32, 2])
    );
    let too_big =
        json!({"shape":[],"dtype":"int32","data":{"buffer":3_000_000_000i64,"encoding":"json"}});
    let e = decode(too_big).expect_err("out of range");
    assert_eq!(e.kind, ARRAY_VALUE_OUT_OF_RANGE);
    assert_eq!(
        e.msg,
        "Array values do not fit into dtype 'int32' (e.g. 3000000000)"
    );
    let compressed = json!({"shape":[],"dtype":"int32","data":{"buffer":1,"encoding":"json","compression":"lz4"}});
    assert_eq!(err_kind(decode(compressed)), ARRAY_NON_NUMERIC);
}

#[test]
fn encoded_object_structure_is_strict() {
    let ok = json!({"shape":[],"dtype":"float64","data":{"buffer":1.5,"encoding":"json"}});
    assert!(decode(ok).is_ok());
    let bad = [
        json!({"shape":[],"dtype":"float64","data":{"buffer":1.5,"encoding":"json"},"zzz":1}),
        json!({"shape":[],"dtype":"float64","data":{"buffer":1.5,"encoding":"json","zzz":1}}),
        json!({"object_type":"tensor","shape":[],"dtype":"float64","data":{"buffer":1.5,"encoding":"json"}}),
        json!({"dtype":"float64","data":{"buffer":1.5,"encoding":"json"}}),
        json!({"shape":[],"data":{"buffer":1.5,"encoding":"json"}}),
        json!({"shape":[],"dtype":"float64"}),
        json!({"shape":[-1],"dtype":"float64","data":{"buffer":[],"encoding":"json"}}),
        json!({"shape":[],"dtype":"float64","data":{"buffer":1.5}}),
        json!({"shape":[],"dtype":"float64","data":{"buffer":1.5,"encoding":"msgpack"}}),
        json!({"shape":[],"dtype":"complex128","data":{"buffer":1.5,"encoding":"json"}}),
        json!({"shape":[],"dtype":"float64","data":{"buffer":1.5,"encoding":"base64"}}),
    ];
    // Upstream's encoded-array model fails, and the object read as plain data is non-numeric.
    for v in bad {
        let e = decode(v.clone()).expect_err("not an encoded array");
        assert_eq!(e.kind, ARRAY_NON_NUMERIC, "{v}");
        assert!(
            e.msg.starts_with(
                "Could not parse value as a numeric array (contains non-numeric data): "
            ),
            "{}",
            e.msg
        );
    }
    let v =
        json!({"shape":[],"dtype":"float64","data":{"buffer":"0:AA==:0:8","encoding":"cuda_ipc"}});
    assert_eq!(err_kind(decode(v)), ARRAY_DECODE_ERROR);
}

#[test]
fn narrow_numpy_dtypes_decode_into_wider_ones() {
    // float16 0.1 rounds as numpy's astype does; the values then cast like any float32.
    let v = json!({"shape":[2],"dtype":"float16","data":{"buffer":[1.5, 0.1],"encoding":"json"}});
    assert_eq!(
        decode(v).expect("float16"),
        t(vec![2], vec![1.5f32, 0.099_975_586])
    );
    let v = json!({"shape":[2],"dtype":"uint8","data":{"buffer":BASE64.encode([255u8, 7]),"encoding":"base64"}});
    assert_eq!(decode(v).expect("uint8"), t(vec![2], vec![255i32, 7]));
    let v = json!({"shape":[1],"dtype":"int16","data":{"buffer":[-40000],"encoding":"json"}});
    assert_eq!(err_kind(decode(v)), ARRAY_VALUE_OUT_OF_RANGE);
    let v = json!({"shape":[],"dtype":"Float32","data":{"buffer":1.5,"encoding":"json"}});
    assert_eq!(err_kind(decode(v)), ARRAY_NON_NUMERIC);
    let e = parse_dtype("float16").expect_err("not held");
    assert_eq!(e.kind, ARRAY_INVALID_DTYPE);
    assert_eq!(parse_dtype("int64"), Ok(DType::Int64));
}

// --- bare values -----------------------------------------------------------------------------

#[test]
fn bare_values_infer_numpy_dtypes() {
    assert_eq!(decode(json!(0.5)).expect("float"), Tensor::scalar(0.5f64));
    assert_eq!(decode(json!(3)).expect("int"), Tensor::scalar(3i64));
    assert_eq!(decode(json!(true)).expect("bool"), Tensor::scalar(true));
    assert_eq!(
        decode(json!([true, false])).expect("bools"),
        t(vec![2], vec![true, false])
    );
    assert_eq!(
        decode(json!([true, 2])).expect("int"),
        t(vec![2], vec![1i64, 2])
    );
    assert_eq!(
        decode(json!([[1, 2.5], [3, 4]])).expect("float"),
        t(vec![2, 2], vec![1.0, 2.5, 3.0, 4.0])
    );
    assert_eq!(decode(json!([])).expect("empty"), t::<f64>(vec![0], vec![]));
    assert_eq!(
        decode(json!([[], []])).expect("empty"),
        t::<f64>(vec![2, 0], vec![])
    );
}

#[test]
fn bare_non_numeric_and_ragged() {
    for v in [
        json!("foo"),
        json!(null),
        json!([1, "a"]),
        json!([[1], ["a"]]),
        json!({"x": 1}),
        json!([{"a":1}]),
    ] {
        let e = decode(v.clone()).expect_err("non-numeric");
        assert_eq!(e.kind, ARRAY_NON_NUMERIC, "{v}");
        assert_eq!(
            e.msg,
            "Could not parse value as a numeric array (contains non-numeric data)"
        );
        assert_eq!(e.ctx, json!({}));
    }
    // numpy's ValueError, reported by pydantic as a plain value_error.
    for v in [json!([[1, 2], [3]]), json!([1, [2]]), json!([[1], 2])] {
        assert_eq!(err_kind(decode(v.clone())), "value_error", "{v}");
    }
    // Beyond int64 numpy makes uint64, which casts to floats whole.
    assert_eq!(
        decode(json!([u64::MAX])).expect("uint64 range").dtype(),
        DType::Float64
    );
    // NaN and ±Infinity as Python's JSON reads them (see `python_tokens`).
    let v: Value = serde_json::from_slice(&python_tokens(b"[NaN, -Infinity, 1]")).expect("json");
    let x = decode(v).expect("floats");
    let Some(vals) = x.as_slice::<f64>() else {
        panic!("float64 expected, got {x:?}");
    };
    assert!(vals[0].is_nan() && vals[1] == f64::NEG_INFINITY && vals[2] == 1.0);
    assert_eq!(
        decode(json!([u64::MAX, 0.5])).expect("float").dtype(),
        DType::Float64
    );
}

// --- binref ----------------------------------------------------------------------------------

fn binref(buffer: &str, dtype: &str, shape: Value, compression: Option<&str>) -> Value {
    json!({"shape":shape,"dtype":dtype,"data":{"buffer":buffer,"encoding":"binref","compression":compression}})
}

#[test]
fn binref_reads_relative_files_with_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bytes: Vec<u8> = [1.5f64, 2.5].iter().flat_map(|x| x.to_le_bytes()).collect();
    bytes.extend([7i32, 8, 9].iter().flat_map(|x| x.to_le_bytes()));
    std::fs::create_dir(dir.path().join("run")).expect("mkdir");
    std::fs::write(dir.path().join("run/a.bin"), &bytes).expect("write");
    let opts = DecodeOptions {
        binref_root: Some(dir.path().to_path_buf()),
        ..unlimited()
    };

    let a =
        decode_array(&binref("run/a.bin:0", "float64", json!([2]), None), &opts).expect("first");
    assert_eq!(a, t(vec![2], vec![1.5f64, 2.5]));
    let a =
        decode_array(&binref("run/a.bin", "float64", json!([2]), None), &opts).expect("no offset");
    assert_eq!(a, t(vec![2], vec![1.5f64, 2.5]));
    let b =
        decode_array(&binref("./run/a.bin:16", "int32", json!([3]), None), &opts).expect("second");
    assert_eq!(b, t(vec![3], vec![7i32, 8, 9]));

    // Past the end of the file.
    let e =
        decode_array(&binref("run/a.bin:20", "int32", json!([3]), None), &opts).expect_err("short");
    assert_eq!(e.kind, ARRAY_DECODE_ERROR);
    // A huge shape is refused against the file size, before allocating.
    let e = decode_array(
        &binref("run/a.bin", "int32", json!([1u64 << 40]), None),
        &opts,
    )
    .expect_err("huge");
    assert!(e.msg.contains("cannot read"), "{}", e.msg);
    // Missing file.
    assert_eq!(
        err_kind(decode_array(
            &binref("run/b.bin", "int32", json!([3]), None),
            &opts
        )),
        ARRAY_DECODE_ERROR
    );
    // No input path configured.
    let e = decode_array(
        &binref("run/a.bin:0", "float64", json!([2]), None),
        &no_opts(),
    )
    .expect_err("no root");
    assert!(e.msg.contains("no input path"), "{}", e.msg);
}

#[test]
fn binref_lz4_needs_compressed_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw: Vec<u8> = [1.0f32, 2.0, 3.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let frame = lz4_compress(&raw).expect("compress");
    let mut file = vec![0xAAu8; 5];
    file.extend(&frame);
    std::fs::write(dir.path().join("c.bin"), &file).expect("write");
    let opts = DecodeOptions {
        binref_root: Some(dir.path().to_path_buf()),
        ..DecodeOptions::default()
    };
    let buffer = format!("c.bin:5:{}", frame.len());
    let x = decode_array(&binref(&buffer, "float32", json!([3]), Some("lz4")), &opts)
        .expect("lz4 binref");
    assert_eq!(x, t(vec![3], vec![1.0f32, 2.0, 3.0]));
    let e = decode_array(
        &binref("c.bin:5", "float32", json!([3]), Some("lz4")),
        &opts,
    )
    .expect_err("no size");
    assert!(e.msg.contains("compressed_size is required"), "{}", e.msg);
}

#[test]
fn binref_refuses_paths_outside_the_root() {
    let outer = tempfile::tempdir().expect("tempdir");
    let root = outer.path().join("inputs");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::write(outer.path().join("secret.bin"), [0u8; 8]).expect("write");
    let opts = DecodeOptions {
        binref_root: Some(root.clone()),
        ..DecodeOptions::default()
    };
    let abs = outer.path().join("secret.bin");
    for buffer in [
        "../secret.bin:0".to_owned(),
        format!("{}:0", abs.display()),
        "a/../../secret.bin".to_owned(),
    ] {
        let e =
            decode_array(&binref(&buffer, "float64", json!([]), None), &opts).expect_err("escape");
        assert_eq!(e.kind, ARRAY_DECODE_ERROR, "{buffer}");
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(outer.path().join("secret.bin"), root.join("link.bin"))
            .expect("symlink");
        let e = decode_array(&binref("link.bin", "float64", json!([]), None), &opts)
            .expect_err("symlink escape");
        assert!(e.msg.contains("outside"), "{}", e.msg);
    }
}

#[test]
fn binref_buffer_syntax_follows_the_lazy_regex() {
    assert_eq!(parse_binref("a.bin"), Ok(("a.bin", 0, None)));
    assert_eq!(parse_binref("a.bin:12"), Ok(("a.bin", 12, None)));
    assert_eq!(parse_binref("a.bin:12:34"), Ok(("a.bin", 12, Some(34))));
    assert_eq!(parse_binref("a:1:2:3"), Ok(("a:1", 2, Some(3))));
    assert_eq!(parse_binref("a::1"), Ok(("a:", 1, None)));
    assert_eq!(parse_binref("1:2"), Ok(("1", 2, None)));
    assert_eq!(parse_binref("x:y"), Ok(("x:y", 0, None)));
    assert!(parse_binref("").is_err());
}

// --- casting and broadcasting ----------------------------------------------------------------

#[test]
fn cast_follows_same_kind_rules() {
    assert_eq!(
        cast(t(vec![2], vec![true, false]), DType::Float32).expect("bool"),
        t(vec![2], vec![1.0f32, 0.0])
    );
    assert_eq!(
        cast(t(vec![2], vec![true, false]), DType::Int32).expect("bool"),
        t(vec![2], vec![1i32, 0])
    );
    assert_eq!(
        cast(t(vec![1], vec![5i64]), DType::Int32).expect("fits"),
        t(vec![1], vec![5i32])
    );
    assert_eq!(
        cast(t(vec![1], vec![5i32]), DType::Float64).expect("int to float"),
        t(vec![1], vec![5.0f64])
    );
    assert_eq!(
        cast(t(vec![1], vec![5i64]), DType::Float32).expect("int to float"),
        t(vec![1], vec![5.0f32])
    );
    assert_eq!(
        cast(t(vec![1], vec![0.5f64]), DType::Float32).expect("narrow"),
        t(vec![1], vec![0.5f32])
    );
    assert_eq!(
        cast(t(vec![1], vec![f64::NAN]), DType::Float32)
            .expect("nan")
            .dtype(),
        DType::Float32
    );
    assert_eq!(
        cast(t(vec![2], vec![2.0f32, -3.0]), DType::Int64).expect("integral"),
        t(vec![2], vec![2i64, -3])
    );

    let e = cast(t(vec![1], vec![i64::from(i32::MAX) + 1]), DType::Int32).expect_err("range");
    assert_eq!(e.kind, ARRAY_VALUE_OUT_OF_RANGE);
    assert_eq!(
        e.ctx,
        json!({"expected_dtype":"int32","value":"2147483648"})
    );
    let e = cast(t(vec![1], vec![1e300f64]), DType::Float32).expect_err("overflow");
    assert_eq!(e.kind, ARRAY_VALUE_OUT_OF_RANGE);
    assert_eq!(e.ctx["value"], "1e+300");
    let e = cast(t(vec![2], vec![1.0f64, 1.5]), DType::Int64).expect_err("fractional");
    assert_eq!(e.kind, ARRAY_EXPECTED_INTEGER);
    assert_eq!(
        err_kind(cast(t(vec![1], vec![f64::NAN]), DType::Int32)),
        ARRAY_EXPECTED_INTEGER
    );
    assert_eq!(
        err_kind(cast(t(vec![1], vec![3e9f64]), DType::Int32)),
        ARRAY_VALUE_OUT_OF_RANGE
    );
    assert_eq!(
        err_kind(cast(t(vec![1], vec![1e19f64]), DType::Int64)),
        ARRAY_VALUE_OUT_OF_RANGE
    );

    let e = cast(t(vec![1], vec![1i64]), DType::Bool).expect_err("int to bool");
    assert_eq!(e.kind, ARRAY_DTYPE_MISMATCH);
    assert_eq!(e.msg, "Array dtype 'int64' cannot be safely cast to 'bool'");
    assert_eq!(
        e.ctx,
        json!({"actual_dtype":"int64","expected_dtype":"bool"})
    );
    assert_eq!(
        err_kind(cast(t(vec![1], vec![1.0f32]), DType::Bool)),
        ARRAY_DTYPE_MISMATCH
    );
}

#[test]
fn same_kind_table_for_wire_names() {
    assert_eq!(can_cast_same_kind("float16", DType::Float32), Some(true));
    assert_eq!(can_cast_same_kind("uint8", DType::Int32), Some(true));
    assert_eq!(can_cast_same_kind("bool", DType::Int32), Some(true));
    assert_eq!(can_cast_same_kind("int64", DType::Float32), Some(true));
    assert_eq!(can_cast_same_kind("complex64", DType::Float64), Some(false));
    assert_eq!(can_cast_same_kind("float64", DType::Int64), Some(false));
    assert_eq!(can_cast_same_kind("int8", DType::Bool), Some(false));
    assert_eq!(can_cast_same_kind("nope", DType::Bool), None);
}

#[test]
fn broadcast_expands_only_size_one_dims() {
    let x = t(vec![1, 3], vec![1i32, 2, 3]);
    assert_eq!(
        broadcast_to(x.clone(), &[2, 3]),
        Some(t(vec![2, 3], vec![1, 2, 3, 1, 2, 3]))
    );
    let y = t(vec![2, 1], vec![1i32, 2]);
    assert_eq!(
        broadcast_to(y, &[2, 2]),
        Some(t(vec![2, 2], vec![1, 1, 2, 2]))
    );
    assert_eq!(
        broadcast_to(Tensor::scalar(1.0f64), &[]),
        Some(Tensor::scalar(1.0f64))
    );
    assert_eq!(
        broadcast_to(t(vec![1], vec![7.0f32]), &[0]),
        Some(t::<f32>(vec![0], vec![]))
    );
    assert_eq!(broadcast_to(x.clone(), &[3]), None, "rank must match");
    assert_eq!(
        broadcast_to(x.clone(), &[2, 4]),
        None,
        "3 does not broadcast to 4"
    );
    assert_eq!(
        broadcast_to(Tensor::scalar(1i32), &[2]),
        None,
        "rank must match"
    );
    assert_eq!(
        broadcast_to(t(vec![1, 1], vec![1i32]), &[usize::MAX, 2]),
        None,
        "overflow"
    );
}

// --- output ----------------------------------------------------------------------------------

#[test]
fn json_output_matches_numpy_tolist() {
    let v = encode_array(
        &t(vec![3], vec![0.1f32, f32::NAN, f32::INFINITY]),
        OutputFormat::Json,
        Compression::None,
    );
    assert_eq!(
        v,
        json!({"object_type":"array","shape":[3],"dtype":"float32","data":{"buffer":[0.10000000149011612,null,null],"encoding":"json"}})
    );
    assert_eq!(
        serde_json::to_string(&v["data"]["buffer"]).expect("json"),
        "[0.10000000149011612,null,null]"
    );
    let v = encode_array(
        &Tensor::scalar(f64::NAN),
        OutputFormat::Json,
        Compression::None,
    );
    assert_eq!(v["data"]["buffer"], Value::Null);
    let v = encode_array(
        &Tensor::scalar(56.5f32),
        OutputFormat::Json,
        Compression::Lz4,
    );
    assert_eq!(
        v["data"],
        json!({"buffer":56.5,"encoding":"json"}),
        "json is never compressed"
    );
    let v = encode_array(
        &t(vec![2, 2], vec![1i64, 2, 3, 4]),
        OutputFormat::Json,
        Compression::None,
    );
    assert_eq!(v["data"]["buffer"], json!([[1, 2], [3, 4]]));
    assert_eq!(v["dtype"], "int64");
    let v = encode_array(
        &t(vec![2], vec![true, false]),
        OutputFormat::Json,
        Compression::None,
    );
    assert_eq!(v["data"]["buffer"], json!([true, false]));
    let v = encode_array(
        &t::<f64>(vec![2, 0], vec![]),
        OutputFormat::Json,
        Compression::None,
    );
    assert_eq!(v["data"]["buffer"], json!([[], []]));
    assert_eq!(
        serde_json::to_string(&float_json(1.0)).expect("json"),
        "1.0"
    );
}

#[test]
fn json_output_is_written_from_the_slice_with_the_values_digits() {
    let x = t(
        vec![2, 3],
        vec![0.1f64, 1e-5, 1e16, -0.0, f64::NAN, 123_456_789.012_345_68],
    );
    let direct = serde_json::to_string(&JsonBuffer(&x)).expect("json");
    assert_eq!(
        direct,
        "[[0.1,0.00001,1e+16],[-0.0,null,123456789.01234569]]"
    );
    assert_eq!(
        direct,
        serde_json::to_string(
            &encode_array(&x, OutputFormat::Json, Compression::None)["data"]["buffer"]
        )
        .expect("json")
    );
    let scalar = Tensor::scalar(56.5f32);
    assert_eq!(
        serde_json::to_string(&JsonBuffer(&scalar)).expect("json"),
        "56.5"
    );
    let ints = t(vec![1, 2], vec![i32::MIN, 7]);
    assert_eq!(
        serde_json::to_string(&JsonBuffer(&ints)).expect("json"),
        "[[-2147483648,7]]"
    );
}

#[test]
fn answer_derefs_to_its_value_and_yields_it_for_editing() {
    let x = t(vec![2], vec![1.5f64, 2.5]);
    let mut answer = Answer::new(
        json!({"y": null, "k": "v"}),
        OutputFormat::Json,
        Compression::None,
    );
    answer.put(
        &[tesseract_model::path::Segment::Key("y".into())],
        x.clone(),
    );
    let want = json!({"y": encode_array(&x, OutputFormat::Json, Compression::None), "k": "v"});
    assert_eq!(*answer, want);
    assert_eq!(answer, Answer::from(want.clone()));
    answer.value_mut()["k"] = json!("w");
    assert_eq!(
        String::from_utf8(answer.to_json_vec().expect("json")).expect("utf-8"),
        r#"{"y":{"object_type":"array","shape":[2],"dtype":"float64","data":{"buffer":[1.5,2.5],"encoding":"json"}},"k":"w"}"#
    );
}

#[test]
fn an_answer_counts_the_bytes_of_the_arrays_it_has_yet_to_encode() {
    use tesseract_model::path::Segment;
    let mut answer = Answer::new(
        json!({"y": null, "list": [null, null]}),
        OutputFormat::JsonBase64,
        Compression::None,
    );
    assert_eq!(answer.array_bytes(), 0);
    answer.put(
        &[Segment::Key("y".into())],
        t(vec![3], vec![1.0f64, 2.0, 3.0]),
    );
    answer.put(
        &[Segment::Key("list".into()), Segment::Index(1)],
        t(vec![2, 5], vec![0f32; 10]),
    );
    assert_eq!(answer.array_bytes(), 3 * 8 + 10 * 4);
    answer.value_mut();
    assert_eq!(
        answer.array_bytes(),
        0,
        "encoded arrays are no longer tensors"
    );
}

#[test]
fn json_output_round_trips_through_decode() {
    let x = t(vec![2, 3], vec![1.5f32, -2.0, 3.25, 0.0, 1e-3, 7.0]);
    let back = decode(encode_array(&x, OutputFormat::Json, Compression::None)).expect("decodes");
    assert_eq!(back, x);
}

#[test]
fn abstract_and_leaf_encoding() {
    let sd = ShapeDType {
        shape: vec![2, 3],
        dtype: DType::Float64,
    };
    assert_eq!(
        encode_abstract(&sd),
        json!({"shape":[2,3],"dtype":"float64"})
    );
    assert_eq!(
        abstract_leaf_to_json(&AbstractLeaf::Array(sd)),
        json!({"shape":[2,3],"dtype":"float64"})
    );
    assert_eq!(
        plain_to_json(&Plain::Json(r#"{"a":[1,2]}"#.into())),
        json!({"a":[1,2]})
    );
    assert_eq!(plain_to_json(&Plain::Float(f64::NAN)), Value::Null);
    assert_eq!(plain_to_json(&Plain::Int(3)), json!(3));
    assert_eq!(plain_to_json(&Plain::Text("ok".into())), json!("ok"));
    let leaf = Leaf::Tensor(Tensor::scalar(1i32));
    assert_eq!(
        leaf_to_json(&leaf, OutputFormat::Json, Compression::None)["data"]["buffer"],
        json!(1)
    );
}

#[test]
fn python_float_repr() {
    assert_eq!(py_float(1.0), "1.0");
    assert_eq!(py_float(0.1), "0.1");
    assert_eq!(py_float(1e300), "1e+300");
    assert_eq!(py_float(-2.5e-5), "-2.5e-05");
    assert_eq!(py_float(f64::NEG_INFINITY), "-inf");
    assert_eq!(py_shape(&[]), "()");
    assert_eq!(py_shape(&[3]), "(3,)");
    assert_eq!(py_shape(&[2, 3]), "(2, 3)");
}

// --- unflatten -------------------------------------------------------------------------------

#[test]
fn unflatten_builds_nested_json() {
    let mut tree = BTreeMap::new();
    tree.insert("a.v".to_owned(), json!(1));
    tree.insert("a.s".to_owned(), json!(2));
    tree.insert("items.[1]".to_owned(), json!("second"));
    tree.insert("items.[0]".to_owned(), json!("first"));
    tree.insert(r"named.{we.ird\{\}}".to_owned(), json!(3));
    tree.insert("named.{k1}".to_owned(), json!(4));
    tree.insert("deep.[0].{k}.x".to_owned(), json!(5));
    let v = unflatten(&tree).expect("unflattens");
    assert_eq!(
        v,
        json!({"a":{"v":1,"s":2},"items":["first","second"],"named":{"we.ird{}":3,"k1":4},"deep":[{"k":{"x":5}}]})
    );
    assert_eq!(unflatten(&BTreeMap::new()).expect("empty"), json!({}));
}

#[test]
fn unflatten_rejects_inconsistent_trees() {
    let cases: [&[&str]; 5] = [
        &["items.[0]", "items.[2]"],
        &["a", "a.v"],
        &["a.v", "a.[0]"],
        &["a..b"],
        &["items.[1]"],
    ];
    for paths in cases {
        let tree: BTreeMap<String, Value> =
            paths.iter().map(|p| ((*p).to_owned(), json!(0))).collect();
        assert!(unflatten(&tree).is_err(), "{paths:?}");
    }
    let tree: BTreeMap<String, Value> = [("x.[1]".to_owned(), json!(0))].into();
    let e = unflatten(&tree).expect_err("sparse");
    assert_eq!(e.path, "x");
}

#[test]
fn base64_with_a_multibyte_character_near_its_end_is_an_error_not_a_panic() {
    // Found by fuzzing: the head/tail split fell inside a two-byte character.
    for compression in [None, Some("lz4")] {
        let mut data = json!({"buffer": "BCJNGGhABAAAAAAAAADNinayBAAAeaAAYkI\u{23e}*AA", "encoding": "base64"});
        if let Some(c) = compression {
            data["compression"] = json!(c);
        }
        let v = json!({"object_type": "array", "shape": [1], "dtype": "float32", "data": data});
        assert!(decode(v).is_err());
    }
}
