//! The batch rule: arbitrary (co)tangent and reference shapes. `plan` never panics or
//! overflows; whatever it accepts is within the limits, and (when small enough to build)
//! fitting a real tensor gives `B ++ target`, and flattening then restoring is the identity.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tesseract_model::schema::{Dim, ShapeSpec};
use tesseract_model::{DType, Tensor, Vectors};
use tesseract_wire::batch::{self, Limits, Reference};
use tesseract_wire::codec::{DecodeOptions, checked_numel};

/// Dimensions from bytes: mostly small, sometimes 0 or huge, so products overflow.
fn dims(bytes: &[u8]) -> Vec<usize> {
    bytes
        .iter()
        .map(|&b| match b {
            0xF0..=0xFF => usize::MAX >> (b & 0x0F),
            b => usize::from(b % 8),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let [mode, split, rest @ ..] = data else {
        return;
    };
    let split = usize::from(*split).min(rest.len());
    let (shape, reference) = rest.split_at(split);
    let shape = dims(&shape[..shape.len().min(8)]);
    let reference = dims(&reference[..reference.len().min(6)]);
    let reference = match mode % 3 {
        0 => Reference::Actual(reference),
        1 => Reference::Declared(ShapeSpec::Ranked(
            reference
                .iter()
                .map(|&d| if d == 0 { Dim::Any } else { Dim::Fixed(d) })
                .collect(),
        )),
        _ => Reference::Declared(ShapeSpec::AnyRank),
    };
    let limits = Limits {
        max_batch: 64,
        max_vector_bytes: 1 << 16,
    };
    let Ok(fit) = batch::plan(&shape, DType::Float64, &reference, &limits) else {
        return;
    };
    let k = fit.count();
    assert!(k <= limits.max_batch && k >= 1 || fit.batch.is_empty());
    // A ranked reference can broadcast the (co)tangent, so its size once fitted is bounded; an
    // any-rank one is taken as it came (already decoded, nothing made) and is not.
    if !matches!(reference, Reference::Declared(ShapeSpec::AnyRank)) {
        assert!(batch::vector_bytes(k, &fit.target, DType::Float64) <= limits.max_vector_bytes);
    }
    let Some(n) = checked_numel(&shape).filter(|&n| n <= 1 << 13) else {
        return;
    };
    let values: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let t = Tensor::new(shape.clone(), tesseract_model::Data::Float64(values)).expect("consistent");
    let (out, b) = batch::fit_vector(t, &reference, &limits, &DecodeOptions::default()).expect("plan accepted it");
    assert_eq!(b, fit.batch);
    assert_eq!(
        out.shape(),
        [fit.batch.clone(), fit.target.clone()].concat()
    );
    if !b.is_empty() {
        let mut v = Vectors::new();
        v.insert("x".into(), out.clone());
        let (flat, k2) = batch::flatten_batch(v.clone(), &b).expect("starts with B");
        assert_eq!(k2, k);
        assert_eq!(batch::restore_batch(flat, &b).expect("K rows"), v);
    }
});
