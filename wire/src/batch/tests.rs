use tesseract_model::schema::{Dim, ShapeSpec};
use tesseract_model::{DType, Data, Tensor};

use super::*;
use crate::codec::DecodeLimits;

const ROOMY: Limits = Limits {
    max_batch: 4096,
    max_vector_bytes: u64::MAX,
};

fn actual(shape: &[usize]) -> Reference {
    Reference::Actual(shape.to_vec())
}

fn arange(shape: &[usize]) -> Tensor {
    let n = checked_numel(shape).expect("small shape");
    let v: Vec<f64> = (0..n).map(|i| i as f64).collect();
    Tensor::new(shape.to_vec(), Data::Float64(v)).expect("consistent")
}

#[test]
fn same_rank_is_one_vector_and_leading_axes_are_a_batch() {
    let one = plan(&[3], DType::Float64, &actual(&[3]), &ROOMY).expect("fits");
    assert_eq!((one.batch.as_slice(), one.count()), (&[][..], 1));
    let many = plan(&[2, 4, 3], DType::Float64, &actual(&[3]), &ROOMY).expect("fits");
    assert_eq!(many.batch, vec![2, 4]);
    assert_eq!(many.count(), 8);
    assert_eq!(many.target, vec![3]);
}

#[test]
fn refusals_name_the_shape_or_the_limit() {
    let e = plan(&[3], DType::Float64, &actual(&[2, 3]), &ROOMY).expect_err("too few dims");
    assert!(e.contains("fewer dimensions"), "{e}");
    let e = plan(&[2, 4], DType::Float64, &actual(&[3]), &ROOMY).expect_err("wrong tail");
    assert!(e.contains("does not end with"), "{e}");
    let e = plan(&[0, 3], DType::Float64, &actual(&[3]), &ROOMY).expect_err("empty");
    assert!(e.contains("at least one"), "{e}");
    let small = Limits {
        max_batch: 4,
        ..ROOMY
    };
    let e = plan(&[5, 3], DType::Float64, &actual(&[3]), &small).expect_err("K > 4");
    assert!(e.contains("--max-batch"), "{e}");
    // A batch whose product overflows usize is over any limit, not a panic.
    let e = plan(
        &[usize::MAX, usize::MAX, 3],
        DType::Float64,
        &actual(&[3]),
        &ROOMY,
    )
    .expect_err("overflow");
    assert!(e.contains("--max-batch"), "{e}");
    // Zero elements, but the other dimensions multiply past usize: refused, not half-built.
    let e = plan(
        &[2, usize::MAX / 2 + 1, 0],
        DType::Float64,
        &actual(&[usize::MAX / 2 + 1, 0]),
        &ROOMY,
    )
    .expect_err("overflow behind a zero");
    assert!(e.contains("can address"), "{e}");
    let tight = Limits {
        max_vector_bytes: 100,
        ..ROOMY
    };
    let e = plan(&[4, 1], DType::Float64, &actual(&[4]), &tight).expect_err("128 B > 100 B");
    assert!(e.contains("--max-memory"), "{e}");
}

#[test]
fn declared_shapes_broadcast_size_one_and_any_rank_is_never_batched() {
    let spec = Reference::Declared(ShapeSpec::Ranked(vec![Dim::Fixed(3), Dim::Any]));
    let fit = plan(&[2, 1, 5], DType::Float32, &spec, &ROOMY).expect("fits");
    assert_eq!((fit.batch, fit.target), (vec![2], vec![3, 5]));
    let any = plan(
        &[7, 7, 7],
        DType::Float32,
        &Reference::Declared(ShapeSpec::AnyRank),
        &ROOMY,
    )
    .expect("fits");
    assert!(any.batch.is_empty());
}

#[test]
fn fit_vector_broadcasts_each_member_of_the_batch() {
    let t = arange(&[2, 1]);
    let (out, batch) =
        fit_vector(t, &actual(&[3]), &ROOMY, &DecodeOptions::default()).expect("fits");
    assert_eq!(batch, vec![2]);
    assert_eq!(out.shape(), &[2, 3]);
    assert_eq!(out.data().to_f64(), vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
}

#[test]
fn assemble_copies_unbatched_entries_and_refuses_disagreeing_batches() {
    let fitted = vec![
        ("a".to_owned(), arange(&[2, 3, 2]), vec![2, 3]),
        ("b".to_owned(), arange(&[2]), vec![]),
    ];
    let (v, batch) =
        assemble("tangent_vector", fitted, &ROOMY, &DecodeOptions::default()).expect("agree");
    assert_eq!(batch, vec![2, 3]);
    assert_eq!(v["b"].shape(), &[2, 3, 2]);
    assert_eq!(v["b"].data().to_f64()[10..], [0.0, 1.0]);

    let fitted = vec![
        ("a".to_owned(), arange(&[2, 3]), vec![2]),
        ("b".to_owned(), arange(&[4, 3]), vec![4]),
    ];
    let errs =
        assemble("tangent_vector", fitted, &ROOMY, &DecodeOptions::default()).expect_err("2 vs 4");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].key.as_deref(), Some("b"));

    // Copying the unbatched entry 4096 times would pass the limit: refused before copying.
    let fitted = vec![
        ("a".to_owned(), arange(&[4096, 1]), vec![4096]),
        ("b".to_owned(), arange(&[1000]), vec![]),
    ];
    let tight = Limits {
        max_vector_bytes: 1 << 20,
        ..ROOMY
    };
    let errs = assemble("tangent_vector", fitted, &tight, &DecodeOptions::default())
        .expect_err("32 MB > 1 MiB");
    assert_eq!(errs[0].key, None);
}

/// Broadcasts and copies across the batch are allocations of the request: they are charged to
/// its element budget, before they are made, like decoded arrays.
#[test]
fn broadcasts_and_copies_count_against_the_request_element_budget() {
    let budget = |max: u64| DecodeOptions {
        limits: DecodeLimits {
            max_request_elements: max,
            ..DecodeLimits::default()
        },
        ..DecodeOptions::default()
    };
    // [4, 1] broadcast to [4, 1000]: 4000 new elements.
    let opts = budget(3999);
    let err =
        fit_vector(arange(&[4, 1]), &actual(&[1000]), &ROOMY, &opts).expect_err("4000 > 3999");
    assert!(err.contains("--max-request-elements"), "{err}");
    let opts = budget(4000);
    let (out, _) = fit_vector(arange(&[4, 1]), &actual(&[1000]), &ROOMY, &opts).expect("fits");
    assert_eq!(out.shape(), &[4, 1000]);
    // The budget is shared: the same options have nothing left for a second broadcast.
    assert!(
        fit_vector(arange(&[1, 1]), &actual(&[1]), &ROOMY, &opts).is_ok(),
        "no copy, no charge"
    );
    assert!(fit_vector(arange(&[2, 1]), &actual(&[2]), &ROOMY, &opts).is_err());

    // An unbatched entry of 1000 copied across a batch of 8: 8000 new elements.
    let fitted = || {
        vec![
            ("a".to_owned(), arange(&[8, 1]), vec![8]),
            ("b".to_owned(), arange(&[1000]), vec![]),
        ]
    };
    let errs = assemble("tangent_vector", fitted(), &ROOMY, &budget(7999)).expect_err("8000");
    assert_eq!(errs[0].key.as_deref(), Some("b"));
    assert!(
        errs[0].msg.contains("--max-request-elements"),
        "{}",
        errs[0].msg
    );
    let (v, _) = assemble("tangent_vector", fitted(), &ROOMY, &budget(8000)).expect("fits");
    assert_eq!(v["b"].shape(), &[8, 1000]);
    assert_eq!(v["b"].data().to_f64()[7000..7003], [0.0, 1.0, 2.0]);
}

#[test]
fn flatten_then_restore_is_the_identity_and_checks_leading_axes() {
    let mut v = Vectors::new();
    v.insert("x".into(), arange(&[2, 3, 4]));
    v.insert("y".into(), arange(&[2, 3]));
    let (flat, k) = flatten_batch(v.clone(), &[2, 3]).expect("starts with B");
    assert_eq!(k, 6);
    assert_eq!(flat["x"].shape(), &[6, 4]);
    assert_eq!(flat["y"].shape(), &[6]);
    assert_eq!(restore_batch(flat, &[2, 3]).expect("K = 6"), v);

    let mut bad = Vectors::new();
    bad.insert("x".into(), arange(&[6]));
    assert!(flatten_batch(bad.clone(), &[2, 3]).is_err());
    assert!(restore_batch(bad, &[2, 2]).is_err());
}

/// Limits are inclusive: exactly `max_batch` vectors and exactly `max_vector_bytes` pass, one
/// more does not.
#[test]
fn limits_admit_exactly_their_value() {
    let at = |max_batch: usize, max_vector_bytes: u64| Limits {
        max_batch,
        max_vector_bytes,
    };
    let fit = plan(&[4, 3], DType::Float64, &actual(&[3]), &at(4, u64::MAX)).expect("K = 4");
    assert_eq!(fit.count(), 4);
    assert!(plan(&[4, 3], DType::Float64, &actual(&[3]), &at(3, u64::MAX)).is_err());
    // [4, 1] broadcast to [4, 4] float64: 128 bytes.
    assert!(plan(&[4, 1], DType::Float64, &actual(&[4]), &at(4096, 128)).is_ok());
    assert!(plan(&[4, 1], DType::Float64, &actual(&[4]), &at(4096, 127)).is_err());
}

/// Batch shapes must be equal, not merely of equal size or rank.
#[test]
fn batch_shapes_with_the_same_size_or_rank_still_disagree() {
    for (a, b) in [(&[2, 3][..], &[3, 2][..]), (&[6][..], &[2, 3][..])] {
        let errs = common_batch([("a", a), ("b", b)]).expect_err("different batch shapes");
        assert_eq!(errs.len(), 1, "{a:?} vs {b:?}");
        assert_eq!(errs[0].key.as_deref(), Some("b"));
        assert!(errs[0].msg.contains("must share their leading batch axes"));
    }
    assert_eq!(
        common_batch([("a", &[2, 3][..]), ("b", &[][..]), ("c", &[2, 3][..])]),
        Ok(vec![2, 3])
    );
}
