//! Gradient checks: jvp and vjp against central finite differences of apply, the dot-product
//! test `⟨c, J·t⟩ = ⟨Jᵀ·c, t⟩`, and the jacobian against jvps and vjps. Each measures a
//! relative error and judges it against the tolerance of the point's precision.

use crate::point::Point;
use crate::session::{Checked, Measured, Session, Stop};
use crate::subject::Endpoint;
use crate::values::{dot, flatten, flatten_tree, norm, perturb, relative_error, unflatten};

/// Above this many input elements, finite differences go along random directions instead of
/// building the whole jacobian column by column.
const MAX_FD_COLUMNS: usize = 64;

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

/// `(f(x + h·t) − f(x − h·t)) / 2h` over the differentiable outputs.
fn central_difference(s: &mut Session, point: &Point, t: &[f64]) -> Result<Vec<f64>, Stop> {
    let h = point.step;
    let plus = s.apply(&perturb(&point.inputs, &point.ins, t, h))?;
    let minus = s.apply(&perturb(&point.inputs, &point.ins, t, -h))?;
    let plus = flatten_tree(&plus, &point.outs).map_err(Stop::Fail)?;
    let minus = flatten_tree(&minus, &point.outs).map_err(Stop::Fail)?;
    Ok(plus
        .iter()
        .zip(&minus)
        .map(|(p, m)| (p - m) / (2.0 * h))
        .collect())
}

/// The jacobian by central differences, `n_out × n_in` row-major, when small enough.
fn fd_jacobian(s: &mut Session, point: &Point) -> Result<Option<Vec<Vec<f64>>>, Stop> {
    let n = point.n_in();
    if n > MAX_FD_COLUMNS {
        return Ok(None);
    }
    let mut columns = Vec::with_capacity(n);
    for i in 0..n {
        let mut e = vec![0.0; n];
        e[i] = 1.0;
        columns.push(central_difference(s, point, &e)?);
    }
    let rows = (0..point.n_out())
        .map(|r| columns.iter().map(|c| c[r]).collect())
        .collect();
    Ok(Some(rows))
}

fn mat_vec(m: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    m.iter().map(|row| dot(row, v)).collect()
}

fn mat_t_vec(m: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    let cols = m.first().map_or(0, Vec::len);
    (0..cols)
        .map(|j| m.iter().zip(v).map(|(row, x)| row[j] * x).sum())
        .collect()
}

fn jvp_flat(s: &mut Session, point: &Point, t: &[f64]) -> Result<Vec<f64>, Stop> {
    let tangent = unflatten(t, &point.ins, 1, false);
    let out = s.jvp(
        &point.inputs,
        &point.in_paths(),
        &point.out_paths(),
        &tangent,
    )?;
    flatten(&out, &point.outs, &[]).map_err(Stop::Fail)
}

fn vjp_flat(s: &mut Session, point: &Point, c: &[f64]) -> Result<Vec<f64>, Stop> {
    let cotangent = unflatten(c, &point.outs, 1, false);
    let out = s.vjp(
        &point.inputs,
        &point.in_paths(),
        &point.out_paths(),
        &cotangent,
    )?;
    flatten(&out, &point.ins, &[]).map_err(Stop::Fail)
}

/// The jacobian by finite differences (`None` when too large to build), then jvp and vjp
/// against finite differences.
pub fn finite_differences(
    s: &mut Session,
    point: &Point,
) -> (Option<Vec<Vec<f64>>>, Checked, Checked) {
    let fd = match needs(s, point, &[]).and_then(|()| fd_jacobian(s, point)) {
        Ok(fd) => fd,
        Err(e) => return (None, Err(e.clone()), Err(e)),
    };
    let tolerance = point.precision.fd_tolerance;
    let floor = point.precision.floor;
    let jvp = needs(s, point, &[Endpoint::Jvp]).and_then(|()| {
        let mut worst: f64 = 0.0;
        for _ in 0..s.samples {
            let t = point.tangent(&mut s.rng);
            let got = jvp_flat(s, point, &t)?;
            let want = match &fd {
                Some(j) => mat_vec(j, &t),
                None => central_difference(s, point, &t)?,
            };
            worst = worst.max(relative_error(&got, &want, floor));
        }
        Ok(Measured::within(worst, tolerance))
    });
    let vjp = needs(s, point, &[Endpoint::Vjp]).and_then(|()| {
        let mut worst: f64 = 0.0;
        for _ in 0..s.samples {
            let c = point.cotangent(&mut s.rng);
            let got = vjp_flat(s, point, &c)?;
            let err = match &fd {
                Some(j) => relative_error(&got, &mat_t_vec(j, &c), floor),
                None => {
                    // ⟨vjp(c), t⟩ against ⟨c, fd(t)⟩ along a random direction.
                    let t = point.tangent(&mut s.rng);
                    let fd_t = central_difference(s, point, &t)?;
                    let (a, b) = (dot(&got, &t), dot(&c, &fd_t));
                    let scale = (norm(&got) * norm(&t))
                        .max(norm(&c) * norm(&fd_t))
                        .max(floor);
                    (a - b).abs() / scale
                }
            };
            worst = worst.max(err);
        }
        Ok(Measured::within(worst, tolerance))
    });
    (fd, jvp, vjp)
}

/// `⟨c, J·t⟩ = ⟨Jᵀ·c, t⟩` for random `t` and `c`.
pub fn dot_product(s: &mut Session, point: &Point) -> Checked {
    needs(s, point, &[Endpoint::Jvp, Endpoint::Vjp])?;
    let mut worst: f64 = 0.0;
    for _ in 0..s.samples {
        let t = point.tangent(&mut s.rng);
        let c = point.cotangent(&mut s.rng);
        let jt = jvp_flat(s, point, &t)?;
        let jtc = vjp_flat(s, point, &c)?;
        let (a, b) = (dot(&c, &jt), dot(&jtc, &t));
        let scale = (norm(&c) * norm(&jt))
            .max(norm(&jtc) * norm(&t))
            .max(point.precision.floor);
        worst = worst.max((a - b).abs() / scale);
    }
    Ok(Measured::within(worst, point.precision.exact_tolerance))
}

/// The jacobian as one dense `n_out × n_in` matrix, slots in the point's order.
fn dense_jacobian(s: &mut Session, point: &Point) -> Result<Vec<Vec<f64>>, Stop> {
    let blocks = s.jacobian(&point.inputs, &point.in_paths(), &point.out_paths())?;
    let mut dense = vec![vec![0.0; point.n_in()]; point.n_out()];
    let mut row0 = 0;
    for o in &point.outs {
        let mut col0 = 0;
        for i in &point.ins {
            let block = blocks
                .get(&(o.path.clone(), i.path.clone()))
                .ok_or_else(|| Stop::Fail(format!("no jacobian block ({}, {})", o.path, i.path)))?;
            let data = block.data().to_f64();
            let (rows, cols) = (o.elements(), i.elements());
            if data.len() != rows * cols {
                return Err(Stop::Fail(format!(
                    "jacobian block ({}, {}) has {} elements, expected {}",
                    o.path,
                    i.path,
                    data.len(),
                    rows * cols
                )));
            }
            for r in 0..rows {
                dense[row0 + r][col0..col0 + cols].copy_from_slice(&data[r * cols..(r + 1) * cols]);
            }
            col0 += cols;
        }
        row0 += o.elements();
    }
    Ok(dense)
}

/// The jacobian against finite differences (`fd`, when built), against jvps (`J·t`) and
/// against vjps (`Jᵀ·c`).
pub fn jacobian(s: &mut Session, point: &Point, fd: Option<&[Vec<f64>]>) -> [Checked; 3] {
    let dense = match needs(s, point, &[Endpoint::Jacobian]).and_then(|()| dense_jacobian(s, point))
    {
        Ok(d) => d,
        Err(e) => return [Err(e.clone()), Err(e.clone()), Err(e)],
    };
    let (tolerance, floor) = (point.precision.exact_tolerance, point.precision.floor);
    let flat = |m: &[Vec<f64>]| m.concat();
    let against_fd = match fd {
        Some(fd) => Ok(Measured::within(
            relative_error(&flat(&dense), &flat(fd), floor),
            point.precision.fd_tolerance,
        )),
        None => Err(Stop::Skip(format!(
            "more than {MAX_FD_COLUMNS} input elements: checked through jvp and vjp instead"
        ))),
    };
    let jvp = needs(s, point, &[Endpoint::Jvp]).and_then(|()| {
        let mut worst: f64 = 0.0;
        for _ in 0..s.samples {
            let t = point.tangent(&mut s.rng);
            let got = jvp_flat(s, point, &t)?;
            worst = worst.max(relative_error(&mat_vec(&dense, &t), &got, floor));
        }
        Ok(Measured::within(worst, tolerance))
    });
    let vjp = needs(s, point, &[Endpoint::Vjp]).and_then(|()| {
        let mut worst: f64 = 0.0;
        for _ in 0..s.samples {
            let c = point.cotangent(&mut s.rng);
            let got = vjp_flat(s, point, &c)?;
            worst = worst.max(relative_error(&mat_t_vec(&dense, &c), &got, floor));
        }
        Ok(Measured::within(worst, tolerance))
    });
    [against_fd, jvp, vjp]
}
