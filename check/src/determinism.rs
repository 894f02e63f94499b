//! Determinism: two identical calls give identical bits.

use tesseract_model::{Data, Leaf, Tensor, Tree, Vectors};

use crate::point::Point;
use crate::session::{Checked, Measured, Session, Stop};
use crate::subject::Endpoint;
use crate::values::unflatten;

/// Whether two tensors hold the same bits (NaN payloads included).
fn same_bits(a: &Tensor, b: &Tensor) -> bool {
    if a.shape() != b.shape() {
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

fn leaves_differ(a: &Leaf, b: &Leaf) -> bool {
    match (a, b) {
        (Leaf::Tensor(x), Leaf::Tensor(y)) => !same_bits(x, y),
        (Leaf::Plain(x), Leaf::Plain(y)) => x != y,
        _ => true,
    }
}

/// The first path whose leaves differ, or a key set that differs.
fn first_difference<'a, V>(
    a: &'a std::collections::BTreeMap<String, V>,
    b: &std::collections::BTreeMap<String, V>,
    differ: impl Fn(&V, &V) -> bool,
) -> Option<&'a str> {
    if a.len() != b.len() || a.keys().ne(b.keys()) {
        return Some("(the set of paths)");
    }
    a.iter()
        .zip(b.values())
        .find(|((_, x), y)| differ(x, y))
        .map(|((p, _), _)| p.as_str())
}

fn judge(endpoint: Endpoint, differs: Option<&str>) -> Checked {
    match differs {
        None => Ok(Measured::yes()),
        Some(p) => Err(Stop::Fail(format!(
            "two identical {} calls returned different bits for `{p}`",
            endpoint.short()
        ))),
    }
}

/// apply twice at the base point (the first call is the point's own).
pub fn apply(s: &mut Session, point: &Point) -> Checked {
    let again: Tree = s.apply(&point.inputs)?;
    judge(
        Endpoint::Apply,
        first_difference(&point.outputs, &again, leaves_differ),
    )
}

/// jvp or vjp twice with one random (co)tangent.
pub fn product(s: &mut Session, point: &Point, endpoint: Endpoint) -> Checked {
    if point.ins.is_empty() || point.outs.is_empty() {
        return Err(Stop::Skip(
            "no differentiable float array inputs and outputs here".into(),
        ));
    }
    if !s.serves(endpoint) {
        return Err(Stop::Skip(format!("{} is not served", endpoint.short())));
    }
    let (ins, outs) = (point.in_paths(), point.out_paths());
    let twice = |s: &mut Session, dir: &Vectors| -> Result<(Vectors, Vectors), Stop> {
        let call = |s: &mut Session| match endpoint {
            Endpoint::Vjp => s.vjp(&point.inputs, &ins, &outs, dir),
            _ => s.jvp(&point.inputs, &ins, &outs, dir),
        };
        Ok((call(s)?, call(s)?))
    };
    let dir = match endpoint {
        Endpoint::Vjp => unflatten(&point.cotangent(&mut s.rng), &point.outs, 1, false),
        _ => unflatten(&point.tangent(&mut s.rng), &point.ins, 1, false),
    };
    let (a, b) = twice(s, &dir)?;
    judge(endpoint, first_difference(&a, &b, |x, y| !same_bits(x, y)))
}
