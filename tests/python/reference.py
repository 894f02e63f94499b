"""The examples' maths in NumPy, written from their documentation, to check the server against.

Nothing here talks to a server: these are the independent references.
"""

from __future__ import annotations

import numpy as np

# --- rosenbrock: f(x, y) = (a − x)² + b·(y − x²)² -------------------------------------------


def rosenbrock(x: float, y: float, a: float = 1.0, b: float = 100.0) -> float:
    return (a - x) ** 2 + b * (y - x * x) ** 2


def rosenbrock_grad(x: float, y: float, a: float = 1.0, b: float = 100.0) -> tuple[float, float]:
    return (-2.0 * (a - x) - 4.0 * b * x * (y - x * x), 2.0 * b * (y - x * x))


# --- vectoradd: result = s·a + b, optionally normalised -------------------------------------


def vectoradd(a, b, s=1.0, normalize=False) -> np.ndarray:
    """Apply exactly as the example does it: float32 arithmetic in NumPy's order, widened."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    r = a * np.float32(s) + b
    if normalize:
        r = r / np.sqrt(np.dot(r, r))
    return r.astype(np.float64)


def vectoradd_jacobian(a, b, s=1.0, normalize=False) -> dict[str, np.ndarray]:
    """The true derivative, in float64 from the float32 inputs.

    Without normalisation: ∂y/∂a = s·I, ∂y/∂b = I, ∂y/∂s = a. With y = r/‖r‖:
    ∂y/∂a = (s/‖r‖)·P, ∂y/∂b = P/‖r‖, ∂y/∂s = P·a/‖r‖, with P = I − r rᵀ/‖r‖².
    """
    a = np.asarray(a, np.float32).astype(np.float64)
    b = np.asarray(b, np.float32).astype(np.float64)
    s = float(np.float32(s))
    n = a.size
    if not normalize:
        return {"a": s * np.eye(n), "b": np.eye(n), "s": a.copy()}
    r = s * a + b
    norm2 = r @ r
    norm = np.sqrt(norm2)
    p = np.eye(n) - np.outer(r, r) / norm2
    return {"a": s / norm * p, "b": p / norm, "s": p @ a / norm}


# --- steady-state: u + c·S·tanh(u) − f = 0 --------------------------------------------------


def sine_matrix(n: int) -> np.ndarray:
    """S[i, j] = √(2/(n+1))·sin(π(i+1)(j+1)/(n+1)), symmetric and orthogonal."""
    k = np.arange(1, n + 1)
    return np.sqrt(2.0 / (n + 1)) * np.sin(np.pi * np.outer(k, k) / (n + 1))


def steady_state_residual(u, f, c) -> np.ndarray:
    u = np.asarray(u, np.float64)
    return u + c * sine_matrix(u.size) @ np.tanh(u) - np.asarray(f, np.float64)


def steady_state(f, c=0.5, tol=1e-14, max_iter=100) -> np.ndarray:
    """Our own Newton solve, for comparison."""
    f = np.asarray(f, np.float64)
    s = sine_matrix(f.size)
    u = f.copy()
    for _ in range(max_iter):
        t = np.tanh(u)
        r = u + c * s @ t - f
        if np.max(np.abs(r)) <= tol * max(1.0, np.max(np.abs(f))):
            return u
        u = u - np.linalg.solve(steady_state_J(u, c), r)
    raise RuntimeError("reference Newton solve did not converge")


def steady_state_J(u, c) -> np.ndarray:
    """∂F/∂u = I + c·S·diag(1 − tanh²u)."""
    u = np.asarray(u, np.float64)
    return np.eye(u.size) + c * sine_matrix(u.size) * (1.0 - np.tanh(u) ** 2)[None, :]


def steady_state_jacobian(f, c=0.5) -> dict[str, np.ndarray]:
    """Implicit function theorem: ∂u/∂f = J⁻¹, ∂u/∂c = −J⁻¹·S·tanh(u)."""
    u = steady_state(f, c)
    j = steady_state_J(u, c)
    s_tanh = sine_matrix(u.size) @ np.tanh(u)
    return {"f": np.linalg.inv(j), "coupling": -np.linalg.solve(j, s_tanh)}


def steady_state_jvp(f, c, df, dc) -> np.ndarray:
    """du = J⁻¹·(df − dc·S·tanh(u))."""
    u = steady_state(f, c)
    s_tanh = sine_matrix(u.size) @ np.tanh(u)
    return np.linalg.solve(steady_state_J(u, c), np.asarray(df) - dc * s_tanh)


def steady_state_vjp(f, c, w) -> dict[str, np.ndarray]:
    """λ = J⁻ᵀ·w; ∂f = λ, ∂c = −λ·S·tanh(u)."""
    u = steady_state(f, c)
    s_tanh = sine_matrix(u.size) @ np.tanh(u)
    lam = np.linalg.solve(steady_state_J(u, c).T, np.asarray(w, np.float64))
    return {"f": lam, "coupling": -lam @ s_tanh}
