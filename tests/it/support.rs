//! Shared helpers: engines with test limits, loading components once per process, building
//! validated input trees, tensors, and relative-error assertions.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tesseract_model::{
    AbstractLeaf, AbstractTree, DType, Data, JacobianBlocks, Leaf, Plain, ShapeDType, Tensor, Tree,
    Vectors,
};
use tesseract_wasm::codec::DecodeOptions;
use tesseract_wasm::component::Tesseract;
use tesseract_wasm::engine::{Engine, EngineOptions, Limits};
use tesseract_wasm::runtime::{Runtime, RuntimeOptions};

/// Limits for ordinary tests: generous deadline (a slow CI machine must not time out a
/// correct call), a memory cap well above what the examples need, and two loop workers.
pub fn test_limits() -> Limits {
    Limits {
        max_memory_bytes: 256 << 20,
        timeout: Duration::from_secs(60),
        max_output_bytes: 64 << 10,
        loop_parallelism: 2,
        ..Limits::default()
    }
}

/// Limits for sandbox tests: a 1 s deadline and a 64 MiB memory cap.
pub fn sandbox_limits() -> Limits {
    Limits {
        max_memory_bytes: 64 << 20,
        timeout: Duration::from_secs(1),
        max_output_bytes: 64 << 10,
        loop_parallelism: 2,
        ..Limits::default()
    }
}

/// A new engine with these limits and this precompiled cache (`None`: no cache).
pub fn new_engine(limits: Limits, cache_dir: Option<PathBuf>) -> Engine {
    Engine::new(EngineOptions { limits, cache_dir })
        .expect("the test engine configuration is valid")
}

/// The cache directory of the shared engines: under cargo's per-target scratch directory, so
/// tests never touch the user's cache and reruns skip compiling unchanged components.
fn shared_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("precompiled")
}

/// One engine per process for ordinary tests, with [`test_limits`].
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| new_engine(test_limits(), Some(shared_cache_dir())))
}

/// One engine per process for sandbox tests, with [`sandbox_limits`].
pub fn sandbox_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| new_engine(sandbox_limits(), Some(shared_cache_dir())))
}

type Loaded = Mutex<HashMap<&'static str, Arc<OnceLock<Arc<Tesseract>>>>>;

/// Loads `path` with `engine` once per process; concurrent callers wait for the one load.
fn load_once(
    engine: &'static Engine,
    loaded: &'static Loaded,
    path: &'static str,
) -> Arc<Tesseract> {
    let cell = Arc::clone(
        loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(path)
            .or_default(),
    );
    Arc::clone(cell.get_or_init(|| {
        Tesseract::load(engine, Path::new(path))
            .unwrap_or_else(|e| panic!("cannot load {path}: {e}"))
    }))
}

/// The component at `path`, loaded with [`engine`].
pub fn load(path: &'static str) -> Arc<Tesseract> {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    load_once(engine(), LOADED.get_or_init(Loaded::default), path)
}

/// The component at `path`, loaded with [`sandbox_engine`].
pub fn load_sandboxed(path: &'static str) -> Arc<Tesseract> {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    load_once(sandbox_engine(), LOADED.get_or_init(Loaded::default), path)
}

/// A runtime with default options for the component at `path`.
pub fn runtime(path: &'static str) -> Runtime {
    Runtime::new(load(path), RuntimeOptions::default())
}

/// A runtime that ignores batched exports, so batches take the looped route.
pub fn looping_runtime(path: &'static str) -> Runtime {
    Runtime::new(
        load(path),
        RuntimeOptions {
            ignore_batched_exports: true,
        },
    )
}

/// Validates request-style `inputs` JSON against the component's schema (defaults filled,
/// arrays cast), exactly as a request would reach the guest.
pub fn tree(component: &Tesseract, inputs: Value) -> Tree {
    tesseract_wasm::schema::validate_inputs(
        component.info(),
        &inputs,
        &DecodeOptions::default(),
        &[],
    )
    .unwrap_or_else(|e| panic!("test inputs {inputs} are invalid: {e}"))
}

/// The shapes and dtypes of `pairs`, as abstract_eval takes them.
pub fn abstract_tree<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a [usize], DType)>,
) -> AbstractTree {
    pairs
        .into_iter()
        .map(|(p, shape, dtype)| {
            (
                p.to_owned(),
                AbstractLeaf::Array(ShapeDType {
                    shape: shape.to_vec(),
                    dtype,
                }),
            )
        })
        .collect()
}

pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// A float64 tensor.
pub fn t64(shape: &[usize], data: Vec<f64>) -> Tensor {
    Tensor::new(shape.to_vec(), Data::Float64(data)).expect("consistent test tensor")
}

/// A float64 scalar.
pub fn s64(x: f64) -> Tensor {
    Tensor::scalar(x)
}

/// A float32 tensor.
pub fn t32(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::new(shape.to_vec(), Data::Float32(data)).expect("consistent test tensor")
}

/// (Co)tangents from (path, tensor) pairs.
pub fn vectors<'a>(pairs: impl IntoIterator<Item = (&'a str, Tensor)>) -> Vectors {
    pairs.into_iter().map(|(p, t)| (p.to_owned(), t)).collect()
}

/// A tensor's elements as f64.
pub fn f64s(t: &Tensor) -> Vec<f64> {
    t.data().to_f64()
}

/// The only element of a scalar tensor.
pub fn scalar_of(t: &Tensor) -> f64 {
    assert!(
        t.shape().is_empty(),
        "expected a scalar, got shape {:?}",
        t.shape()
    );
    f64s(t)[0]
}

/// The array leaf at `path`.
pub fn array<'a>(tree: &'a Tree, path: &str) -> &'a Tensor {
    match tree.get(path) {
        Some(Leaf::Tensor(t)) => t,
        other => panic!("expected an array at `{path}`, got {other:?}"),
    }
}

/// The plain leaf at `path`.
pub fn plain<'a>(tree: &'a Tree, path: &str) -> &'a Plain {
    match tree.get(path) {
        Some(Leaf::Plain(p)) => p,
        other => panic!("expected a plain value at `{path}`, got {other:?}"),
    }
}

/// The jacobian block ∂`out`/∂`input`.
pub fn block<'a>(jac: &'a JacobianBlocks, out: &str, input: &str) -> &'a Tensor {
    jac.get(&(out.to_owned(), input.to_owned()))
        .unwrap_or_else(|| panic!("no jacobian block ({out}, {input})"))
}

/// ∞-norm relative error: `max|got − want| / max(max|want|, max|got|)` (0 when both are 0).
pub fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let diff = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max);
    let scale = got.iter().chain(want).map(|x| x.abs()).fold(0.0, f64::max);
    if diff == 0.0 { 0.0 } else { diff / scale }
}

/// Asserts [`rel_err`] ≤ `tol`, naming `what` on failure.
pub fn assert_rel(got: &[f64], want: &[f64], tol: f64, what: impl Display) {
    let e = rel_err(got, want);
    assert!(
        e <= tol,
        "{what}: relative error {e:e} > {tol:e}\n got: {got:?}\nwant: {want:?}"
    );
}

/// Asserts two tensors have the same shape and the same elements, compared as floats with
/// [`assert_rel`].
pub fn assert_tensor_rel(got: &Tensor, want: &Tensor, tol: f64, what: impl Display) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    assert_rel(&f64s(got), &f64s(want), tol, what);
}

/// A tensor's shape, dtype and elements' bit patterns: equal iff the tensors are bitwise equal.
fn bits(t: &Tensor) -> (Vec<usize>, DType, Vec<u64>) {
    let bits = match t.data() {
        Data::Float32(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
        Data::Float64(v) => v.iter().map(|x| x.to_bits()).collect(),
        Data::Int32(v) => v.iter().map(|&x| x as u64).collect(),
        Data::Int64(v) => v.iter().map(|&x| x as u64).collect(),
        Data::Bool(v) => v.iter().map(|&x| u64::from(x)).collect(),
    };
    (t.shape().to_vec(), t.dtype(), bits)
}

/// Asserts two tensors are bitwise identical.
pub fn assert_bitwise(got: &Tensor, want: &Tensor, what: impl Display) {
    assert!(
        bits(got) == bits(want),
        "{what}: not bitwise equal\n got: {got:?}\nwant: {want:?}"
    );
}

/// Asserts two maps of tensors have the same keys and bitwise identical tensors.
pub fn assert_vectors_bitwise<K: Ord + std::fmt::Debug>(
    got: &std::collections::BTreeMap<K, Tensor>,
    want: &std::collections::BTreeMap<K, Tensor>,
    what: impl Display,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: keys differ"
    );
    for (k, w) in want {
        assert_bitwise(&got[k], w, format!("{what} at {k:?}"));
    }
}

/// Asserts two trees have the same paths, bitwise identical arrays and equal plain values
/// (floats compared bitwise too).
pub fn assert_trees_bitwise(got: &Tree, want: &Tree, what: impl Display) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: paths differ"
    );
    for (p, w) in want {
        match (&got[p], w) {
            (Leaf::Tensor(g), Leaf::Tensor(w)) => assert_bitwise(g, w, format!("{what} at `{p}`")),
            (Leaf::Plain(Plain::Float(g)), Leaf::Plain(Plain::Float(w))) => {
                assert_eq!(g.to_bits(), w.to_bits(), "{what} at `{p}`");
            }
            (g, w) => assert_eq!(g, w, "{what} at `{p}`"),
        }
    }
}

/// The row `k` of a batched tensor `[K, *rest]`.
pub fn row(t: &Tensor, k: usize) -> Tensor {
    t.unstack().expect("a batched tensor")[k].clone()
}

/// Splits stacked (co)tangents `[K, *shape]` into K maps.
pub fn unstack(v: &Vectors, count: usize) -> Vec<Vectors> {
    (0..count)
        .map(|k| v.iter().map(|(p, t)| (p.clone(), row(t, k))).collect())
        .collect()
}

/// Stacks K (co)tangent maps on a new leading axis.
pub fn stack(parts: &[Vectors]) -> Vectors {
    parts[0]
        .keys()
        .map(|p| {
            let column: Vec<Tensor> = parts.iter().map(|v| v[p].clone()).collect();
            (
                p.clone(),
                Tensor::stack(&column).expect("parts agree in shape"),
            )
        })
        .collect()
}

/// A deterministic, non-trivial sequence in [-1, 1]: `sin(a·i + b)`.
pub fn wave(n: usize, a: f64, b: f64) -> Vec<f64> {
    (0..n).map(|i| (a * i as f64 + b).sin()).collect()
}

/// Inner product.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Σ over paths of ⟨a[p], b[p]⟩, for the dot-product test.
pub fn dot_vectors(a: &Vectors, b: &Vectors) -> f64 {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "paired vectors must share keys"
    );
    a.iter().map(|(p, t)| dot(&f64s(t), &f64s(&b[p]))).sum()
}

/// |a − b| / max(|a|, |b|), for scalars.
pub fn rel_diff(a: f64, b: f64) -> f64 {
    rel_err(&[a], &[b])
}

// ---------------------------------------------------------------------------------------------
// Derivative checks through a runtime: finite differences, stacked jvps, the dot-product test
// ---------------------------------------------------------------------------------------------

/// `inputs` with `step·tangent[p]` added to each primal `p`, in the primal's dtype.
fn shifted(inputs: &Tree, tangent: &Vectors, step: f64) -> Tree {
    let mut out = inputs.clone();
    for (p, t) in tangent {
        let primal = array(inputs, p);
        assert_eq!(
            primal.shape(),
            t.shape(),
            "tangent `{p}` must have its primal's shape"
        );
        let moved: Vec<f64> = f64s(primal)
            .iter()
            .zip(f64s(t))
            .map(|(x, d)| x + step * d)
            .collect();
        let moved = Tensor::new(
            primal.shape().to_vec(),
            Data::from_f64(primal.dtype(), &moved),
        )
        .expect("same shape");
        out.insert(p.clone(), Leaf::Tensor(moved));
    }
    out
}

/// Central finite differences of apply along `tangent`, for the array `outputs`:
/// `(f(x + h·t) − f(x − h·t)) / 2h`, as float64.
pub fn fd_jvp(
    rt: &Runtime,
    inputs: &Tree,
    outputs: &[String],
    tangent: &Vectors,
    h: f64,
) -> Vectors {
    let plus = rt
        .apply(shifted(inputs, tangent, h))
        .expect("apply at x + h·t")
        .value;
    let minus = rt
        .apply(shifted(inputs, tangent, -h))
        .expect("apply at x − h·t")
        .value;
    outputs
        .iter()
        .map(|o| {
            let (p, m) = (array(&plus, o), array(&minus, o));
            let d: Vec<f64> = f64s(p)
                .iter()
                .zip(f64s(m))
                .map(|(a, b)| (a - b) / (2.0 * h))
                .collect();
            (o.clone(), t64(p.shape(), d))
        })
        .collect()
}

/// Zero (co)tangents for `paths` of `tree`, each in its array's shape and dtype.
pub fn zeros_like(tree: &Tree, paths: &[String]) -> Vectors {
    paths
        .iter()
        .map(|p| {
            let t = array(tree, p);
            (
                p.clone(),
                Tensor::zeros(t.dtype(), t.shape().to_vec()).expect("valid shape"),
            )
        })
        .collect()
}

/// One-hot tangents over `paths` of `inputs`: for every element `e` of every path `p`, a map
/// with 1 at (p, e) and zeros elsewhere, in the primals' shapes and dtypes.
pub fn basis_tangents(inputs: &Tree, paths: &[String]) -> Vec<(String, usize, Vectors)> {
    let zeros = zeros_like(inputs, paths);
    let mut out = Vec::new();
    for p in paths {
        let z = &zeros[p];
        for e in 0..z.len() {
            let mut d = vec![0.0; z.len()];
            d[e] = 1.0;
            let mut v = zeros.clone();
            v.insert(
                p.clone(),
                Tensor::new(z.shape().to_vec(), Data::from_f64(z.dtype(), &d)).expect("same shape"),
            );
            out.push((p.clone(), e, v));
        }
    }
    out
}

/// Assembles a jacobian column by column from jvps with one-hot tangents (one jvp per input
/// element), as float64 blocks of shape `(*out, *in)`.
pub fn jacobian_from_jvps(
    rt: &Runtime,
    inputs: &Tree,
    ins: &[String],
    outs: &[String],
) -> JacobianBlocks {
    let mut columns: std::collections::BTreeMap<(String, String), Vec<Vec<f64>>> =
        Default::default();
    let mut out_shapes: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for (p, _, tangent) in basis_tangents(inputs, ins) {
        let jvp = rt.jvp(inputs, ins, outs, &tangent).expect("jvp").value;
        for o in outs {
            out_shapes.insert(o.clone(), jvp[o].shape().to_vec());
            columns
                .entry((o.clone(), p.clone()))
                .or_default()
                .push(f64s(&jvp[o]));
        }
    }
    columns
        .into_iter()
        .map(|((o, i), cols)| {
            let out_shape = &out_shapes[&o];
            let m: usize = out_shape.iter().product();
            let n = cols.len();
            let mut data = vec![0.0; m * n];
            for (q, col) in cols.iter().enumerate() {
                for (r, &x) in col.iter().enumerate() {
                    data[r * n + q] = x;
                }
            }
            let shape = [out_shape.as_slice(), array(inputs, &i).shape()].concat();
            ((o, i), t64(&shape, data))
        })
        .collect()
}

/// The gradient of `⟨c, f(x)⟩` over `ins` by central differences along every basis tangent:
/// what a vjp with cotangent `c` must return, as float64.
pub fn fd_vjp(rt: &Runtime, inputs: &Tree, ins: &[String], cotangent: &Vectors, h: f64) -> Vectors {
    let outs: Vec<String> = cotangent.keys().cloned().collect();
    let mut grads: Vectors = zeros_like(inputs, ins)
        .into_iter()
        .map(|(p, z)| (p, t64(z.shape(), vec![0.0; z.len()])))
        .collect();
    for (p, e, tangent) in basis_tangents(inputs, ins) {
        let d = dot_vectors(cotangent, &fd_jvp(rt, inputs, &outs, &tangent, h));
        let g = grads.get_mut(&p).expect("gradient slot");
        let mut v = f64s(g);
        v[e] = d;
        *g = t64(g.shape(), v);
    }
    grads
}

/// The two sides of the dot-product test, `(⟨c, J·t⟩, ⟨Jᵀ·c, t⟩)`, through the runtime's jvp and
/// vjp.
pub fn dot_product_sides(
    rt: &Runtime,
    inputs: &Tree,
    ins: &[String],
    outs: &[String],
    t: &Vectors,
    c: &Vectors,
) -> (f64, f64) {
    let jt = rt.jvp(inputs, ins, outs, t).expect("jvp").value;
    let jtc = rt.vjp(inputs, ins, outs, c).expect("vjp").value;
    (dot_vectors(c, &jt), dot_vectors(&jtc, t))
}

/// Asserts two maps of tensors have the same keys and tensors equal to `tol` ([`rel_err`]).
pub fn assert_vectors_rel<K: Ord + std::fmt::Debug>(
    got: &std::collections::BTreeMap<K, Tensor>,
    want: &std::collections::BTreeMap<K, Tensor>,
    tol: f64,
    what: impl Display,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: keys differ"
    );
    for (k, w) in want {
        assert_eq!(got[k].dtype(), w.dtype(), "{what} at {k:?}: dtypes differ");
        assert_tensor_rel(&got[k], w, tol, format!("{what} at {k:?}"));
    }
}

/// Asserts two trees have the same paths, arrays equal to `tol` and equal plain values.
pub fn assert_trees_rel(got: &Tree, want: &Tree, tol: f64, what: impl Display) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: paths differ"
    );
    for (p, w) in want {
        match (&got[p], w) {
            (Leaf::Tensor(g), Leaf::Tensor(w)) => {
                assert_eq!(g.dtype(), w.dtype(), "{what} at `{p}`: dtypes differ");
                assert_tensor_rel(g, w, tol, format!("{what} at `{p}`"));
            }
            (g, w) => assert_eq!(g, w, "{what} at `{p}`"),
        }
    }
}
