//! A base point the checks run at: the inputs, apply's outputs there, the differentiable array
//! slots on each side, and the precision the numerical checks use.

use tesseract_model::path;
use tesseract_model::schema::Info;
use tesseract_model::{DType, Leaf, Tree};

use crate::values::{Random, Slot, flatten, total, unflatten};

/// Steps and tolerances for one dtype, chosen for central differences: the step balances
/// truncation (∝ h²) against rounding (∝ ε/h), so h ≈ ε^(1/3); the finite-difference
/// tolerance leaves two orders of magnitude above the error that step gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Precision {
    pub dtype: DType,
    /// Central-difference step, before scaling by the inputs' magnitude.
    pub step: f64,
    /// For derivatives against finite differences.
    pub fd_tolerance: f64,
    /// For two routes to the same derivative (jacobian vs jvp, batched vs single, ...).
    pub exact_tolerance: f64,
    /// The norm below which two vectors are both taken as zero.
    pub floor: f64,
}

impl Precision {
    pub fn of(dtype: DType) -> Precision {
        match dtype {
            DType::Float32 => Precision {
                dtype,
                step: f64::from(f32::EPSILON).cbrt(),
                fd_tolerance: 1e-2,
                exact_tolerance: 1e-5,
                floor: 1e-3,
            },
            _ => Precision {
                dtype,
                step: f64::EPSILON.cbrt(),
                fd_tolerance: 1e-5,
                exact_tolerance: 1e-10,
                floor: 1e-6,
            },
        }
    }
}

pub struct Point {
    pub inputs: Tree,
    pub outputs: Tree,
    /// Differentiable, non-empty float array inputs.
    pub ins: Vec<Slot>,
    /// Differentiable, non-empty float array outputs.
    pub outs: Vec<Slot>,
    pub precision: Precision,
    /// The central-difference step, scaled to the inputs.
    pub step: f64,
}

fn differentiable(info: &Info, concrete: &str, output: bool) -> bool {
    let Ok(segments) = path::parse(concrete) else {
        return false;
    };
    let template = path::template(&segments);
    let field = if output {
        info.output(&template)
    } else {
        info.input(&template)
    };
    field.is_some_and(|f| f.is_differentiable())
}

fn slots(info: &Info, tree: &Tree, output: bool) -> Vec<Slot> {
    tree.iter()
        .filter_map(|(p, l)| match l {
            Leaf::Tensor(t)
                if t.dtype().is_float() && !t.is_empty() && differentiable(info, p, output) =>
            {
                Some(Slot::of(p, t))
            }
            _ => None,
        })
        .collect()
}

impl Point {
    pub fn new(info: &Info, inputs: Tree, outputs: Tree) -> Point {
        let ins = slots(info, &inputs, false);
        let outs = slots(info, &outputs, true);
        let coarse = ins.iter().chain(&outs).any(|s| s.dtype == DType::Float32);
        let precision = Precision::of(if coarse {
            DType::Float32
        } else {
            DType::Float64
        });
        let scale = ins
            .iter()
            .filter_map(|s| match inputs.get(&s.path) {
                Some(Leaf::Tensor(t)) => Some(t.data().to_f64()),
                _ => None,
            })
            .flatten()
            .fold(1.0f64, |m, x| m.max(x.abs()));
        Point {
            step: precision.step * scale,
            inputs,
            outputs,
            ins,
            outs,
            precision,
        }
    }

    pub fn n_in(&self) -> usize {
        total(&self.ins)
    }

    pub fn n_out(&self) -> usize {
        total(&self.outs)
    }

    pub fn in_paths(&self) -> Vec<String> {
        crate::values::paths(&self.ins)
    }

    pub fn out_paths(&self) -> Vec<String> {
        crate::values::paths(&self.outs)
    }

    /// A random tangent, flat over [`Point::ins`].
    pub fn tangent(&self, rng: &mut Random) -> Vec<f64> {
        rounded(rng.vector(self.n_in()), &self.ins)
    }

    /// A random cotangent, flat over [`Point::outs`].
    pub fn cotangent(&self, rng: &mut Random) -> Vec<f64> {
        rounded(rng.vector(self.n_out()), &self.outs)
    }
}

/// `flat` as the slots' dtypes hold it, so reference arithmetic uses what the guest receives.
fn rounded(flat: Vec<f64>, slots: &[Slot]) -> Vec<f64> {
    flatten(&unflatten(&flat, slots, 1, false), slots, &[]).unwrap_or(flat)
}
