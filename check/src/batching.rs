//! Batching checks: K (co)tangents in one batched call equal K single calls, for K ∈ {1, 3, 8},
//! whatever serves the batch (export, loop or jacobian); and a batched export equals the
//! host's looped fallback.

use tesseract_model::Vectors;

use crate::point::Point;
use crate::session::{Checked, Measured, Session, Stop};
use crate::subject::{Endpoint, Subject};
use crate::values::{Slot, flatten, flatten_batch, relative_error, unflatten};

/// The batch sizes checked.
pub const BATCH_SIZES: [usize; 3] = [1, 3, 8];

/// The batch size the export is compared with the looped fallback at.
const FALLBACK_K: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Jvp,
    Vjp,
}

impl Side {
    pub fn batched(self) -> Endpoint {
        match self {
            Side::Jvp => Endpoint::BatchedJvp,
            Side::Vjp => Endpoint::BatchedVjp,
        }
    }

    pub fn single(self) -> Endpoint {
        match self {
            Side::Jvp => Endpoint::Jvp,
            Side::Vjp => Endpoint::Vjp,
        }
    }

    /// (direction slots, result slots).
    fn slots(self, point: &Point) -> (&[Slot], &[Slot]) {
        match self {
            Side::Jvp => (&point.ins, &point.outs),
            Side::Vjp => (&point.outs, &point.ins),
        }
    }

    fn directions(self, s: &mut Session, point: &Point, k: usize) -> Vec<f64> {
        (0..k)
            .flat_map(|_| match self {
                Side::Jvp => point.tangent(&mut s.rng),
                Side::Vjp => point.cotangent(&mut s.rng),
            })
            .collect()
    }
}

fn needs(s: &Session, point: &Point, endpoints: &[Endpoint]) -> Result<(), Stop> {
    if point.ins.is_empty() || point.outs.is_empty() {
        return Err(Stop::Skip(
            "no differentiable float array inputs and outputs here".into(),
        ));
    }
    match endpoints.iter().find(|e| !s.serves(**e)) {
        Some(e) => Err(Stop::Skip(format!("{} is not served", e.short()))),
        None => Ok(()),
    }
}

fn batched(
    s: &mut Session,
    point: &Point,
    side: Side,
    dirs: &Vectors,
    k: usize,
) -> Result<Vectors, Stop> {
    let (ins, outs) = (point.in_paths(), point.out_paths());
    match side {
        Side::Jvp => s.batched_jvp(&point.inputs, &ins, &outs, dirs, k),
        Side::Vjp => s.batched_vjp(&point.inputs, &ins, &outs, dirs, k),
    }
}

/// One batched call of `k` random (co)tangents against `k` single calls.
pub fn against_singles(s: &mut Session, point: &Point, side: Side, k: usize) -> Checked {
    needs(s, point, &[side.batched(), side.single()])?;
    let (dir_slots, result_slots) = side.slots(point);
    let flat = side.directions(s, point, k);
    let out = batched(s, point, side, &unflatten(&flat, dir_slots, k, true), k)?;
    let got = flatten_batch(&out, result_slots, k).map_err(Stop::Fail)?;
    let (ins, outs) = (point.in_paths(), point.out_paths());
    let n = dir_slots.iter().map(Slot::elements).sum::<usize>();
    let mut want = Vec::with_capacity(k);
    for one in flat.chunks(n.max(1)).take(k) {
        let dir = unflatten(one, dir_slots, 1, false);
        let single = match side {
            Side::Jvp => s.jvp(&point.inputs, &ins, &outs, &dir)?,
            Side::Vjp => s.vjp(&point.inputs, &ins, &outs, &dir)?,
        };
        want.push(flatten(&single, result_slots, &[]).map_err(Stop::Fail)?);
    }
    let tolerance = point.precision.exact_tolerance;
    let floor = point.precision.floor;
    // Judged per element of the batch, so the report names the one that disagrees.
    let errors: Vec<f64> = got
        .iter()
        .zip(&want)
        .map(|(g, w)| relative_error(g, w, floor))
        .collect();
    let (worst_at, worst) = errors.iter().copied().enumerate().fold(
        (0, 0.0f64),
        |(i, m), (j, e)| if e > m { (j, e) } else { (i, m) },
    );
    let m = Measured::within(worst, tolerance);
    Ok(if worst > tolerance {
        m.detail(format!(
            "batch element {worst_at} of {k} differs from its single {} (error {worst:.2e}, tolerance {tolerance:.1e})",
            side.single().short()
        ))
    } else {
        m
    })
}

/// The batched export against the host's looped fallback, at K = 8.
pub fn against_fallback(s: &mut Session, point: &Point, side: Side) -> Checked {
    let Some(fallback) = s.subject.looped_fallback() else {
        return Err(Stop::Skip(
            "no batched export to compare with the looped fallback".into(),
        ));
    };
    needs(s, point, &[side.batched()])?;
    if s.subject.route(side.batched()).as_deref() != Some("native") {
        return Err(Stop::Skip(format!(
            "no batched {} export",
            side.single().short()
        )));
    }
    let (dir_slots, result_slots) = side.slots(point);
    let flat = side.directions(s, point, FALLBACK_K);
    let dirs = unflatten(&flat, dir_slots, FALLBACK_K, true);
    let export = batched(s, point, side, &dirs, FALLBACK_K)?;
    let looped = looped(fallback, point, side, &dirs)
        .map_err(|e| Stop::Fail(format!("the looped fallback {e}")))?;
    let got = flatten_batch(&export, result_slots, FALLBACK_K).map_err(Stop::Fail)?;
    let want = flatten_batch(&looped, result_slots, FALLBACK_K).map_err(Stop::Fail)?;
    let floor = point.precision.floor;
    let errors: Vec<f64> = got
        .iter()
        .zip(&want)
        .map(|(g, w)| relative_error(g, w, floor))
        .collect();
    let worst = errors.iter().copied().fold(0.0f64, f64::max);
    let tolerance = point.precision.exact_tolerance;
    let m = Measured::within(worst, tolerance);
    Ok(match errors.iter().position(|&e| e > tolerance) {
        Some(i) => m.detail(format!(
            "batch element {i} of {FALLBACK_K} differs from the looped fallback (error {:.2e}, tolerance {tolerance:.1e})",
            errors[i]
        )),
        None => m,
    })
}

fn looped(
    fallback: &dyn Subject,
    point: &Point,
    side: Side,
    dirs: &Vectors,
) -> Result<Vectors, String> {
    let (ins, outs) = (point.in_paths(), point.out_paths());
    let r = match side {
        Side::Jvp => fallback.batched_jvp(&point.inputs, &ins, &outs, dirs, FALLBACK_K),
        Side::Vjp => fallback.batched_vjp(&point.inputs, &ins, &outs, dirs, FALLBACK_K),
    };
    r.map_err(|e| e.to_string())
}
