//! Build and serve this example with
//!
//! ```text
//! tesseract-wasm build guest-example/vectoradd
//! tesseract-wasm serve <printed .wasm path>
//! ```
//!
//! `vectoradd` computes `s·a + b` for two float32 vectors, optionally normalised to unit
//! length, and returns it as float64. It is the Rust twin of tesseract-core's `vectoradd`
//! example: `apply` reproduces NumPy's float32 arithmetic operation by operation so results
//! agree bit for bit, and `jacobian` returns the exact derivative computed in float64.

use ndarray::{Array1, Array2, ArrayView1, Zip};
use tesseract_guest::{
    DType, Error, Field, Inputs, Jacobian, JacobianBlocks, Outputs, Schema, Tesseract,
};

/// Adds two vectors: `result = s·a + b`, optionally normalised.
#[derive(Debug, Default)]
pub struct VectorAdd;

const DIFFERENTIABLE_INPUTS: [&str; 3] = ["a", "b", "s"];
const DIFFERENTIABLE_OUTPUTS: [&str; 1] = ["result"];

struct Args<'a> {
    a: ArrayView1<'a, f32>,
    b: ArrayView1<'a, f32>,
    s: f32,
    normalize: bool,
}

/// NumPy's shape notation, so error messages read like the Python original's.
fn numpy_shape(len: usize) -> String {
    format!("({len},)")
}

fn read(inputs: &Inputs) -> Result<Args<'_>, Error> {
    let a = inputs.array1::<f32>("a")?;
    let b = inputs.array1::<f32>("b")?;
    if a.len() != b.len() {
        return Err(Error::invalid_input(format!(
            "a and b must have the same shape. Got {} and {} instead.",
            numpy_shape(a.len()),
            numpy_shape(b.len())
        )));
    }
    Ok(Args {
        a,
        b,
        s: inputs.scalar::<f32>("s")?,
        normalize: inputs.boolean("normalize")?,
    })
}

fn check_paths(kind: &str, paths: &[String], allowed: &[&str]) -> Result<(), Error> {
    match paths.iter().find(|p| !allowed.contains(&p.as_str())) {
        Some(p) => Err(Error::invalid_input(format!(
            "`{p}` is not a differentiable {kind} of vectoradd (expected one of {allowed:?})"
        ))),
        None => Ok(()),
    }
}

impl Tesseract for VectorAdd {
    fn schema() -> Schema {
        Schema::new("vectoradd", "1.2.3")
            .description("Simple tesseract that adds two vectors.")
            .input(
                Field::array("a", DType::Float32, [None])
                    .differentiable()
                    .description("An arbitrary vector."),
            )
            .input(
                Field::array("b", DType::Float32, [None])
                    .differentiable()
                    .description("An arbitrary vector. Needs to have the same dimensions as a."),
            )
            .input(
                Field::scalar("s", DType::Float32)
                    .differentiable()
                    .default(1.0f32)
                    .description("A scalar."),
            )
            .input(
                Field::boolean("normalize")
                    .default(false)
                    .description("True if the output should be normalized, False otherwise."),
            )
            .output(
                Field::array("result", DType::Float64, [None])
                    .differentiable()
                    .description("Vector s·a + b"),
            )
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        let Args { a, b, s, normalize } = read(inputs)?;
        // Kept in float32, unfused and in NumPy's order (`a * s + b`, then
        // `sqrt(dot(r, r))`), so the widened result matches the Python original exactly.
        // `Zip` walks the contiguous inputs as slices, so each pass vectorises; without
        // normalisation the widening happens in the same pass.
        let r = Zip::from(&a).and(&b);
        let result: Array1<f64> = if normalize {
            let r = r.map_collect(|&ai, &bi| ai * s + bi);
            let norm = r.iter().fold(0.0f32, |acc, &x| acc + x * x).sqrt();
            // A zero vector gives NaN, as NumPy does; there is no direction to return.
            r.mapv(|x| f64::from(x / norm))
        } else {
            r.map_collect(|&ai, &bi| f64::from(ai * s + bi))
        };
        Ok(Outputs::new().with_array("result", result))
    }
}

impl Jacobian for VectorAdd {
    fn jacobian(
        &self,
        inputs: &Inputs,
        jac_inputs: &[String],
        jac_outputs: &[String],
    ) -> Result<JacobianBlocks, Error> {
        check_paths("input", jac_inputs, &DIFFERENTIABLE_INPUTS)?;
        check_paths("output", jac_outputs, &DIFFERENTIABLE_OUTPUTS)?;
        let Args { a, b, s, normalize } = read(inputs)?;
        let n = a.len();
        let a = a.mapv(f64::from);
        let s = f64::from(s);

        let (da, db, ds) = if normalize {
            // y = r/‖r‖ has derivative P/‖r‖ with P = I − r rᵀ/‖r‖² (projection off r),
            // chained with ∂r/∂a = s·I, ∂r/∂b = I, ∂r/∂s = a.
            let r: Array1<f64> = &a * s + &b.mapv(f64::from);
            let norm2 = r.dot(&r);
            let norm = norm2.sqrt();
            let mut p = Array2::<f64>::eye(n);
            for i in 0..n {
                for j in 0..n {
                    p[[i, j]] -= r[i] * r[j] / norm2;
                }
            }
            let ds = (&a - &(&r * (r.dot(&a) / norm2))) / norm;
            (p.mapv(|x| x * s / norm), p.mapv(|x| x / norm), ds)
        } else {
            (Array2::eye(n) * s, Array2::eye(n), a)
        };

        let mut blocks = JacobianBlocks::new();
        for out in jac_outputs {
            for input in jac_inputs {
                match input.as_str() {
                    "a" => blocks.insert(out, input, da.clone()),
                    "b" => blocks.insert(out, input, db.clone()),
                    _ => blocks.insert(out, input, ds.clone()),
                }
            }
        }
        Ok(blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tesseract_guest::{ErrorKind, Plain, dispatch};
    use tesseract_model::Leaf;

    fn inputs(a: &[f32], b: &[f32], s: f32, normalize: bool) -> Inputs {
        Inputs::new()
            .with_array("a", Array1::from(a.to_vec()))
            .with_array("b", Array1::from(b.to_vec()))
            .with_scalar("s", s)
            .with_plain("normalize", Plain::Bool(normalize))
    }

    fn run(a: &[f32], b: &[f32], s: f32, normalize: bool) -> Vec<f64> {
        let out = dispatch::apply::<VectorAdd>(inputs(a, b, s, normalize).tree().clone())
            .expect("apply succeeds");
        match out.get("result") {
            Some(Leaf::Tensor(t)) => t.as_slice::<f64>().expect("float64 result").to_vec(),
            other => panic!("unexpected result {other:?}"),
        }
    }

    /// The same function in float64, for finite differences of the true derivative.
    fn model(a: &[f64], b: &[f64], s: f64, normalize: bool) -> Vec<f64> {
        let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x * s + y).collect();
        let norm = if normalize {
            r.iter().map(|x| x * x).sum::<f64>().sqrt()
        } else {
            1.0
        };
        r.into_iter().map(|x| x / norm).collect()
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn adds_scaled_vectors() {
        assert_eq!(
            run(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], 2.0, false),
            vec![6.0, 9.0, 12.0]
        );
    }

    #[test]
    fn normalizes_in_float32() {
        let got = run(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], 2.0, true);
        let norm = (36.0f32 + 81.0 + 144.0).sqrt();
        let want: Vec<f64> = [6.0f32, 9.0, 12.0]
            .iter()
            .map(|x| f64::from(x / norm))
            .collect();
        assert_eq!(got, want);
        let len: f64 = got.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((len - 1.0).abs() < 1e-6);
    }

    #[test]
    fn float32_rounding_is_numpys() {
        // 0.1f32 * 3 + 0.2 rounds differently in float32 than in float64.
        let got = run(&[0.1], &[0.2], 3.0, false);
        assert_eq!(got, vec![f64::from(0.1f32 * 3.0f32 + 0.2f32)]);
    }

    #[test]
    fn rejects_mismatched_lengths() {
        let err = dispatch::apply::<VectorAdd>(
            inputs(&[1.0, 2.0, 3.0], &[1.0, 2.0], 1.0, false)
                .tree()
                .clone(),
        )
        .expect_err("lengths differ");
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(
            err.message,
            "a and b must have the same shape. Got (3,) and (2,) instead."
        );
    }

    #[test]
    fn rejects_unknown_jacobian_paths() {
        let inp = inputs(&[1.0], &[2.0], 1.0, false);
        for (ins, outs) in [
            (strs(&["normalize"]), strs(&["result"])),
            (strs(&["a"]), strs(&["nope"])),
        ] {
            let err = dispatch::jacobian::<VectorAdd>(inp.tree().clone(), &ins, &outs)
                .expect_err("not differentiable");
            assert_eq!(err.kind, ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn jacobian_without_normalize_is_exact() {
        let inp = inputs(&[1.0, 2.0], &[3.0, 4.0], 2.5, false);
        let blocks = dispatch::jacobian::<VectorAdd>(
            inp.tree().clone(),
            &strs(&["a", "b", "s"]),
            &strs(&["result"]),
        )
        .expect("jacobian");
        let get = |i: &str| blocks[&("result".to_string(), i.to_string())].clone();
        assert_eq!(get("a").shape(), &[2, 2]);
        assert_eq!(get("a").as_slice::<f64>(), Some(&[2.5, 0.0, 0.0, 2.5][..]));
        assert_eq!(get("b").as_slice::<f64>(), Some(&[1.0, 0.0, 0.0, 1.0][..]));
        assert_eq!(get("s").shape(), &[2]);
        assert_eq!(get("s").as_slice::<f64>(), Some(&[1.0, 2.0][..]));
    }

    #[test]
    fn jacobian_matches_central_differences() {
        let a32 = [0.5f32, -1.25, 2.0, 0.75];
        let b32 = [1.5f32, 0.25, -0.5, 3.0];
        let s32 = 1.75f32;
        let a: Vec<f64> = a32.iter().map(|&x| f64::from(x)).collect();
        let b: Vec<f64> = b32.iter().map(|&x| f64::from(x)).collect();
        let s = f64::from(s32);
        let n = a.len();
        let h = 1e-6;
        for normalize in [false, true] {
            let inp = inputs(&a32, &b32, s32, normalize);
            let jac = VectorAdd
                .jacobian(&inp, &strs(&["a", "b", "s"]), &strs(&["result"]))
                .expect("jacobian");
            let block = |i: &str| {
                let t = &jac.blocks()[&("result".to_string(), i.to_string())];
                t.as_slice::<f64>().expect("float64").to_vec()
            };
            let (ja, jb, js) = (block("a"), block("b"), block("s"));
            for j in 0..n {
                let (mut ap, mut am, mut bp, mut bm) = (a.clone(), a.clone(), b.clone(), b.clone());
                ap[j] += h;
                am[j] -= h;
                bp[j] += h;
                bm[j] -= h;
                let fa: Vec<f64> = model(&ap, &b, s, normalize)
                    .iter()
                    .zip(model(&am, &b, s, normalize))
                    .map(|(p, m)| (p - m) / (2.0 * h))
                    .collect();
                let fb: Vec<f64> = model(&a, &bp, s, normalize)
                    .iter()
                    .zip(model(&a, &bm, s, normalize))
                    .map(|(p, m)| (p - m) / (2.0 * h))
                    .collect();
                for i in 0..n {
                    assert!(
                        (ja[i * n + j] - fa[i]).abs() < 1e-8,
                        "d{i}/da{j}: {} vs {}",
                        ja[i * n + j],
                        fa[i]
                    );
                    assert!(
                        (jb[i * n + j] - fb[i]).abs() < 1e-8,
                        "d{i}/db{j}: {} vs {}",
                        jb[i * n + j],
                        fb[i]
                    );
                }
            }
            let fs: Vec<f64> = model(&a, &b, s + h, normalize)
                .iter()
                .zip(model(&a, &b, s - h, normalize))
                .map(|(p, m)| (p - m) / (2.0 * h))
                .collect();
            for i in 0..n {
                assert!(
                    (js[i] - fs[i]).abs() < 1e-8,
                    "d{i}/ds: {} vs {}",
                    js[i],
                    fs[i]
                );
            }
        }
    }

    #[test]
    fn jacobian_returns_only_requested_blocks() {
        let inp = inputs(&[1.0, 2.0], &[3.0, 4.0], 1.0, true);
        let blocks =
            dispatch::jacobian::<VectorAdd>(inp.tree().clone(), &strs(&["s"]), &strs(&["result"]))
                .expect("jacobian");
        assert_eq!(blocks.len(), 1);
        assert_eq!(
            blocks[&("result".to_string(), "s".to_string())].shape(),
            &[2]
        );
    }

    #[test]
    fn schema_declares_fields() {
        let info = dispatch::metadata::<VectorAdd>();
        assert_eq!(
            (info.name.as_str(), info.version.as_str()),
            ("vectoradd", "1.2.3")
        );
        let names: Vec<&str> = info.inputs.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["a", "b", "s", "normalize"]);
        assert!(
            info.input("s")
                .is_some_and(|f| f.is_differentiable() && f.default.as_deref() == Some("1.0"))
        );
        assert!(info.output("result").is_some_and(|f| f.is_differentiable()));
    }
}

tesseract_guest::export!(VectorAdd: jacobian);
