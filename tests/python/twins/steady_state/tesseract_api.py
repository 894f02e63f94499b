"""NumPy twin of guest-example/steady-state, served by tesseract-core's `tesseract-runtime serve`.

Solves `F(u) = u + c·S·tanh(u) − f = 0`, `S[i,j] = √(2/(n+1))·sin(π(i+1)(j+1)/(n+1))`, by
Newton's method (`numpy.linalg.solve` per step) and differentiates implicitly: with
`J = I + c·S·diag(1 − tanh²(u))` at the solution, `du = J⁻¹(df − dc·S·tanh(u))`. Same schema,
stopping rule and input checks as the Rust example. Endpoints: what the Rust component exports
natively (apply, jacobian, jvp, vjp, abstract_eval; the batched ones have no upstream form).

The Rust example reports bad values as `invalid-input`, which tesseract-wasm answers with a 422
`value_error` at `["body", "inputs"]`; a pydantic model validator gives upstream the same answer.
"""

from typing import Self

import numpy as np
from pydantic import BaseModel, Field, model_validator

from tesseract_core.runtime import Array, Differentiable, Float64, ShapeDType


class InputSchema(BaseModel):
    f: Differentiable[Array[(None,), Float64]] = Field(
        description="Source term; its length n ≥ 1 sets the problem size."
    )
    coupling: Differentiable[Float64] = Field(
        description="Coupling strength c; must satisfy |c| < 1.", default=0.5
    )
    tol: Float64 = Field(description="Stop when max|F(u)| ≤ tol·max(1, max|f|).", default=1e-12)
    max_iter: int = Field(description="Maximum number of Newton updates.", default=50)

    @model_validator(mode="after")
    def check_problem(self) -> Self:
        if isinstance(self.f, ShapeDType):
            # abstract_eval: only the shape is known, as in the Rust example's abstract_eval.
            if len(self.f.shape) != 1 or self.f.shape[0] < 1:
                raise ValueError(f"`f` must be a vector of length ≥ 1, got shape {self.f.shape}")
            return self
        f = np.asarray(self.f)
        if f.size == 0:
            raise ValueError("`f` must have at least one element")
        if not np.all(np.isfinite(f)):
            raise ValueError("`f` must be finite")
        c = float(self.coupling)
        if np.isnan(c) or abs(c) >= 1.0:
            raise ValueError(f"`coupling` must satisfy |coupling| < 1, got {c}")
        if self.max_iter < 0:
            raise ValueError(f"`max_iter` must be non-negative, got {self.max_iter}")
        return self


class OutputSchema(BaseModel):
    u: Differentiable[Array[(None,), Float64]] = Field(
        description="The steady state, same length as f."
    )
    iterations: int = Field(description="Newton updates applied.")


def sine_matrix(n: int) -> np.ndarray:
    # sin(π·m/(n+1)) depends on m only modulo 2(n+1): reduce in integers, as the Rust does.
    k = np.arange(1, n + 1, dtype=np.int64)
    m = np.outer(k, k) % (2 * (n + 1))
    return np.sqrt(2.0 / (n + 1)) * np.sin(np.pi * m.astype(np.float64) / (n + 1))


def _jacobian_matrix(s: np.ndarray, c: float, tanh_u: np.ndarray) -> np.ndarray:
    return np.eye(len(tanh_u)) + c * s * (1.0 - tanh_u**2)[None, :]


def _solve(inputs: InputSchema):
    f = np.asarray(inputs.f, np.float64)
    c = float(inputs.coupling)
    n = f.size
    s = sine_matrix(n)
    threshold = float(inputs.tol) * max(float(np.max(np.abs(f))), 1.0)
    u = f.copy()
    updates = 0
    while True:
        tanh_u = np.tanh(u)
        s_tanh_u = s @ tanh_u
        residual = u + c * s_tanh_u - f
        size = np.max(np.abs(residual))
        if size <= threshold:  # NaN never converges
            break
        if updates == inputs.max_iter:
            raise RuntimeError(
                f"did not converge in {inputs.max_iter} iterations: max|F(u)| = {size:e}"
            )
        u = u - np.linalg.solve(_jacobian_matrix(s, c, tanh_u), residual)
        updates += 1
    return u, updates, _jacobian_matrix(s, c, tanh_u), s_tanh_u


def apply(inputs: InputSchema) -> OutputSchema:
    u, iterations, _, _ = _solve(inputs)
    return OutputSchema(u=u, iterations=iterations)


def jacobian(inputs: InputSchema, jac_inputs: set[str], jac_outputs: set[str]):
    _, _, jac, s_tanh_u = _solve(inputs)
    blocks = {}
    if "f" in jac_inputs:
        blocks["f"] = np.linalg.solve(jac, np.eye(len(s_tanh_u)))
    if "coupling" in jac_inputs:
        blocks["coupling"] = -np.linalg.solve(jac, s_tanh_u)
    return {out: dict(blocks) for out in jac_outputs}


def jacobian_vector_product(inputs, jvp_inputs, jvp_outputs, tangent_vector):
    _, _, jac, s_tanh_u = _solve(inputs)
    rhs = np.zeros_like(s_tanh_u)
    if "f" in jvp_inputs:
        rhs = rhs + np.broadcast_to(np.asarray(tangent_vector["f"], np.float64), rhs.shape)
    if "coupling" in jvp_inputs:
        rhs = rhs - float(np.asarray(tangent_vector["coupling"])) * s_tanh_u
    du = np.linalg.solve(jac, rhs)
    return {out: du for out in jvp_outputs}


def vector_jacobian_product(inputs, vjp_inputs, vjp_outputs, cotangent_vector):
    _, _, jac, s_tanh_u = _solve(inputs)
    u_bar = np.zeros_like(s_tanh_u)
    if "u" in vjp_outputs:
        u_bar = np.broadcast_to(np.asarray(cotangent_vector["u"], np.float64), u_bar.shape)
    lam = np.linalg.solve(jac.T, u_bar)
    grads = {"f": lam, "coupling": np.float64(-(lam @ s_tanh_u))}
    return {name: grads[name] for name in vjp_inputs}


def abstract_eval(abstract_inputs):
    # The Newton count is only known by solving; 0 stands in, as in the Rust example.
    return {"u": ShapeDType(shape=abstract_inputs.f.shape, dtype="float64"), "iterations": 0}
