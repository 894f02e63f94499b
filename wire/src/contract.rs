//! What a component's results must look like, for every endpoint: the contract its declared
//! output schema makes. The HTTP server checks each response with it (a violation is a 500
//! saying the component broke its contract) and `tesseract-wasm check` reports violations as
//! failed checks; both call the same functions.
//!
//! - apply: every path is a declared output, of the declared kind, dtype and shape; every
//!   declared non-template output is present.
//! - jvp: keyed exactly by the requested output paths, each `(*batch, *out)` with `out`
//!   accepted by the output's declared shape.
//! - vjp: keyed exactly by the requested input paths, each `(*batch, *in)` with `in` the
//!   primal's actual shape.
//! - jacobian: one block per (output, input) pair, shaped `(*out, *in)`.
//! - abstract_eval: every path a declared output, arrays with a declared dtype and an accepted
//!   shape.
//!
//! [`Dtypes::Cast`] fits results to the declared dtype as upstream re-validates outputs (the
//! server); [`Dtypes::Exact`] reports any dtype other than the declared one (`check`).

use std::collections::BTreeSet;

use tesseract_model::path::{self, TemplateSegment};
use tesseract_model::schema::{ArraySpec, Field, FieldKind, Info};
use tesseract_model::{
    AbstractLeaf, AbstractTree, DType, JacobianBlocks, Leaf, Tensor, Tree, Vectors,
};

use crate::codec;
use crate::schema;

/// A result the declared schema does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Violation(pub String);

/// How a result's dtype is held to the declared one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtypes {
    /// Cast to the declared dtype where NumPy's `same_kind` rule allows; refuse otherwise.
    Cast,
    /// The declared dtype exactly.
    Exact,
}

/// One component's declared contract.
#[derive(Debug, Clone, Copy)]
pub struct Contract<'a> {
    info: &'a Info,
    dtypes: Dtypes,
}

fn violation(msg: impl Into<String>) -> Violation {
    Violation(msg.into())
}

fn template_of(concrete: &str) -> Result<String, Violation> {
    path::parse(concrete)
        .map(|s| path::template(&s))
        .map_err(|e| violation(format!("`{concrete}` is not a valid path: {e}")))
}

fn is_literal(template: &str) -> bool {
    path::parse_template(template)
        .iter()
        .all(|s| matches!(s, TemplateSegment::Field(_)))
}

fn keys_match<'k>(
    what: &str,
    got: impl Iterator<Item = &'k String>,
    want: &[String],
) -> Result<(), Violation> {
    let got: BTreeSet<&str> = got.map(String::as_str).collect();
    let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
    if got != want {
        return Err(violation(format!(
            "{what} returned paths {got:?}, expected {want:?}"
        )));
    }
    Ok(())
}

impl<'a> Contract<'a> {
    pub fn new(info: &'a Info, dtypes: Dtypes) -> Contract<'a> {
        Contract { info, dtypes }
    }

    fn array_field(
        &self,
        concrete: &str,
        output: bool,
    ) -> Result<(&'a Field, &'a ArraySpec), Violation> {
        let template = template_of(concrete)?;
        let (field, side) = if output {
            (self.info.output(&template), "output")
        } else {
            (self.info.input(&template), "input")
        };
        let field =
            field.ok_or_else(|| violation(format!("`{concrete}` is not a declared {side}")))?;
        let spec = field
            .array()
            .ok_or_else(|| violation(format!("{side} `{concrete}` is not an array")))?;
        Ok((field, spec))
    }

    /// Holds `t`'s dtype to `want` (see [`Dtypes`]).
    fn dtype(&self, what: &str, t: Tensor, want: &[DType]) -> Result<Tensor, Violation> {
        if want.contains(&t.dtype()) {
            return Ok(t);
        }
        let names: Vec<&str> = want.iter().map(|d| d.name()).collect();
        match (self.dtypes, want.first()) {
            (Dtypes::Cast, Some(&to)) => {
                codec::cast(t, to).map_err(|e| violation(format!("{what}: {}", e.msg)))
            }
            _ => Err(violation(format!(
                "{what} has dtype {}, declared {}",
                t.dtype(),
                names.join(" or ")
            ))),
        }
    }

    /// apply's outputs, fitted to the declared outputs.
    ///
    /// # Errors
    /// An undeclared path, a leaf of the wrong kind, dtype or shape, or a missing output.
    pub fn apply(&self, outputs: Tree) -> Result<Tree, Violation> {
        let mut out = Tree::new();
        for (p, leaf) in outputs {
            let template = template_of(&p)?;
            let field = self
                .info
                .output(&template)
                .ok_or_else(|| violation(format!("returned undeclared output `{p}`")))?;
            let leaf = match (leaf, &field.kind) {
                (Leaf::Tensor(t), FieldKind::Array(spec)) => {
                    let what = format!("output `{p}`");
                    let t = self.dtype(&what, t, &[spec.dtype])?;
                    Leaf::Tensor(
                        schema::conform(t, spec)
                            .map_err(|e| violation(format!("{what}: {}", e.msg)))?,
                    )
                }
                (Leaf::Plain(v), FieldKind::Plain { .. }) => Leaf::Plain(v),
                (_, FieldKind::Array(_)) => {
                    return Err(violation(format!("output `{p}` should be an array")));
                }
                (_, FieldKind::Plain { .. }) => {
                    return Err(violation(format!("output `{p}` should be a plain value")));
                }
            };
            out.insert(p, leaf);
        }
        for f in &self.info.outputs {
            if is_literal(&f.path) && !out.contains_key(&f.path) {
                return Err(violation(format!(
                    "did not return declared output `{}`",
                    f.path
                )));
            }
        }
        Ok(out)
    }

    /// abstract_eval's result: declared paths, declared dtypes, accepted shapes.
    ///
    /// # Errors
    /// The first path, dtype or shape the schema does not allow.
    pub fn abstract_eval(&self, outputs: &AbstractTree) -> Result<(), Violation> {
        for (p, leaf) in outputs {
            let template = template_of(p)?;
            let field = self.info.output(&template).ok_or_else(|| {
                violation(format!("abstract_eval returned undeclared output `{p}`"))
            })?;
            match (leaf, &field.kind) {
                (AbstractLeaf::Array(sd), FieldKind::Array(spec)) => {
                    if sd.dtype != spec.dtype && self.dtypes == Dtypes::Exact {
                        return Err(violation(format!(
                            "abstract_eval says `{p}` has dtype {}, declared {}",
                            sd.dtype, spec.dtype
                        )));
                    }
                    if !spec.shape.accepts(&sd.shape) {
                        return Err(violation(format!(
                            "abstract_eval says `{p}` has shape {}, which the declared shape does not allow",
                            codec::py_shape(&sd.shape)
                        )));
                    }
                }
                (AbstractLeaf::Plain(_), FieldKind::Plain { .. }) => {}
                (_, FieldKind::Array(_)) => {
                    return Err(violation(format!(
                        "abstract_eval: `{p}` should be an array"
                    )));
                }
                (_, FieldKind::Plain { .. }) => {
                    return Err(violation(format!(
                        "abstract_eval: `{p}` should be a plain value"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Splits `t`'s shape into `batch` and the rest, or says why it cannot.
    fn unbatched<'t>(what: &str, t: &'t Tensor, batch: &[usize]) -> Result<&'t [usize], Violation> {
        match t.shape().split_at_checked(batch.len()) {
            Some((b, rest)) if b == batch => Ok(rest),
            _ => Err(violation(format!(
                "{what} has shape {}, expected leading batch axes {}",
                codec::py_shape(t.shape()),
                codec::py_shape(batch)
            ))),
        }
    }

    /// jvp results (a batch when `batch` is non-empty): keyed by `jvp_outputs`, shaped
    /// `(*batch, *out)`, in the output's dtype.
    ///
    /// # Errors
    /// Missing or extra paths, wrong shapes or dtypes.
    pub fn jvp(
        &self,
        jvp_outputs: &[String],
        batch: &[usize],
        result: Vectors,
    ) -> Result<Vectors, Violation> {
        keys_match("jvp", result.keys(), jvp_outputs)?;
        result
            .into_iter()
            .map(|(p, t)| {
                let (_, spec) = self.array_field(&p, true)?;
                let what = format!("jvp result `{p}`");
                let rest = Self::unbatched(&what, &t, batch)?;
                if !spec.shape.accepts(rest) {
                    return Err(violation(format!(
                        "{what} has shape {}, which the declared output shape does not allow",
                        codec::py_shape(t.shape())
                    )));
                }
                let t = self.dtype(&what, t, &[spec.dtype])?;
                Ok((p, t))
            })
            .collect()
    }

    /// vjp results (a batch when `batch` is non-empty): keyed by `vjp_inputs`, shaped
    /// `(*batch, *in)` with `in` the primal's shape in `inputs`, in the input's dtype.
    ///
    /// # Errors
    /// Missing or extra paths, wrong shapes or dtypes.
    pub fn vjp(
        &self,
        inputs: &Tree,
        vjp_inputs: &[String],
        batch: &[usize],
        result: Vectors,
    ) -> Result<Vectors, Violation> {
        keys_match("vjp", result.keys(), vjp_inputs)?;
        result
            .into_iter()
            .map(|(p, t)| {
                let (_, spec) = self.array_field(&p, false)?;
                let what = format!("vjp result `{p}`");
                let rest = Self::unbatched(&what, &t, batch)?;
                let primal = match inputs.get(&p) {
                    Some(Leaf::Tensor(x)) => x.shape(),
                    _ => return Err(violation(format!("{what}: `{p}` is not an array input"))),
                };
                if rest != primal {
                    return Err(violation(format!(
                        "{what} has shape {}, expected {} (the input's)",
                        codec::py_shape(t.shape()),
                        codec::py_shape(&[batch, primal].concat())
                    )));
                }
                let t = self.dtype(&what, t, &[spec.dtype])?;
                Ok((p, t))
            })
            .collect()
    }

    /// jacobian blocks: one per (output, input) pair, shaped `(*out, *in)`, in the output's
    /// or the input's dtype (forward and reverse assembly differ, as in tesseract-jax).
    ///
    /// # Errors
    /// Missing or extra blocks, wrong shapes or dtypes.
    pub fn jacobian(
        &self,
        inputs: &Tree,
        jac_inputs: &[String],
        jac_outputs: &[String],
        blocks: JacobianBlocks,
    ) -> Result<JacobianBlocks, Violation> {
        let want: BTreeSet<(&str, &str)> = jac_outputs
            .iter()
            .flat_map(|o| jac_inputs.iter().map(move |i| (o.as_str(), i.as_str())))
            .collect();
        let got: BTreeSet<(&str, &str)> = blocks
            .keys()
            .map(|(o, i)| (o.as_str(), i.as_str()))
            .collect();
        if got != want {
            return Err(violation(format!(
                "jacobian returned blocks {got:?}, expected {want:?}"
            )));
        }
        blocks
            .into_iter()
            .map(|((o, i), t)| {
                let (_, out_spec) = self.array_field(&o, true)?;
                let (_, in_spec) = self.array_field(&i, false)?;
                let what = format!("jacobian block ({o}, {i})");
                let primal = match inputs.get(&i) {
                    Some(Leaf::Tensor(x)) => x.shape(),
                    _ => return Err(violation(format!("{what}: `{i}` is not an array input"))),
                };
                let fits = t
                    .shape()
                    .len()
                    .checked_sub(primal.len())
                    .map(|split| t.shape().split_at(split))
                    .is_some_and(|(out, tail)| tail == primal && out_spec.shape.accepts(out));
                if !fits {
                    return Err(violation(format!(
                        "{what} has shape {}, expected (*out, {}) with out allowed by `{o}`'s declared shape",
                        codec::py_shape(t.shape()),
                        primal.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
                    )));
                }
                let t = self.dtype(&what, t, &[out_spec.dtype, in_spec.dtype])?;
                Ok(((o, i), t))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use tesseract_model::schema::{Dim, ShapeSpec};
    use tesseract_model::{Data, ShapeDType};

    use super::*;

    fn info() -> Info {
        let array = |path: &str, dtype, dims: Vec<Dim>| tesseract_model::schema::Field {
            path: path.into(),
            kind: FieldKind::Array(ArraySpec {
                dtype,
                shape: ShapeSpec::Ranked(dims),
                differentiable: true,
            }),
            description: String::new(),
            default: None,
        };
        Info {
            name: "t".into(),
            version: "0".into(),
            description: String::new(),
            inputs: vec![array("x", DType::Float64, vec![Dim::Any])],
            outputs: vec![
                array("y", DType::Float64, vec![Dim::Any]),
                array("s", DType::Float32, vec![]),
            ],
        }
    }

    fn vec64(v: &[f64]) -> Tensor {
        Tensor::new(vec![v.len()], Data::Float64(v.to_vec())).expect("valid")
    }

    fn inputs() -> Tree {
        Tree::from([("x".into(), Leaf::Tensor(vec64(&[1.0, 2.0])))])
    }

    #[test]
    fn apply_refuses_undeclared_and_missing_outputs() {
        let info = info();
        let c = Contract::new(&info, Dtypes::Cast);
        let ok = Tree::from([
            ("y".into(), Leaf::Tensor(vec64(&[1.0]))),
            ("s".into(), Leaf::Tensor(Tensor::scalar(1.0f64))),
        ]);
        let fitted = c.apply(ok.clone()).expect("conforms after a cast");
        assert!(matches!(&fitted["s"], Leaf::Tensor(t) if t.dtype() == DType::Float32));
        let exact = Contract::new(&info, Dtypes::Exact).apply(ok.clone());
        assert!(exact.is_err_and(|e| e.0.contains("dtype float64, declared float32")));

        let mut extra = ok.clone();
        extra.insert("z".into(), Leaf::Tensor(vec64(&[1.0])));
        assert!(
            c.apply(extra)
                .is_err_and(|e| e.0.contains("undeclared output `z`"))
        );
        let mut missing = ok;
        missing.remove("y");
        assert!(
            c.apply(missing)
                .is_err_and(|e| e.0.contains("declared output `y`"))
        );
    }

    #[test]
    fn jvp_and_vjp_keys_and_shapes() {
        let info = info();
        let c = Contract::new(&info, Dtypes::Exact);
        let y = vec!["y".to_owned()];
        let x = vec!["x".to_owned()];
        assert!(
            c.jvp(&y, &[], Vectors::from([("y".into(), vec64(&[1.0]))]))
                .is_ok()
        );
        assert!(
            c.jvp(&y, &[2], Vectors::from([("y".into(), vec64(&[1.0, 2.0]))]))
                .is_err()
        );
        assert!(
            c.jvp(&y, &[], Vectors::new())
                .is_err_and(|e| e.0.contains("returned paths"))
        );
        assert!(
            c.vjp(
                &inputs(),
                &x,
                &[],
                Vectors::from([("x".into(), vec64(&[1.0, 2.0]))])
            )
            .is_ok()
        );
        let wrong = c.vjp(
            &inputs(),
            &x,
            &[],
            Vectors::from([("x".into(), vec64(&[1.0]))]),
        );
        assert!(wrong.is_err_and(|e| e.0.contains("(the input's)")));
    }

    #[test]
    fn jacobian_blocks_are_out_by_in() {
        let info = info();
        let c = Contract::new(&info, Dtypes::Exact);
        let block = |shape: Vec<usize>| {
            let n = shape.iter().product();
            Tensor::new(shape, Data::Float64(vec![0.0; n])).expect("valid")
        };
        let ins = vec!["x".to_owned()];
        let outs = vec!["y".to_owned()];
        let good = JacobianBlocks::from([(("y".into(), "x".into()), block(vec![3, 2]))]);
        assert!(c.jacobian(&inputs(), &ins, &outs, good).is_ok());
        let bad = JacobianBlocks::from([(("y".into(), "x".into()), block(vec![3, 3]))]);
        assert!(c.jacobian(&inputs(), &ins, &outs, bad).is_err());
    }

    #[test]
    fn abstract_eval_shapes_must_be_declared() {
        let info = info();
        let c = Contract::new(&info, Dtypes::Exact);
        let sd = |shape: Vec<usize>, dtype| AbstractLeaf::Array(ShapeDType { shape, dtype });
        let good = AbstractTree::from([("s".into(), sd(vec![], DType::Float32))]);
        assert!(c.abstract_eval(&good).is_ok());
        let bad = AbstractTree::from([("s".into(), sd(vec![2], DType::Float32))]);
        assert!(
            c.abstract_eval(&bad)
                .is_err_and(|e| e.0.contains("shape (2,)"))
        );
    }
}
