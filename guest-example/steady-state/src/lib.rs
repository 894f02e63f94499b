//! Build and serve this example with
//!
//! ```text
//! tesseract-wasm build guest-example/steady-state
//! tesseract-wasm serve <printed .wasm path>
//! ```
//!
//! `steady-state` solves the nonlinear system
//!
//! ```text
//! F(u) = u + c·S·tanh(u) − f = 0,   S[i,j] = √(2/(n+1))·sin(π(i+1)(j+1)/(n+1))
//! ```
//!
//! by Newton's method (dense LU with partial pivoting from `faer`) and differentiates the
//! solution implicitly: with `J = ∂F/∂u = I + c·S·diag(1 − tanh²(u))` at the solution,
//! `du = J⁻¹(df − dc·S·tanh(u))`. S is orthogonal and symmetric, so for `|c| < 1` the
//! system has a unique solution and `J` is always invertible.
//!
//! It is the example where batching pays: one Newton solve and one LU factorisation serve
//! all K tangents of `batched_jvp` / `batched_vjp`, which are applied as a single
//! multi-right-hand-side triangular solve.

mod lu;

use faer::MatMut;
use lu::Lu;
use ndarray::{Array1, Array2, ArrayD, IxDyn};
use tesseract_guest::{
    AbstractEval, AbstractInputs, AbstractOutputs, Arrays, BatchedJvp, BatchedVjp, DType, Error,
    Field, Inputs, Jacobian, JacobianBlocks, Jvp, Outputs, Plain, Schema, Tesseract, Vjp,
};

/// Newton solve of `u + c·S·tanh(u) = f` with implicit derivatives.
#[derive(Debug, Default)]
pub struct SteadyState;

const DIFFERENTIABLE_INPUTS: [&str; 2] = ["f", "coupling"];
const DIFFERENTIABLE_OUTPUTS: [&str; 1] = ["u"];

struct Problem {
    f: Vec<f64>,
    coupling: f64,
    tol: f64,
    max_iter: i64,
}

impl Problem {
    fn read(inputs: &Inputs) -> Result<Problem, Error> {
        let f = inputs.array1::<f64>("f")?.to_vec();
        if f.is_empty() {
            return Err(Error::invalid_input("`f` must have at least one element"));
        }
        if f.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid_input("`f` must be finite"));
        }
        let coupling = inputs.scalar::<f64>("coupling")?;
        if coupling.is_nan() || coupling.abs() >= 1.0 {
            return Err(Error::invalid_input(format!(
                "`coupling` must satisfy |coupling| < 1, got {coupling}"
            )));
        }
        let max_iter = inputs.integer("max_iter")?;
        if max_iter < 0 {
            return Err(Error::invalid_input(format!(
                "`max_iter` must be non-negative, got {max_iter}"
            )));
        }
        Ok(Problem {
            f,
            coupling,
            tol: inputs.scalar::<f64>("tol")?,
            max_iter,
        })
    }

    fn n(&self) -> usize {
        self.f.len()
    }
}

/// The n×n sine matrix S. It is symmetric, so this one contiguous buffer is both its
/// column-major and its row-major layout.
///
/// `sin(π·m/(n+1))` depends on `m` only modulo `2(n+1)`, so a table of 2n+2 sines replaces n²
/// calls to `sin` (a software routine in wasm) and reduces the angle exactly, in integers.
fn sine_matrix(n: usize) -> Vec<f64> {
    let scale = (2.0 / (n + 1) as f64).sqrt();
    let denom = (n + 1) as f64;
    let period = 2 * (n as u64 + 1);
    let table: Vec<f64> = (0..period)
        .map(|m| scale * (std::f64::consts::PI * m as f64 / denom).sin())
        .collect();
    let mut s = Vec::with_capacity(n * n);
    for j in 1..=n as u64 {
        for i in 1..=n as u64 {
            // The index is below `period`, which came from a usize.
            s.push(table[((i * j) % period) as usize]);
        }
    }
    s
}

/// `out = S·v`, as a sum of scaled columns: contiguous axpys that vectorise, in wasm too.
fn sine_matvec(s: &[f64], v: &[f64], out: &mut [f64]) {
    out.fill(0.0);
    for (column, &vj) in s.chunks_exact(v.len()).zip(v) {
        for (o, &sij) in out.iter_mut().zip(column) {
            *o += sij * vj;
        }
    }
}

/// Largest |x|, or NaN if any element is NaN, so a diverged iterate never looks converged.
fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m: f64, &x| {
        if m.is_nan() || x.is_nan() {
            f64::NAN
        } else {
            m.max(x.abs())
        }
    })
}

/// LU of `J = I + c·S·diag(1 − t²)` for `t = tanh(u)`, factorised in the buffer J is built in.
fn jacobian_lu(s: &[f64], coupling: f64, tanh_u: &[f64]) -> Lu {
    let n = tanh_u.len();
    let mut j = Vec::with_capacity(n * n);
    for (col, (column, &t)) in s.chunks_exact(n).zip(tanh_u).enumerate() {
        let scale = coupling * (1.0 - t * t);
        j.extend(column.iter().map(|&sij| scale * sij));
        j[col * n + col] += 1.0;
    }
    Lu::factor(j, n)
}

/// The inputs of the LU [`lu_kernel_seconds`] times, prepared once, so that a benchmark
/// harness with its own clock (criterion's `b.iter`) can time [`LuKernel::factor`] alone.
pub struct LuKernel {
    s: Vec<f64>,
    tanh_u: Vec<f64>,
}

impl LuKernel {
    /// The n×n Jacobian's ingredients at a fixed, reproducible state.
    pub fn new(n: usize) -> LuKernel {
        LuKernel {
            s: sine_matrix(n),
            tanh_u: (0..n).map(|i| (i as f64 * 0.37).sin().tanh()).collect(),
        }
    }

    /// Builds J and factorises it: exactly the call `newton` makes. The factors are returned
    /// only so the caller can `black_box` them.
    pub fn factor(&self) -> impl Sized + use<> {
        jacobian_lu(&self.s, 0.5, &self.tanh_u)
    }
}

/// Median wall time, in seconds, of `reps` LU factorisations of the n×n Jacobian Newton
/// factorises (`J = I + c·S·diag(1 − tanh²(u))`), timed around exactly the call `newton`
/// makes. For the benchmark harness, which runs it natively and in wasm (through the
/// `lu_kernel` example) to report the kernel's GFLOP/s (2n³/3 flops).
pub fn lu_kernel_seconds(n: usize, reps: usize) -> f64 {
    let kernel = LuKernel::new(n);
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let start = std::time::Instant::now();
            let lu = kernel.factor();
            let elapsed = start.elapsed().as_secs_f64();
            std::hint::black_box(lu);
            elapsed
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The converged state and what the derivatives need from it.
struct Solution {
    u: Vec<f64>,
    iterations: i64,
    tanh_u: Vec<f64>,
    /// `S·tanh(u)`, which is also `∂F/∂c`.
    s_tanh_u: Vec<f64>,
}

fn newton(p: &Problem, s: &[f64]) -> Result<Solution, Error> {
    let n = p.n();
    let threshold = p.tol * max_abs(&p.f).max(1.0);
    let mut u = p.f.clone();
    let mut tanh_u = vec![0.0; n];
    let mut s_tanh_u = vec![0.0; n];
    let mut residual = vec![0.0; n];
    let mut updates = 0;
    loop {
        for (t, &ui) in tanh_u.iter_mut().zip(&u) {
            *t = ui.tanh();
        }
        sine_matvec(s, &tanh_u, &mut s_tanh_u);
        for (((r, &ui), &sti), &fi) in residual.iter_mut().zip(&u).zip(&s_tanh_u).zip(&p.f) {
            *r = ui + p.coupling * sti - fi;
        }
        let size = max_abs(&residual);
        if size <= threshold {
            break;
        }
        if updates == p.max_iter {
            return Err(Error::failed(format!(
                "did not converge in {} iterations: max|F(u)| = {size:e}",
                p.max_iter
            )));
        }
        let lu = jacobian_lu(s, p.coupling, &tanh_u);
        lu.solve_in_place(MatMut::from_column_major_slice_mut(&mut residual, n, 1));
        for (ui, &step) in u.iter_mut().zip(&residual) {
            *ui -= step;
        }
        updates += 1;
    }
    Ok(Solution {
        u,
        iterations: updates,
        tanh_u,
        s_tanh_u,
    })
}

/// The solution with `J` factorised once, ready for any number of derivative solves.
struct Linearization {
    n: usize,
    lu: Lu,
    s_tanh_u: Vec<f64>,
}

impl Linearization {
    fn at(inputs: &Inputs) -> Result<Linearization, Error> {
        let p = Problem::read(inputs)?;
        let s = sine_matrix(p.n());
        let sol = newton(&p, &s)?;
        Ok(Linearization {
            n: p.n(),
            lu: jacobian_lu(&s, p.coupling, &sol.tanh_u),
            s_tanh_u: sol.s_tanh_u,
        })
    }

    /// K tangents at once: `du_k = J⁻¹(df_k − dc_k·S·tanh(u))`. A C-ordered [K, n] stack is
    /// exactly an n×K column-major matrix, so the buffers go to faer without transposing.
    fn jvp(&self, df: Option<Vec<f64>>, dc: Option<Vec<f64>>, count: usize) -> Vec<f64> {
        let n = self.n;
        let mut rhs = df.unwrap_or_else(|| vec![0.0; count * n]);
        if let Some(dc) = dc {
            for (column, &dck) in rhs.chunks_exact_mut(n).zip(&dc) {
                for (r, &st) in column.iter_mut().zip(&self.s_tanh_u) {
                    *r -= dck * st;
                }
            }
        }
        if count > 0 {
            self.lu
                .solve_in_place(MatMut::from_column_major_slice_mut(&mut rhs, n, count));
        }
        rhs
    }

    /// K cotangents at once: `λ_k = J⁻ᵀ ū_k`, `f̄_k = λ_k`, `c̄_k = −λ_k·S·tanh(u)`.
    fn vjp(&self, u_bar: Option<Vec<f64>>, count: usize) -> (Vec<f64>, Vec<f64>) {
        let n = self.n;
        let mut lambda = u_bar.unwrap_or_else(|| vec![0.0; count * n]);
        if count > 0 {
            self.lu
                .solve_transpose_in_place(MatMut::from_column_major_slice_mut(
                    &mut lambda,
                    n,
                    count,
                ));
        }
        let c_bar = lambda
            .chunks_exact(n)
            .map(|l| {
                -l.iter()
                    .zip(&self.s_tanh_u)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            })
            .collect();
        (lambda, c_bar)
    }
}

fn check_paths(kind: &str, paths: &[String], allowed: &[&str]) -> Result<(), Error> {
    match paths.iter().find(|p| !allowed.contains(&p.as_str())) {
        Some(p) => Err(Error::invalid_input(format!(
            "`{p}` is not a differentiable {kind} of steady-state (expected one of {allowed:?})"
        ))),
        None => Ok(()),
    }
}

/// The (co)tangent at `path` if it is among `selected`, checked against `shape`, in C order.
fn stacked(
    arrays: &Arrays,
    selected: &[String],
    path: &str,
    shape: &[usize],
) -> Result<Option<Vec<f64>>, Error> {
    if !selected.iter().any(|p| p == path) {
        return Ok(None);
    }
    let view = arrays.get::<f64>(path)?;
    if view.shape() != shape {
        return Err(Error::invalid_input(format!(
            "(co)tangent for `{path}` has shape {:?}, expected {shape:?}",
            view.shape()
        )));
    }
    // The host hands over C-ordered buffers: one memcpy. Walking a dynamic-rank view element
    // by element cost 9 ns per element in wasm (4% of a K=64, n=64 batched jvp).
    Ok(Some(match view.as_slice() {
        Some(contiguous) => contiguous.to_vec(),
        None => view.iter().copied().collect(),
    }))
}

fn shaped(shape: &[usize], data: Vec<f64>) -> Result<ArrayD<f64>, Error> {
    ArrayD::from_shape_vec(IxDyn(shape), data)
        .map_err(|e| Error::failed(format!("internal shape error: {e}")))
}

/// Shared by the scalar (`batch = None`, shapes as the primal's) and batched (`Some(K)`,
/// a leading K axis) entry points.
fn jvp_impl(
    inputs: &Inputs,
    jvp_inputs: &[String],
    jvp_outputs: &[String],
    tangents: &Arrays,
    batch: Option<usize>,
) -> Result<Arrays, Error> {
    check_paths("input", jvp_inputs, &DIFFERENTIABLE_INPUTS)?;
    check_paths("output", jvp_outputs, &DIFFERENTIABLE_OUTPUTS)?;
    let lin = Linearization::at(inputs)?;
    let (count, lead) = match batch {
        Some(k) => (k, vec![k]),
        None => (1, vec![]),
    };
    let vector_shape = [lead.as_slice(), &[lin.n]].concat();
    let df = stacked(tangents, jvp_inputs, "f", &vector_shape)?;
    let dc = stacked(tangents, jvp_inputs, "coupling", &lead)?;
    let du = lin.jvp(df, dc, count);
    let mut out = Arrays::new();
    if !jvp_outputs.is_empty() {
        out.insert("u", shaped(&vector_shape, du)?);
    }
    Ok(out)
}

fn vjp_impl(
    inputs: &Inputs,
    vjp_inputs: &[String],
    vjp_outputs: &[String],
    cotangents: &Arrays,
    batch: Option<usize>,
) -> Result<Arrays, Error> {
    check_paths("input", vjp_inputs, &DIFFERENTIABLE_INPUTS)?;
    check_paths("output", vjp_outputs, &DIFFERENTIABLE_OUTPUTS)?;
    let lin = Linearization::at(inputs)?;
    let (count, lead) = match batch {
        Some(k) => (k, vec![k]),
        None => (1, vec![]),
    };
    let vector_shape = [lead.as_slice(), &[lin.n]].concat();
    let u_bar = stacked(cotangents, vjp_outputs, "u", &vector_shape)?;
    let (f_bar, c_bar) = lin.vjp(u_bar, count);
    let mut out = Arrays::new();
    for input in vjp_inputs {
        match input.as_str() {
            "f" => out.insert("f", shaped(&vector_shape, f_bar.clone())?),
            _ => out.insert("coupling", shaped(&lead, c_bar.clone())?),
        }
    }
    Ok(out)
}

impl Tesseract for SteadyState {
    fn schema() -> Schema {
        Schema::new("steady-state", "0.1.0")
            .description(
                "Solves the nonlinear steady state u + c·S·tanh(u) = f (S the orthogonal sine \
                 matrix) by Newton's method, with implicit derivatives.",
            )
            .input(
                Field::array("f", DType::Float64, [None])
                    .differentiable()
                    .description("Source term; its length n ≥ 1 sets the problem size."),
            )
            .input(
                Field::scalar("coupling", DType::Float64)
                    .differentiable()
                    .default(0.5)
                    .description("Coupling strength c; must satisfy |c| < 1."),
            )
            .input(
                Field::scalar("tol", DType::Float64)
                    .default(1e-12)
                    .description("Stop when max|F(u)| ≤ tol·max(1, max|f|)."),
            )
            .input(
                Field::integer("max_iter")
                    .default(50)
                    .description("Maximum number of Newton updates."),
            )
            .output(
                Field::array("u", DType::Float64, [None])
                    .differentiable()
                    .description("The steady state, same length as f."),
            )
            .output(Field::integer("iterations").description("Newton updates applied."))
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        let p = Problem::read(inputs)?;
        let sol = newton(&p, &sine_matrix(p.n()))?;
        Ok(Outputs::new()
            .with_array("u", Array1::from(sol.u))
            .with_plain("iterations", Plain::Int(sol.iterations)))
    }
}

impl Jacobian for SteadyState {
    fn jacobian(
        &self,
        inputs: &Inputs,
        jac_inputs: &[String],
        jac_outputs: &[String],
    ) -> Result<JacobianBlocks, Error> {
        check_paths("input", jac_inputs, &DIFFERENTIABLE_INPUTS)?;
        check_paths("output", jac_outputs, &DIFFERENTIABLE_OUTPUTS)?;
        let lin = Linearization::at(inputs)?;
        let n = lin.n;
        let mut blocks = JacobianBlocks::new();
        if jac_outputs.is_empty() {
            return Ok(blocks);
        }
        for input in jac_inputs {
            if input == "f" {
                // Solving Jᵀ X = I gives X = J⁻ᵀ, whose column-major buffer is J⁻¹ in C order:
                // the block ∂u/∂f without a transpose.
                let mut x = vec![0.0; n * n];
                x.iter_mut().step_by(n + 1).for_each(|d| *d = 1.0);
                lin.lu
                    .solve_transpose_in_place(MatMut::from_column_major_slice_mut(&mut x, n, n));
                let block = Array2::from_shape_vec((n, n), x)
                    .map_err(|e| Error::failed(format!("internal shape error: {e}")))?;
                blocks.insert("u", "f", block);
            } else {
                let du = lin.jvp(None, Some(vec![1.0]), 1);
                blocks.insert("u", "coupling", Array1::from(du));
            }
        }
        Ok(blocks)
    }
}

impl Jvp for SteadyState {
    fn jvp(
        &self,
        inputs: &Inputs,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangent: &Arrays,
    ) -> Result<Arrays, Error> {
        jvp_impl(inputs, jvp_inputs, jvp_outputs, tangent, None)
    }
}

impl Vjp for SteadyState {
    fn vjp(
        &self,
        inputs: &Inputs,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangent: &Arrays,
    ) -> Result<Arrays, Error> {
        vjp_impl(inputs, vjp_inputs, vjp_outputs, cotangent, None)
    }
}

impl BatchedJvp for SteadyState {
    fn batched_jvp(
        &self,
        inputs: &Inputs,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangents: &Arrays,
        count: usize,
    ) -> Result<Arrays, Error> {
        jvp_impl(inputs, jvp_inputs, jvp_outputs, tangents, Some(count))
    }
}

impl BatchedVjp for SteadyState {
    fn batched_vjp(
        &self,
        inputs: &Inputs,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangents: &Arrays,
        count: usize,
    ) -> Result<Arrays, Error> {
        vjp_impl(inputs, vjp_inputs, vjp_outputs, cotangents, Some(count))
    }
}

impl AbstractEval for SteadyState {
    fn abstract_eval(&self, inputs: &AbstractInputs) -> Result<AbstractOutputs, Error> {
        let n = match inputs.shape("f")? {
            &[n] if n >= 1 => n,
            other => {
                return Err(Error::invalid_input(format!(
                    "`f` must be a vector of length ≥ 1, got shape {other:?}"
                )));
            }
        };
        // The iteration count is only known by solving. Plain outputs of abstract_eval are
        // static placeholders (tesseract-jax treats non-array outputs as static), so 0 stands in.
        Ok(AbstractOutputs::new()
            .with_array("u", DType::Float64, [n])
            .with_plain("iterations", Plain::Int(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr0;
    use tesseract_guest::{ErrorKind, dispatch};
    use tesseract_model::{AbstractLeaf, Leaf, ShapeDType, Tensor, Vectors};

    fn source(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| 1.5 * (0.7 * i as f64 + 0.3).sin() + 0.2)
            .collect()
    }

    fn inputs(f: &[f64], c: f64) -> Inputs {
        Inputs::new()
            .with_array("f", Array1::from(f.to_vec()))
            .with_scalar("coupling", c)
            .with_scalar("tol", 1e-14)
            .with_plain("max_iter", Plain::Int(50))
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    fn values(t: &Tensor) -> Vec<f64> {
        t.as_slice::<f64>().expect("float64").to_vec()
    }

    fn solve(f: &[f64], c: f64) -> (Vec<f64>, i64) {
        let out = dispatch::apply::<SteadyState>(inputs(f, c).tree().clone()).expect("apply");
        let u = match out.get("u") {
            Some(Leaf::Tensor(t)) => values(t),
            other => panic!("unexpected u {other:?}"),
        };
        let iterations = match out.get("iterations") {
            Some(Leaf::Plain(Plain::Int(i))) => *i,
            other => panic!("unexpected iterations {other:?}"),
        };
        (u, iterations)
    }

    fn jvp(f: &[f64], c: f64, df: &[f64], dc: f64) -> Vec<f64> {
        let tangent = Arrays::new()
            .with("f", Array1::from(df.to_vec()))
            .with("coupling", arr0(dc))
            .into_vectors();
        let out = dispatch::jvp::<SteadyState>(
            inputs(f, c).tree().clone(),
            &strs(&["f", "coupling"]),
            &strs(&["u"]),
            tangent,
        )
        .expect("jvp");
        assert_eq!(out["u"].shape(), &[f.len()]);
        values(&out["u"])
    }

    fn vjp(f: &[f64], c: f64, u_bar: &[f64]) -> (Vec<f64>, f64) {
        let cotangent = Arrays::new()
            .with("u", Array1::from(u_bar.to_vec()))
            .into_vectors();
        let out = dispatch::vjp::<SteadyState>(
            inputs(f, c).tree().clone(),
            &strs(&["f", "coupling"]),
            &strs(&["u"]),
            cotangent,
        )
        .expect("vjp");
        assert_eq!(out["coupling"].shape(), &[] as &[usize]);
        (values(&out["f"]), values(&out["coupling"])[0])
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol * scale, "[{i}]: {g} vs {w}");
        }
    }

    #[test]
    fn sine_matrix_is_orthogonal() {
        let n = 7;
        let s = sine_matrix(n);
        for i in 0..n {
            for j in 0..n {
                let sij: f64 = (0..n).map(|k| s[i * n + k] * s[k * n + j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((sij - want).abs() < 1e-14, "(S·S)[{i},{j}] = {sij}");
                assert_eq!(s[i * n + j], s[j * n + i]);
            }
        }
    }

    #[test]
    fn solves_the_residual_equation() {
        let f = source(12);
        let (u, iterations) = solve(&f, 0.8);
        assert!(iterations > 0);
        let s = sine_matrix(f.len());
        let t: Vec<f64> = u.iter().map(|x| x.tanh()).collect();
        let mut st = vec![0.0; f.len()];
        sine_matvec(&s, &t, &mut st);
        for i in 0..f.len() {
            assert!((u[i] + 0.8 * st[i] - f[i]).abs() < 1e-13);
        }
    }

    #[test]
    fn scalar_case_matches_closed_form() {
        // n = 1: S = [1], so u + c·tanh(u) = f; check against the known root u = 1.
        let c = 0.5;
        let f = 1.0 + c * 1.0f64.tanh();
        let (u, _) = solve(&[f], c);
        assert!((u[0] - 1.0).abs() < 1e-14, "{}", u[0]);
    }

    #[test]
    fn zero_coupling_needs_no_update() {
        let f = source(5);
        let (u, iterations) = solve(&f, 0.0);
        assert_eq!(iterations, 0);
        assert_eq!(u, f);
    }

    #[test]
    fn rejects_bad_inputs() {
        let empty = inputs(&[], 0.5);
        let err = dispatch::apply::<SteadyState>(empty.tree().clone()).expect_err("n = 0");
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        for c in [1.0, -1.5, f64::NAN] {
            let err = dispatch::apply::<SteadyState>(inputs(&[1.0], c).tree().clone())
                .expect_err("|c| ≥ 1");
            assert_eq!(err.kind, ErrorKind::InvalidInput);
        }
        let err = dispatch::jvp::<SteadyState>(
            inputs(&[1.0], 0.5).tree().clone(),
            &strs(&["tol"]),
            &strs(&["u"]),
            Vectors::new(),
        )
        .expect_err("tol is not differentiable");
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn reports_non_convergence() {
        let tree = inputs(&source(4), 0.9)
            .with_plain("max_iter", Plain::Int(1))
            .tree()
            .clone();
        let err = dispatch::apply::<SteadyState>(tree).expect_err("one update is not enough");
        assert_eq!(err.kind, ErrorKind::Failed);
        assert!(
            err.message
                .starts_with("did not converge in 1 iterations: max|F(u)| = "),
            "{}",
            err.message
        );
    }

    #[test]
    fn jvp_matches_central_differences() {
        let n = 9;
        let (f, c) = (source(n), 0.7);
        let df: Vec<f64> = (0..n).map(|i| (1.1 * i as f64).cos()).collect();
        let dc = -0.4;
        let h = 1e-6;
        let fp: Vec<f64> = f.iter().zip(&df).map(|(x, d)| x + h * d).collect();
        let fm: Vec<f64> = f.iter().zip(&df).map(|(x, d)| x - h * d).collect();
        let (up, _) = solve(&fp, c + h * dc);
        let (um, _) = solve(&fm, c - h * dc);
        let fd: Vec<f64> = up
            .iter()
            .zip(&um)
            .map(|(p, m)| (p - m) / (2.0 * h))
            .collect();
        assert_close(&jvp(&f, c, &df, dc), &fd, 1e-7);
    }

    #[test]
    fn vjp_matches_central_differences() {
        let n = 6;
        let (f, c) = (source(n), -0.6);
        let u_bar: Vec<f64> = (0..n).map(|i| 0.5 - 0.3 * i as f64).collect();
        let (f_bar, c_bar) = vjp(&f, c, &u_bar);
        let h = 1e-6;
        let objective = |f: &[f64], c: f64| dot(&solve(f, c).0, &u_bar);
        let mut fd = Vec::new();
        for j in 0..n {
            let (mut fp, mut fm) = (f.clone(), f.clone());
            fp[j] += h;
            fm[j] -= h;
            fd.push((objective(&fp, c) - objective(&fm, c)) / (2.0 * h));
        }
        assert_close(&f_bar, &fd, 1e-7);
        let fd_c = (objective(&f, c + h) - objective(&f, c - h)) / (2.0 * h);
        assert_close(&[c_bar], &[fd_c], 1e-7);
    }

    #[test]
    fn dot_product_test() {
        for (n, c) in [(1, 0.3), (8, 0.9), (33, -0.95)] {
            let f = source(n);
            let df: Vec<f64> = (0..n).map(|i| (0.9 * i as f64 + 0.1).sin()).collect();
            let dc = 0.77;
            let w: Vec<f64> = (0..n).map(|i| (1.7 * i as f64).cos() - 0.2).collect();
            let lhs = dot(&w, &jvp(&f, c, &df, dc));
            let (f_bar, c_bar) = vjp(&f, c, &w);
            let rhs = dot(&f_bar, &df) + c_bar * dc;
            assert!(
                (lhs - rhs).abs() <= 1e-10 * lhs.abs().max(rhs.abs()),
                "n={n}: {lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn jacobian_matches_stacked_jvps() {
        let n = 5;
        let (f, c) = (source(n), 0.45);
        let blocks = dispatch::jacobian::<SteadyState>(
            inputs(&f, c).tree().clone(),
            &strs(&["f", "coupling"]),
            &strs(&["u"]),
        )
        .expect("jacobian");
        let jf = &blocks[&("u".to_string(), "f".to_string())];
        let jc = &blocks[&("u".to_string(), "coupling".to_string())];
        assert_eq!(jf.shape(), &[n, n]);
        assert_eq!(jc.shape(), &[n]);
        let jf = values(jf);
        for j in 0..n {
            let mut e = vec![0.0; n];
            e[j] = 1.0;
            let column = jvp(&f, c, &e, 0.0);
            let block_column: Vec<f64> = (0..n).map(|i| jf[i * n + j]).collect();
            assert_close(&block_column, &column, 1e-13);
        }
        assert_close(&values(jc), &jvp(&f, c, &vec![0.0; n], 1.0), 1e-13);
    }

    #[test]
    fn batched_jvp_matches_scalar_calls() {
        let (n, k) = (7, 4);
        let (f, c) = (source(n), 0.6);
        let df: Vec<f64> = (0..k * n).map(|i| (0.37 * i as f64).sin()).collect();
        let dc: Vec<f64> = (0..k).map(|i| 0.5 - 0.25 * i as f64).collect();
        let tangents = Arrays::new()
            .with(
                "f",
                Array2::from_shape_vec((k, n), df.clone()).expect("shape"),
            )
            .with("coupling", Array1::from(dc.clone()))
            .into_vectors();
        let out = dispatch::batched_jvp::<SteadyState>(
            inputs(&f, c).tree().clone(),
            &strs(&["f", "coupling"]),
            &strs(&["u"]),
            tangents,
            k,
        )
        .expect("batched jvp");
        assert_eq!(out["u"].shape(), &[k, n]);
        let du = values(&out["u"]);
        for i in 0..k {
            assert_close(
                &du[i * n..(i + 1) * n],
                &jvp(&f, c, &df[i * n..(i + 1) * n], dc[i]),
                1e-14,
            );
        }
    }

    #[test]
    fn batched_vjp_matches_scalar_calls() {
        let (n, k) = (6, 3);
        let (f, c) = (source(n), -0.3);
        let u_bar: Vec<f64> = (0..k * n).map(|i| (0.53 * i as f64).cos()).collect();
        let cotangents = Arrays::new()
            .with(
                "u",
                Array2::from_shape_vec((k, n), u_bar.clone()).expect("shape"),
            )
            .into_vectors();
        let out = dispatch::batched_vjp::<SteadyState>(
            inputs(&f, c).tree().clone(),
            &strs(&["f", "coupling"]),
            &strs(&["u"]),
            cotangents,
            k,
        )
        .expect("batched vjp");
        assert_eq!(out["f"].shape(), &[k, n]);
        assert_eq!(out["coupling"].shape(), &[k]);
        let (f_bar, c_bar) = (values(&out["f"]), values(&out["coupling"]));
        for i in 0..k {
            let (want_f, want_c) = vjp(&f, c, &u_bar[i * n..(i + 1) * n]);
            assert_close(&f_bar[i * n..(i + 1) * n], &want_f, 1e-14);
            assert_close(&[c_bar[i]], &[want_c], 1e-14);
        }
    }

    #[test]
    fn subsets_and_missing_tangents() {
        let n = 4;
        let (f, c) = (source(n), 0.5);
        let out = dispatch::jvp::<SteadyState>(
            inputs(&f, c).tree().clone(),
            &strs(&["coupling"]),
            &strs(&["u"]),
            Arrays::new().with("coupling", arr0(1.0)).into_vectors(),
        )
        .expect("jvp");
        assert_close(&values(&out["u"]), &jvp(&f, c, &vec![0.0; n], 1.0), 1e-15);
        let out = dispatch::vjp::<SteadyState>(
            inputs(&f, c).tree().clone(),
            &strs(&["coupling"]),
            &strs(&["u"]),
            Arrays::new()
                .with("u", Array1::from(vec![1.0; n]))
                .into_vectors(),
        )
        .expect("vjp");
        assert_eq!(out.keys().collect::<Vec<_>>(), ["coupling"]);
        let err = dispatch::jvp::<SteadyState>(
            inputs(&f, c).tree().clone(),
            &strs(&["f"]),
            &strs(&["u"]),
            Arrays::new()
                .with("f", Array1::from(vec![1.0; n + 1]))
                .into_vectors(),
        )
        .expect_err("wrong tangent shape");
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }

    #[test]
    fn abstract_eval_reports_shapes() {
        let abstract_inputs = [(
            "f".to_string(),
            AbstractLeaf::Array(ShapeDType {
                shape: vec![10],
                dtype: DType::Float64,
            }),
        )]
        .into_iter()
        .collect();
        let out = dispatch::abstract_eval::<SteadyState>(abstract_inputs).expect("abstract_eval");
        assert_eq!(
            out.get("u"),
            Some(&AbstractLeaf::Array(ShapeDType {
                shape: vec![10],
                dtype: DType::Float64
            }))
        );
        assert_eq!(
            out.get("iterations"),
            Some(&AbstractLeaf::Plain(Plain::Int(0)))
        );
    }
}

tesseract_guest::export!(SteadyState: jacobian, jvp, vjp, abstract_eval, batched_jvp, batched_vjp);
