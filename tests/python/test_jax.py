"""tesseract-jax's `apply_tesseract`, unchanged, under JAX transformations, with jax_enable_x64
(set in conftest.py). Values are checked against reference.py."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.testing import assert_allclose
from tesseract_jax import apply_tesseract

import reference as ref

assert jax.config.jax_enable_x64

X, Y = 0.5, 1.0
GX, GY = -151.0, 150.0


@pytest.fixture(scope="module")
def rosen(rosenbrock):
    def f(x, y):
        return apply_tesseract(rosenbrock, {"x": x, "y": y})["result"]

    return f


def test_rosenbrock_apply(rosen):
    out = rosen(jnp.array(X), jnp.array(Y))
    assert out.dtype == jnp.float64
    assert float(out) == 56.5


def test_rosenbrock_grad(rosen):
    gx, gy = jax.grad(rosen, argnums=(0, 1))(jnp.array(X), jnp.array(Y))
    assert (float(gx), float(gy)) == (GX, GY)
    for p in [(-1.25, 0.75), (2.0, -3.0)]:
        g = jax.grad(rosen, argnums=(0, 1))(*map(jnp.array, p))
        assert_allclose(np.array(g), ref.rosenbrock_grad(*p), rtol=1e-13)


def test_rosenbrock_jit_grad(rosen):
    g = jax.jit(jax.grad(rosen, argnums=(0, 1)))(jnp.array(X), jnp.array(Y))
    assert_allclose(np.array(g), [GX, GY], rtol=0)


@pytest.mark.parametrize("transform", ["jacfwd", "jacrev"])
def test_rosenbrock_jacfwd_jacrev(rosen, transform):
    jac = getattr(jax, transform)(rosen, argnums=(0, 1))(jnp.array(X), jnp.array(Y))
    assert_allclose(np.array(jac), [GX, GY], rtol=0)


def test_rosenbrock_jvp(rosen):
    primal, tangent = jax.jvp(
        rosen, (jnp.array(X), jnp.array(Y)), (jnp.array(1.0), jnp.array(-2.0))
    )
    assert float(primal) == 56.5
    assert float(tangent) == GX - 2.0 * GY


def test_rosenbrock_vjp(rosen):
    primal, vjp_fn = jax.vjp(rosen, jnp.array(X), jnp.array(Y))
    assert float(primal) == 56.5
    gx, gy = vjp_fn(jnp.array(3.0))
    assert (float(gx), float(gy)) == (3.0 * GX, 3.0 * GY)


def test_rosenbrock_grad_of_composition(rosen):
    """Inside a larger JAX program: d/dt rosen(t, t²) at t = 0.5."""
    t = 0.5

    def g(t):
        return rosen(t, t**2) * 2.0 + jnp.sin(t)

    # rosen(t, t²) = (1 − t)², so g'(t) = −4(1 − t) + cos t.
    assert_allclose(float(jax.grad(g)(jnp.array(t))), -4.0 * (1 - t) + np.cos(t), rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# steady-state
# ---------------------------------------------------------------------------------------------

F = np.array([0.3, -1.2, 2.5, 0.0, 4.0, -0.7, 1.1])
C = -0.8


@pytest.fixture(scope="module")
def steady(steady_state):
    def u(f, c):
        return apply_tesseract(steady_state, {"f": f, "coupling": c})["u"]

    return u


@pytest.fixture(scope="module")
def implicit():
    """∂u/∂f and ∂u/∂c at (F, C), via the implicit-function formula in NumPy."""
    return ref.steady_state_jacobian(F, C)


def test_steady_state_apply(steady):
    u = steady(jnp.array(F), jnp.array(C))
    assert u.dtype == jnp.float64 and u.shape == F.shape
    assert_allclose(np.array(u), ref.steady_state(F, C), rtol=1e-12, atol=1e-13)


def test_steady_state_grad(steady, implicit):
    w = np.cos(np.arange(F.size))

    def loss(f, c):
        return jnp.dot(jnp.array(w), steady(f, c))

    gf, gc = jax.grad(loss, argnums=(0, 1))(jnp.array(F), jnp.array(C))
    assert_allclose(np.array(gf), w @ implicit["f"], rtol=1e-10, atol=1e-13)
    assert_allclose(float(gc), w @ implicit["coupling"], rtol=1e-10)

    # A nonlinear loss: the chain rule runs through JAX and the served vjp.
    def loss2(f, c):
        return jnp.sum(steady(f, c) ** 2)

    u = ref.steady_state(F, C)
    gf, gc = jax.jit(jax.grad(loss2, argnums=(0, 1)))(jnp.array(F), jnp.array(C))
    assert_allclose(np.array(gf), 2 * u @ implicit["f"], rtol=1e-10, atol=1e-13)
    assert_allclose(float(gc), 2 * u @ implicit["coupling"], rtol=1e-10)


@pytest.mark.parametrize("transform", ["jacfwd", "jacrev"])
def test_steady_state_jacfwd_jacrev(steady, implicit, transform):
    jf, jc = getattr(jax, transform)(steady, argnums=(0, 1))(jnp.array(F), jnp.array(C))
    assert jf.shape == (F.size, F.size) and jc.shape == (F.size,)
    assert_allclose(np.array(jf), implicit["f"], rtol=1e-10, atol=1e-13)
    assert_allclose(np.array(jc), implicit["coupling"], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("transform", ["jacfwd", "jacrev"])
def test_steady_state_jacobian_from_products(steady_state, implicit, transform):
    """Without materialising the jacobian: one jvp or vjp request per basis vector."""

    def u(f):
        return apply_tesseract(
            steady_state,
            {"f": f, "coupling": jnp.array(C)},
            materialize_jacobian=False,
            vmap_method="sequential",
        )["u"]

    jf = getattr(jax, transform)(u)(jnp.array(F))
    assert_allclose(np.array(jf), implicit["f"], rtol=1e-10, atol=1e-13)


def test_steady_state_jvp(steady, implicit):
    df = np.linspace(-1.0, 1.0, F.size)
    dc = 0.3
    primal, tangent = jax.jvp(
        steady, (jnp.array(F), jnp.array(C)), (jnp.array(df), jnp.array(dc))
    )
    assert_allclose(np.array(primal), ref.steady_state(F, C), rtol=1e-12, atol=1e-13)
    want = implicit["f"] @ df + implicit["coupling"] * dc
    assert_allclose(np.array(tangent), want, rtol=1e-10, atol=1e-13)
    assert_allclose(np.array(tangent), ref.steady_state_jvp(F, C, df, dc), rtol=1e-10, atol=1e-13)


def test_steady_state_vjp(steady, implicit):
    primal, vjp_fn = jax.vjp(steady, jnp.array(F), jnp.array(C))
    assert_allclose(np.array(primal), ref.steady_state(F, C), rtol=1e-12, atol=1e-13)
    w = np.sin(np.arange(F.size) + 0.5)
    gf, gc = vjp_fn(jnp.array(w))
    assert_allclose(np.array(gf), w @ implicit["f"], rtol=1e-10, atol=1e-13)
    assert_allclose(float(gc), w @ implicit["coupling"], rtol=1e-10)
