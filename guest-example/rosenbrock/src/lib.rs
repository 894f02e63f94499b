//! Build and serve this example with
//!
//! ```text
//! tesseract-wasm build guest-example/rosenbrock
//! tesseract-wasm serve <printed .wasm path>
//! ```
//!
//! `rosenbrock` evaluates the Rosenbrock function `(a − x)² + b·(y − x²)²` and its exact
//! derivatives with respect to `x` and `y`: the full jacobian, jacobian-vector and
//! vector-jacobian products, and shapes via `abstract_eval`. Everything is scalar, so the
//! derivatives are written out by hand.

use ndarray::arr0;
use tesseract_guest::{
    AbstractEval, AbstractInputs, AbstractOutputs, Arrays, DType, Error, Field, Inputs, Jacobian,
    JacobianBlocks, Jvp, Outputs, Schema, Tesseract, Vjp,
};

/// The Rosenbrock function of two scalars.
#[derive(Debug, Default)]
pub struct Rosenbrock;

const DIFFERENTIABLE_INPUTS: [&str; 2] = ["x", "y"];
const DIFFERENTIABLE_OUTPUTS: [&str; 1] = ["result"];

struct Point {
    x: f64,
    y: f64,
    a: f64,
    b: f64,
}

impl Point {
    fn read(inputs: &Inputs) -> Result<Point, Error> {
        Ok(Point {
            x: inputs.scalar("x")?,
            y: inputs.scalar("y")?,
            a: inputs.scalar("a")?,
            b: inputs.scalar("b")?,
        })
    }

    fn value(&self) -> f64 {
        (self.a - self.x).powi(2) + self.b * (self.y - self.x * self.x).powi(2)
    }

    /// ∂/∂x or ∂/∂y; `path` has already been checked to be one of them.
    fn partial(&self, path: &str) -> f64 {
        let inner = self.y - self.x * self.x;
        if path == "x" {
            -2.0 * (self.a - self.x) - 4.0 * self.b * self.x * inner
        } else {
            2.0 * self.b * inner
        }
    }
}

fn check_paths(kind: &str, paths: &[String], allowed: &[&str]) -> Result<(), Error> {
    match paths.iter().find(|p| !allowed.contains(&p.as_str())) {
        Some(p) => Err(Error::invalid_input(format!(
            "`{p}` is not a differentiable {kind} of rosenbrock (expected one of {allowed:?})"
        ))),
        None => Ok(()),
    }
}

/// A (co)tangent that must be a scalar, like the primal it belongs to.
fn scalar_of(arrays: &Arrays, path: &str) -> Result<f64, Error> {
    let view = arrays.get::<f64>(path)?;
    match (view.ndim(), view.iter().next()) {
        (0, Some(&v)) => Ok(v),
        _ => Err(Error::invalid_input(format!(
            "(co)tangent for `{path}` has shape {:?}, expected a scalar",
            view.shape()
        ))),
    }
}

impl Tesseract for Rosenbrock {
    fn schema() -> Schema {
        Schema::new("rosenbrock", "0.1.0")
            .description("Evaluates the Rosenbrock function and its derivatives.")
            .input(
                Field::scalar("x", DType::Float64)
                    .differentiable()
                    .default(0.0)
                    .description("First coordinate."),
            )
            .input(
                Field::scalar("y", DType::Float64)
                    .differentiable()
                    .default(0.0)
                    .description("Second coordinate."),
            )
            .input(
                Field::scalar("a", DType::Float64)
                    .default(1.0)
                    .description("Location of the minimum along x (the minimum is at (a, a²))."),
            )
            .input(
                Field::scalar("b", DType::Float64)
                    .default(100.0)
                    .description("Steepness of the curved valley."),
            )
            .output(
                Field::scalar("result", DType::Float64)
                    .differentiable()
                    .description("(a − x)² + b·(y − x²)²"),
            )
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        Ok(Outputs::new().with_scalar("result", Point::read(inputs)?.value()))
    }
}

impl Jacobian for Rosenbrock {
    fn jacobian(
        &self,
        inputs: &Inputs,
        jac_inputs: &[String],
        jac_outputs: &[String],
    ) -> Result<JacobianBlocks, Error> {
        check_paths("input", jac_inputs, &DIFFERENTIABLE_INPUTS)?;
        check_paths("output", jac_outputs, &DIFFERENTIABLE_OUTPUTS)?;
        let p = Point::read(inputs)?;
        let mut blocks = JacobianBlocks::new();
        for out in jac_outputs {
            for input in jac_inputs {
                // Scalar output, scalar input: each block has shape ().
                blocks.insert(out, input, arr0(p.partial(input)));
            }
        }
        Ok(blocks)
    }
}

impl Jvp for Rosenbrock {
    fn jvp(
        &self,
        inputs: &Inputs,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangent: &Arrays,
    ) -> Result<Arrays, Error> {
        check_paths("input", jvp_inputs, &DIFFERENTIABLE_INPUTS)?;
        check_paths("output", jvp_outputs, &DIFFERENTIABLE_OUTPUTS)?;
        let p = Point::read(inputs)?;
        let mut dot = 0.0;
        for input in jvp_inputs {
            dot += p.partial(input) * scalar_of(tangent, input)?;
        }
        Ok(jvp_outputs
            .iter()
            .fold(Arrays::new(), |acc, out| acc.with(out, arr0(dot))))
    }
}

impl Vjp for Rosenbrock {
    fn vjp(
        &self,
        inputs: &Inputs,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangent: &Arrays,
    ) -> Result<Arrays, Error> {
        check_paths("input", vjp_inputs, &DIFFERENTIABLE_INPUTS)?;
        check_paths("output", vjp_outputs, &DIFFERENTIABLE_OUTPUTS)?;
        let p = Point::read(inputs)?;
        // With no output selected the cotangent is zero, and so is every input's share.
        let mut weight = 0.0;
        for out in vjp_outputs {
            weight += scalar_of(cotangent, out)?;
        }
        Ok(vjp_inputs.iter().fold(Arrays::new(), |acc, input| {
            acc.with(input, arr0(weight * p.partial(input)))
        }))
    }
}

impl AbstractEval for Rosenbrock {
    fn abstract_eval(&self, _inputs: &AbstractInputs) -> Result<AbstractOutputs, Error> {
        Ok(AbstractOutputs::new().with_array("result", DType::Float64, []))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tesseract_guest::{ErrorKind, dispatch};
    use tesseract_model::{AbstractLeaf, Leaf, ShapeDType, Vectors};

    fn inputs(x: f64, y: f64) -> Inputs {
        Inputs::new()
            .with_scalar("x", x)
            .with_scalar("y", y)
            .with_scalar("a", 1.0)
            .with_scalar("b", 100.0)
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    fn value(x: f64, y: f64) -> f64 {
        let out = dispatch::apply::<Rosenbrock>(inputs(x, y).tree().clone()).expect("apply");
        match out.get("result") {
            Some(Leaf::Tensor(t)) if t.shape().is_empty() => t.as_slice::<f64>().expect("f64")[0],
            other => panic!("unexpected result {other:?}"),
        }
    }

    fn scalar(v: &Vectors, path: &str) -> f64 {
        let t = &v[path];
        assert!(t.shape().is_empty(), "`{path}` should be a scalar");
        t.as_slice::<f64>().expect("f64")[0]
    }

    fn jvp(x: f64, y: f64, tx: f64, ty: f64) -> f64 {
        let tangent = Arrays::new()
            .with("x", arr0(tx))
            .with("y", arr0(ty))
            .into_vectors();
        let out = dispatch::jvp::<Rosenbrock>(
            inputs(x, y).tree().clone(),
            &strs(&["x", "y"]),
            &strs(&["result"]),
            tangent,
        )
        .expect("jvp");
        scalar(&out, "result")
    }

    fn vjp(x: f64, y: f64, cot: f64) -> (f64, f64) {
        let cotangent = Arrays::new().with("result", arr0(cot)).into_vectors();
        let out = dispatch::vjp::<Rosenbrock>(
            inputs(x, y).tree().clone(),
            &strs(&["x", "y"]),
            &strs(&["result"]),
            cotangent,
        )
        .expect("vjp");
        (scalar(&out, "x"), scalar(&out, "y"))
    }

    const POINTS: [(f64, f64); 4] = [(0.5, 1.0), (-1.2, 1.0), (1.0, 1.0), (2.0, -0.3)];

    #[test]
    fn known_values() {
        assert_eq!(value(0.5, 1.0), 56.5);
        assert_eq!(value(1.0, 1.0), 0.0);
        let blocks = dispatch::jacobian::<Rosenbrock>(
            inputs(0.5, 1.0).tree().clone(),
            &strs(&["x", "y"]),
            &strs(&["result"]),
        )
        .expect("jacobian");
        let block = |i: &str| {
            let t = &blocks[&("result".to_string(), i.to_string())];
            assert!(t.shape().is_empty());
            t.as_slice::<f64>().expect("f64")[0]
        };
        assert_eq!(block("x"), -151.0);
        assert_eq!(block("y"), 150.0);
    }

    #[test]
    fn defaults_are_declared() {
        let info = dispatch::metadata::<Rosenbrock>();
        let default = |p: &str| info.input(p).and_then(|f| f.default.clone());
        assert_eq!(default("x").as_deref(), Some("0.0"));
        assert_eq!(default("a").as_deref(), Some("1.0"));
        assert_eq!(default("b").as_deref(), Some("100.0"));
        assert!(!info.input("a").is_some_and(|f| f.is_differentiable()));
        assert!(info.input("y").is_some_and(|f| f.is_differentiable()));
    }

    #[test]
    fn jvp_matches_central_differences() {
        let h = 1e-6;
        for (x, y) in POINTS {
            for (tx, ty) in [(1.0, 0.0), (0.0, 1.0), (0.3, -0.7)] {
                let fd =
                    (value(x + h * tx, y + h * ty) - value(x - h * tx, y - h * ty)) / (2.0 * h);
                let got = jvp(x, y, tx, ty);
                assert!((got - fd).abs() <= 1e-6 * (1.0 + fd.abs()), "{got} vs {fd}");
            }
        }
    }

    #[test]
    fn vjp_matches_central_differences() {
        let h = 1e-6;
        for (x, y) in POINTS {
            let (gx, gy) = vjp(x, y, 2.0);
            let fx = 2.0 * (value(x + h, y) - value(x - h, y)) / (2.0 * h);
            let fy = 2.0 * (value(x, y + h) - value(x, y - h)) / (2.0 * h);
            assert!((gx - fx).abs() <= 1e-6 * (1.0 + fx.abs()), "{gx} vs {fx}");
            assert!((gy - fy).abs() <= 1e-6 * (1.0 + fy.abs()), "{gy} vs {fy}");
        }
    }

    #[test]
    fn dot_product_test() {
        for (x, y) in POINTS {
            let (tx, ty, c) = (0.37, -1.3, 0.9);
            let lhs = c * jvp(x, y, tx, ty);
            let (gx, gy) = vjp(x, y, c);
            let rhs = gx * tx + gy * ty;
            assert!(
                (lhs - rhs).abs() <= 1e-10 * lhs.abs().max(rhs.abs()).max(1e-300),
                "{lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn jacobian_matches_stacked_jvps() {
        for (x, y) in POINTS {
            let jac = Rosenbrock
                .jacobian(&inputs(x, y), &strs(&["x", "y"]), &strs(&["result"]))
                .expect("jacobian");
            let block = |i: &str| {
                jac.blocks()[&("result".to_string(), i.to_string())]
                    .as_slice::<f64>()
                    .expect("f64")[0]
            };
            assert_eq!(block("x"), jvp(x, y, 1.0, 0.0));
            assert_eq!(block("y"), jvp(x, y, 0.0, 1.0));
        }
    }

    #[test]
    fn subsets_of_inputs() {
        let p = inputs(0.5, 1.0);
        let out = dispatch::jvp::<Rosenbrock>(
            p.tree().clone(),
            &strs(&["y"]),
            &strs(&["result"]),
            Arrays::new().with("y", arr0(2.0)).into_vectors(),
        )
        .expect("jvp");
        assert_eq!(scalar(&out, "result"), 300.0);
        let out = dispatch::vjp::<Rosenbrock>(
            p.tree().clone(),
            &strs(&["x"]),
            &strs(&["result"]),
            Arrays::new().with("result", arr0(1.0)).into_vectors(),
        )
        .expect("vjp");
        assert_eq!(out.len(), 1);
        assert_eq!(scalar(&out, "x"), -151.0);
    }

    #[test]
    fn rejects_non_differentiable_paths() {
        let p = inputs(0.5, 1.0);
        let err = dispatch::jvp::<Rosenbrock>(
            p.tree().clone(),
            &strs(&["a"]),
            &strs(&["result"]),
            Arrays::new().with("a", arr0(1.0)).into_vectors(),
        )
        .expect_err("a is not differentiable");
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        let err = dispatch::jacobian::<Rosenbrock>(p.tree().clone(), &strs(&["x"]), &strs(&["x"]))
            .expect_err("x is not an output");
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn abstract_eval_is_a_float64_scalar() {
        let out = dispatch::abstract_eval::<Rosenbrock>(Default::default()).expect("abstract_eval");
        assert_eq!(
            out.get("result"),
            Some(&AbstractLeaf::Array(ShapeDType {
                shape: vec![],
                dtype: DType::Float64
            }))
        );
    }

    /// The suite `tesseract-wasm check` runs on the `.wasm`, here on the native type.
    #[test]
    fn passes_the_check_suite_natively() {
        use tesseract_guest::check::{self, Native, Options, Verdict};

        let subject = Native::<Rosenbrock>::new()
            .jacobian()
            .jvp()
            .vjp()
            .abstract_eval();
        let report = check::run(&subject, &Options::default());
        assert!(report.passed(), "{}", report.table());
        let verdict = |name: &str| {
            report
                .rows
                .iter()
                .find(|r| r.check == name)
                .map(|r| r.verdict)
        };
        assert_eq!(
            verdict("gradient/jvp vs finite differences"),
            Some(Verdict::Pass)
        );
        assert_eq!(
            verdict("gradient/vjp vs finite differences"),
            Some(Verdict::Pass)
        );
        assert_eq!(
            verdict("contract/abstract_eval = apply"),
            Some(Verdict::Pass)
        );
    }
}

tesseract_guest::export!(Rosenbrock: jacobian, jvp, vjp, abstract_eval);
