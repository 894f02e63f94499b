//! Contract checks: every endpoint's result matches the declared schema (the session holds
//! every result to it; these rows make one call per endpoint so each is reported), abstract_eval
//! agrees with apply, and invalid inputs are refused as `invalid-input`, not with a trap.

use tesseract_model::schema::{FieldKind, ShapeSpec};
use tesseract_model::{AbstractLeaf, AbstractTree, Leaf, ShapeDType, Tensor, Tree};
use tesseract_wire::codec::py_shape;

use crate::point::Point;
use crate::session::{Checked, Measured, Session, Stop};
use crate::subject::{Endpoint, Failure};
use crate::values::unflatten;

/// The shapes and dtypes of a concrete tree, as abstract_eval takes it.
pub fn abstract_of(tree: &Tree) -> AbstractTree {
    tree.iter()
        .map(|(p, l)| {
            let leaf = match l {
                Leaf::Tensor(t) => AbstractLeaf::Array(ShapeDType {
                    shape: t.shape().to_vec(),
                    dtype: t.dtype(),
                }),
                Leaf::Plain(v) => AbstractLeaf::Plain(v.clone()),
            };
            (p.clone(), leaf)
        })
        .collect()
}

fn arrays(tree: &AbstractTree) -> Vec<(&String, &ShapeDType)> {
    tree.iter()
        .filter_map(|(p, l)| match l {
            AbstractLeaf::Array(sd) => Some((p, sd)),
            AbstractLeaf::Plain(_) => None,
        })
        .collect()
}

/// abstract_eval's shapes and dtypes equal apply's, native or derived.
pub fn abstract_eval(s: &mut Session, point: &Point) -> Checked {
    let said = s.abstract_eval(&abstract_of(&point.inputs))?;
    let actual = abstract_of(&point.outputs);
    let (said, actual) = (arrays(&said), arrays(&actual));
    for (p, sd) in &actual {
        match said.iter().find(|(q, _)| q == p) {
            None => {
                return Err(Stop::Fail(format!(
                    "abstract_eval omits output `{p}` that apply returns"
                )));
            }
            Some((_, got)) if got != sd => {
                return Err(Stop::Fail(format!(
                    "abstract_eval says `{p}` is {} {}, apply returned {} {}",
                    got.dtype,
                    py_shape(&got.shape),
                    sd.dtype,
                    py_shape(&sd.shape)
                )));
            }
            Some(_) => {}
        }
    }
    if let Some((p, _)) = said
        .iter()
        .find(|(p, _)| !actual.iter().any(|(q, _)| q == p))
    {
        return Err(Stop::Fail(format!(
            "abstract_eval reports `{p}`, which apply does not return"
        )));
    }
    Ok(Measured::yes())
}

fn needs_derivatives(point: &Point) -> Result<(), Stop> {
    if point.ins.is_empty() || point.outs.is_empty() {
        return Err(Stop::Skip(
            "no differentiable float array inputs and outputs here".into(),
        ));
    }
    Ok(())
}

/// One call to `endpoint` with random (co)tangents; the session judges the result's shape.
pub fn endpoint(s: &mut Session, point: &Point, endpoint: Endpoint) -> Checked {
    needs_derivatives(point)?;
    if !s.serves(endpoint) {
        return Err(Stop::Skip(format!("{} is not served", endpoint.short())));
    }
    let (ins, outs) = (point.in_paths(), point.out_paths());
    let x = &point.inputs;
    match endpoint {
        Endpoint::Jacobian => {
            s.jacobian(x, &ins, &outs)?;
        }
        Endpoint::Jvp => {
            let t = unflatten(&point.tangent(&mut s.rng), &point.ins, 1, false);
            s.jvp(x, &ins, &outs, &t)?;
        }
        Endpoint::Vjp => {
            let c = unflatten(&point.cotangent(&mut s.rng), &point.outs, 1, false);
            s.vjp(x, &ins, &outs, &c)?;
        }
        Endpoint::BatchedJvp => {
            let flat: Vec<f64> = (0..2).flat_map(|_| point.tangent(&mut s.rng)).collect();
            s.batched_jvp(x, &ins, &outs, &unflatten(&flat, &point.ins, 2, true), 2)?;
        }
        Endpoint::BatchedVjp => {
            let flat: Vec<f64> = (0..2).flat_map(|_| point.cotangent(&mut s.rng)).collect();
            s.batched_vjp(x, &ins, &outs, &unflatten(&flat, &point.outs, 2, true), 2)?;
        }
        Endpoint::Apply | Endpoint::AbstractEval => {}
    }
    Ok(Measured::yes())
}

/// Expects apply to refuse `inputs` with `invalid-input`.
fn refused(s: &mut Session, inputs: &Tree, what: &str) -> Checked {
    match s.apply_outcome(inputs) {
        Err(Failure::InvalidInput(msg)) => Ok(Measured::yes().detail(msg)),
        Ok(_) => Err(Stop::Fail(format!("apply accepted {what}"))),
        Err(e) => Err(Stop::Fail(format!(
            "apply answered {what} with \"{e}\" instead of invalid-input"
        ))),
    }
}

/// Inputs that break the schema, each of which the component must refuse as invalid input:
/// a required field left out, an array with an extra leading axis. Returns (label, check) pairs.
pub fn invalid_inputs(s: &mut Session, point: &Point) -> Vec<(String, Checked)> {
    let info = s.info();
    let mut out = Vec::new();
    let required = info
        .inputs
        .iter()
        .find(|f| f.default.is_none() && point.inputs.contains_key(&f.path));
    match required {
        Some(f) => {
            let mut inputs = point.inputs.clone();
            inputs.remove(&f.path);
            let what = format!("inputs without the required `{}`", f.path);
            out.push((format!("missing `{}`", f.path), refused(s, &inputs, &what)));
        }
        None => out.push((
            "missing input".into(),
            Err(Stop::Skip("every input has a default".into())),
        )),
    }
    let ranked = info
        .inputs
        .iter()
        .find_map(|f| match (&f.kind, point.inputs.get(&f.path)) {
            (FieldKind::Array(spec), Some(Leaf::Tensor(t)))
                if !matches!(spec.shape, ShapeSpec::AnyRank) =>
            {
                Some((f.path.clone(), t.clone()))
            }
            _ => None,
        });
    match ranked {
        Some((p, t)) => {
            // A leading axis of 2: a size-1 axis could pass as broadcastable.
            let shape = [&[2][..], t.shape()].concat();
            let label = format!("`{p}` of rank {}", shape.len());
            let mut inputs = point.inputs.clone();
            match Tensor::stack(&[t.clone(), t]) {
                Ok(t) => {
                    inputs.insert(p.clone(), Leaf::Tensor(t));
                    let what = format!("`{p}` with shape {}", py_shape(&shape));
                    out.push((label, refused(s, &inputs, &what)));
                }
                Err(e) => out.push((label, Err(Stop::Skip(e.to_string())))),
            }
        }
        None => out.push((
            "wrong rank".into(),
            Err(Stop::Skip("no array input of fixed rank".into())),
        )),
    }
    out
}
