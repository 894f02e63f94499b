//! Properties on stable (proptest): encode → decode round-trips for every dtype and encoding,
//! and the batch rule's bookkeeping: a batch fitted, flattened to K rows and restored is the
//! same as fitting each of its (co)tangents on its own (batched ≡ looped at the wire level).

use proptest::prelude::*;
use serde_json::Value;
use tesseract_model::path::Segment;
use tesseract_model::schema::{Dim, ShapeSpec};
use tesseract_model::{DType, Data, Tensor, Vectors};
use tesseract_wire::batch::{self, Limits, Reference};
use tesseract_wire::codec::{
    Answer, Compression, DecodeOptions, EncodedArray, OutputFormat, decode_array, encode_array,
};

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..5, 0..4)
}

/// A tensor of any supported dtype, any small shape, and values that include the edge cases
/// (NaN, ±Inf, -0.0, extremes) for the dtypes that have them.
fn tensor() -> impl Strategy<Value = Tensor> {
    (shape(), 0..5u8).prop_flat_map(|(shape, d)| {
        let n: usize = shape.iter().product();
        let data = match d {
            0 => prop::collection::vec(any::<f64>(), n)
                .prop_map(Data::Float64)
                .boxed(),
            1 => prop::collection::vec(any::<f32>(), n)
                .prop_map(Data::Float32)
                .boxed(),
            2 => prop::collection::vec(any::<i64>(), n)
                .prop_map(Data::Int64)
                .boxed(),
            3 => prop::collection::vec(any::<i32>(), n)
                .prop_map(Data::Int32)
                .boxed(),
            _ => prop::collection::vec(any::<bool>(), n)
                .prop_map(Data::Bool)
                .boxed(),
        };
        data.prop_map(move |data| Tensor::new(shape.clone(), data).expect("n elements"))
    })
}

/// Bitwise equality, so NaN payloads and -0.0 count.
fn same_bits(a: &Tensor, b: &Tensor) -> bool {
    if a.shape() != b.shape() || a.dtype() != b.dtype() {
        return false;
    }
    match (a.data(), b.data()) {
        (Data::Float64(x), Data::Float64(y)) => x
            .iter()
            .map(|v| v.to_bits())
            .eq(y.iter().map(|v| v.to_bits())),
        (Data::Float32(x), Data::Float32(y)) => x
            .iter()
            .map(|v| v.to_bits())
            .eq(y.iter().map(|v| v.to_bits())),
        (x, y) => x == y,
    }
}

fn decode(v: &Value) -> Tensor {
    decode_array(v, &DecodeOptions::default()).expect("our own encoding decodes")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// base64 and base64 + lz4 carry the bytes exactly, NaN payloads included.
    #[test]
    fn base64_round_trips_bitwise(t in tensor(), lz4 in any::<bool>()) {
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        let encoded = encode_array(&t, OutputFormat::JsonBase64, compression);
        // Through text, as on the wire.
        let text = serde_json::to_string(&encoded).expect("serializes");
        let back = decode(&serde_json::from_str(&text).expect("parses"));
        prop_assert!(same_bits(&back, &t), "{t:?} → {back:?}");
    }

    /// The base64 written is the standard encoding of the little-endian bytes, character for
    /// character (the encoder is SIMD; the `base64` crate is the reference).
    #[test]
    fn base64_is_the_standard_encoding(t in tensor()) {
        use base64::Engine as _;
        let encoded = encode_array(&t, OutputFormat::JsonBase64, Compression::None);
        let bytes: Vec<u8> = match t.data() {
            Data::Float64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Float32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Int64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Int32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
        };
        let want = base64::engine::general_purpose::STANDARD.encode(bytes);
        prop_assert_eq!(encoded["data"]["buffer"].as_str(), Some(want.as_str()));
    }

    /// A base64 buffer, possibly broken by one character, decodes exactly when the `base64`
    /// crate accepts it and finds the bytes the shape needs, and then to the same bytes.
    #[test]
    fn base64_is_accepted_exactly_as_the_standard_decoder_does(
        words in prop::collection::vec(any::<u32>(), 0..80),
        broken in prop::option::of((any::<prop::sample::Index>(), prop::sample::select(
            vec![b'=', b'-', b'_', b' ', b'\n', b'!', b'A', b'/', b'+', 0xC3],
        ))),
    ) {
        use base64::Engine as _;
        let standard = base64::engine::general_purpose::STANDARD;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut text = standard.encode(&bytes).into_bytes();
        if let Some((at, c)) = broken && !text.is_empty() {
            let i = at.index(text.len());
            text[i] = c;
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        let standard_answer = standard.decode(&text);
        // int32 decodes straight into the elements; uint8 goes through a byte vector and is
        // widened.
        for (dtype, n) in [("int32", words.len()), ("uint8", bytes.len())] {
            let array = serde_json::json!({
                "object_type": "array", "shape": [n], "dtype": dtype,
                "data": {"buffer": text, "encoding": "base64"},
            });
            let ours = decode_array(&array, &DecodeOptions::default());
            match &standard_answer {
                Ok(want) if want.len() == bytes.len() => {
                    let got = ours.map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
                    let got: Vec<u8> = match got.data() {
                        Data::Int32(v) if dtype == "int32" => {
                            v.iter().flat_map(|x| x.to_le_bytes()).collect()
                        }
                        Data::Int32(v) => v.iter().map(|&x| x as u8).collect(),
                        other => return Err(TestCaseError::fail(format!("{other:?}"))),
                    };
                    prop_assert_eq!(&got, want);
                }
                _ => prop_assert!(ours.is_err(), "{text:?} was accepted as {dtype}"),
            }
        }
    }

    /// JSON keeps the dtype and shape and every finite value; NaN and ±Inf become null, as
    /// upstream writes them, so they are left out here (the nonfinite tests cover them).
    #[test]
    fn json_round_trips_finite_values(t in tensor()) {
        let finite = t.data().to_f64().iter().all(|x| x.is_finite());
        prop_assume!(finite);
        let encoded = encode_array(&t, OutputFormat::Json, Compression::None);
        let text = serde_json::to_string(&encoded).expect("serializes");
        let back = decode(&serde_json::from_str(&text).expect("parses"));
        prop_assert_eq!(back.shape(), t.shape());
        prop_assert_eq!(back.dtype(), t.dtype());
        // -0.0 == 0.0 here: JSON may write either.
        prop_assert_eq!(back.data().to_f64(), t.data().to_f64());
    }

    /// An array written straight from its tensor is byte for byte the serialized
    /// `encode_array` value, in every format: same digits, same nulls, same key order.
    #[test]
    fn direct_encoding_is_the_values_bytes(t in tensor(), json in any::<bool>(), lz4 in any::<bool>()) {
        let format = if json { OutputFormat::Json } else { OutputFormat::JsonBase64 };
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        let direct = serde_json::to_string(&EncodedArray { tensor: &t, format, compression })
            .expect("serializes");
        let via_value = serde_json::to_string(&encode_array(&t, format, compression))
            .expect("serializes");
        prop_assert_eq!(direct, via_value);
    }

    /// An answer writes the JSON of the value it derefs to, with arrays nested in objects and
    /// lists next to plain values (keys and strings that need escaping among them).
    #[test]
    fn answer_serializes_as_its_value(
        a in tensor(), b in tensor(), json in any::<bool>(), lz4 in any::<bool>(),
    ) {
        let format = if json { OutputFormat::Json } else { OutputFormat::JsonBase64 };
        let compression = if lz4 { Compression::Lz4 } else { Compression::None };
        let skeleton = serde_json::json!({
            "z\"é": null, "m": {"items": [1, null, "x\n\u{1}"]}, "p": 0.1,
        });
        let mut answer = Answer::new(skeleton, format, compression);
        answer.put(&[Segment::Key("z\"é".into())], a.clone());
        answer.put(
            &[Segment::Field("m".into()), Segment::Field("items".into()), Segment::Index(1)],
            b.clone(),
        );
        let written = answer.to_json_vec().expect("writes");
        let want = serde_json::json!({
            "z\"é": encode_array(&a, format, compression),
            "m": {"items": [1, encode_array(&b, format, compression), "x\n\u{1}"]},
            "p": 0.1,
        });
        prop_assert_eq!(
            String::from_utf8_lossy(&written),
            serde_json::to_string(&want).expect("serializes")
        );
        prop_assert_eq!(&*answer, &want);
        prop_assert_eq!(answer.into_value(), want);
    }
}

/// A reference shape `P`, a batch shape `B`, and a (co)tangent of shape `B ++ P'` where `P'`
/// is `P` with some dimensions replaced by 1 (they broadcast).
fn batch_case() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<bool>, u8)> {
    (
        prop::collection::vec(1usize..4, 0..3),
        prop::collection::vec(1usize..4, 0..3),
        prop::collection::vec(any::<bool>(), 3),
        0..2u8,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Fitting a batch at once, then flattening to K rows, gives row k equal to fitting the
    /// k-th (co)tangent alone; restoring the rows gives the fitted batch back.
    #[test]
    fn a_fitted_batch_is_its_members_fitted_one_by_one((p, b, ones, declared) in batch_case()) {
        let trailing: Vec<usize> = p
            .iter()
            .zip(&ones)
            .map(|(&d, &one)| if one { 1 } else { d })
            .collect();
        let shape = [b.clone(), trailing.clone()].concat();
        let n: usize = shape.iter().product();
        let t = Tensor::new(shape, Data::Float64((0..n).map(|i| i as f64).collect()))
            .expect("n elements");
        let reference = if declared == 0 {
            Reference::Actual(p.clone())
        } else {
            Reference::Declared(ShapeSpec::Ranked(p.iter().map(|&d| Dim::Fixed(d)).collect()))
        };
        let limits = Limits { max_batch: 4096, max_vector_bytes: u64::MAX };
        let (fitted, batch_shape) = batch::fit_vector(t.clone(), &reference, &limits, &DecodeOptions::default()).expect("fits");
        prop_assert_eq!(&batch_shape, &b);
        let want = [b.clone(), p.clone()].concat();
        prop_assert_eq!(fitted.shape(), want.as_slice());

        let mut v = Vectors::new();
        v.insert("x".into(), fitted.clone());
        let (flat, k) = batch::flatten_batch(v.clone(), &b).expect("starts with B");
        prop_assert_eq!(k, b.iter().product::<usize>());
        let rows = flat["x"].unstack().expect("K rows");
        let members: Vec<Tensor> = if b.is_empty() {
            vec![t.clone()]
        } else {
            t.reshape([vec![k], trailing.clone()].concat()).expect("same size").unstack().expect("rows")
        };
        for (row, member) in rows.iter().zip(members) {
            let (alone, no_batch) = batch::fit_vector(member, &reference, &limits, &DecodeOptions::default()).expect("fits alone");
            prop_assert!(no_batch.is_empty());
            if b.is_empty() {
                prop_assert_eq!(&alone, &fitted);
            } else {
                prop_assert_eq!(&alone, row);
            }
        }
        prop_assert_eq!(batch::restore_batch(flat, &b).expect("K rows"), v);
    }

    /// An unbatched entry next to a batched one is copied to every member of the batch.
    #[test]
    fn unbatched_entries_are_the_same_for_every_member((p, b, _, _) in batch_case()) {
        prop_assume!(!b.is_empty());
        let n: usize = p.iter().product();
        let single = Tensor::new(p.clone(), Data::Float32((0..n).map(|i| i as f32).collect())).expect("n");
        let many_shape = [b.clone(), p.clone()].concat();
        let many = Tensor::zeros(DType::Float32, many_shape).expect("small");
        let limits = Limits { max_batch: 4096, max_vector_bytes: u64::MAX };
        let fitted = vec![
            ("many".to_owned(), many, b.clone()),
            ("one".to_owned(), single.clone(), Vec::new()),
        ];
        let (v, batch_shape) = batch::assemble("tangent_vector", fitted, &limits, &DecodeOptions::default()).expect("agree");
        prop_assert_eq!(&batch_shape, &b);
        let k: usize = b.iter().product();
        let (flat, _) = batch::flatten_batch(v, &b).expect("B");
        let rows = flat["one"].unstack().expect("rows");
        prop_assert_eq!(rows.len(), k);
        for row in rows {
            prop_assert_eq!(&row, &single);
        }
    }
}
