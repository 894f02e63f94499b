//! Calls a Tesseract's traits on flattened trees, exactly as the exported component does.
//!
//! The wasm export glue is a thin conversion around these functions, so calling them natively
//! runs the same code path as the `.wasm`: this is what native tests and the native speed
//! reference use. Each function also checks the author kept the call's contract (the right
//! keys, the batch axis), turning a slip into a clear `failed` error instead of a confusing
//! result downstream.

use std::collections::BTreeSet;

use tesseract_model::schema::Info;
use tesseract_model::{AbstractTree, JacobianBlocks, Tree, Vectors};

use crate::{
    AbstractEval, AbstractInputs, Arrays, BatchedJvp, BatchedVjp, Error, Inputs, Jacobian, Jvp,
    Tesseract, Vjp,
};

/// The component's metadata.
pub fn metadata<T: Tesseract>() -> Info {
    T::schema().into_info()
}

/// Runs `apply`.
///
/// # Errors
/// Whatever the implementation returns.
pub fn apply<T: Tesseract>(inputs: Tree) -> Result<Tree, Error> {
    Ok(T::default()
        .apply(&Inputs::from_tree(inputs).declared_by(T::schema))?
        .into_tree())
}

/// Runs `jacobian` and checks every requested block is present.
///
/// # Errors
/// Whatever the implementation returns, or `failed` if a block is missing.
pub fn jacobian<T: Jacobian>(
    inputs: Tree,
    jac_inputs: &[String],
    jac_outputs: &[String],
) -> Result<JacobianBlocks, Error> {
    let blocks = T::default()
        .jacobian(
            &Inputs::from_tree(inputs).declared_by(T::schema),
            jac_inputs,
            jac_outputs,
        )?
        .into_blocks();
    for out in jac_outputs {
        for input in jac_inputs {
            if !blocks.contains_key(&(out.clone(), input.clone())) {
                return Err(Error::failed(format!(
                    "jacobian returned no block for ({out}, {input})"
                )));
            }
        }
    }
    Ok(blocks)
}

fn check_keys(what: &str, got: &Vectors, expected: &[String]) -> Result<(), Error> {
    let got: BTreeSet<&str> = got.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    if got != want {
        return Err(Error::failed(format!(
            "{what} returned keys {got:?}, expected {want:?}"
        )));
    }
    Ok(())
}

fn check_batch(what: &str, got: &Vectors, count: usize) -> Result<(), Error> {
    for (path, t) in got {
        if t.shape().first() != Some(&count) {
            return Err(Error::failed(format!(
                "{what} returned `{path}` with shape {:?}, expected a leading batch axis of {count}",
                t.shape()
            )));
        }
    }
    Ok(())
}

/// Runs one jacobian-vector product.
///
/// # Errors
/// Whatever the implementation returns, or `failed` if it answers other outputs than asked.
pub fn jvp<T: Jvp>(
    inputs: Tree,
    jvp_inputs: &[String],
    jvp_outputs: &[String],
    tangent: Vectors,
) -> Result<Vectors, Error> {
    let out = T::default()
        .jvp(
            &Inputs::from_tree(inputs).declared_by(T::schema),
            jvp_inputs,
            jvp_outputs,
            &Arrays::from_vectors(tangent),
        )?
        .into_vectors();
    check_keys("jvp", &out, jvp_outputs)?;
    Ok(out)
}

/// Runs one vector-jacobian product.
///
/// # Errors
/// Whatever the implementation returns, or `failed` if it answers other inputs than asked.
pub fn vjp<T: Vjp>(
    inputs: Tree,
    vjp_inputs: &[String],
    vjp_outputs: &[String],
    cotangent: Vectors,
) -> Result<Vectors, Error> {
    let out = T::default()
        .vjp(
            &Inputs::from_tree(inputs).declared_by(T::schema),
            vjp_inputs,
            vjp_outputs,
            &Arrays::from_vectors(cotangent),
        )?
        .into_vectors();
    check_keys("vjp", &out, vjp_inputs)?;
    Ok(out)
}

/// Runs abstract_eval.
///
/// # Errors
/// Whatever the implementation returns.
pub fn abstract_eval<T: AbstractEval>(inputs: AbstractTree) -> Result<AbstractTree, Error> {
    Ok(T::default()
        .abstract_eval(&AbstractInputs::from_tree(inputs))?
        .into_tree())
}

/// Runs K jacobian-vector products at one primal.
///
/// # Errors
/// Whatever the implementation returns, or `failed` if keys or batch axes are wrong.
pub fn batched_jvp<T: BatchedJvp>(
    inputs: Tree,
    jvp_inputs: &[String],
    jvp_outputs: &[String],
    tangents: Vectors,
    count: usize,
) -> Result<Vectors, Error> {
    let out = T::default()
        .batched_jvp(
            &Inputs::from_tree(inputs).declared_by(T::schema),
            jvp_inputs,
            jvp_outputs,
            &Arrays::from_vectors(tangents),
            count,
        )?
        .into_vectors();
    check_keys("batched jvp", &out, jvp_outputs)?;
    check_batch("batched jvp", &out, count)?;
    Ok(out)
}

/// Runs K vector-jacobian products at one primal.
///
/// # Errors
/// Whatever the implementation returns, or `failed` if keys or batch axes are wrong.
pub fn batched_vjp<T: BatchedVjp>(
    inputs: Tree,
    vjp_inputs: &[String],
    vjp_outputs: &[String],
    cotangents: Vectors,
    count: usize,
) -> Result<Vectors, Error> {
    let out = T::default()
        .batched_vjp(
            &Inputs::from_tree(inputs).declared_by(T::schema),
            vjp_inputs,
            vjp_outputs,
            &Arrays::from_vectors(cotangents),
            count,
        )?
        .into_vectors();
    check_keys("batched vjp", &out, vjp_inputs)?;
    check_batch("batched vjp", &out, count)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use ndarray::arr2;
    use tesseract_model::{ErrorKind, Leaf};

    use crate::{DType, Field, Outputs, Schema, to_tensor};

    use super::*;

    /// Declares a matrix, reads it as a vector: its own bug.
    #[derive(Default)]
    struct ReadsMatrixAsVector;

    impl Tesseract for ReadsMatrixAsVector {
        fn schema() -> Schema {
            Schema::new("t", "0.1.0")
                .input(Field::array("m", DType::Float64, [None, None]))
                .output(Field::array("y", DType::Float64, [None]))
        }

        fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
            let m = inputs.array1::<f64>("m")?;
            Ok(Outputs::new().with_array("y", m.to_owned()))
        }
    }

    #[test]
    fn apply_knows_the_schema_so_a_fixed_rank_misread_is_failed() {
        let mut tree = Tree::new();
        tree.insert("m".into(), Leaf::Tensor(to_tensor(arr2(&[[1.0, 2.0]]))));
        match apply::<ReadsMatrixAsVector>(tree) {
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Failed, "{}", e.message);
                assert!(e.message.contains("bug in the component"), "{}", e.message);
            }
            Ok(t) => panic!("expected an error, got {t:?}"),
        }
    }
}
