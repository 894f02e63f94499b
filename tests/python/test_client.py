"""tesseract-core's own Python client (`Tesseract.from_url`), unchanged, against `tesseract-wasm serve`.

Values are checked against reference.py, the examples' documented maths in NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
import requests
from numpy.testing import assert_allclose, assert_array_equal
from pydantic import ValidationError

import reference as ref

# Default json, json+base64 as the issue asks, and base64 with lz4 (the client decompresses).
ENCODINGS = {
    "json": {},
    "json+base64": {"output_format": "json+base64"},
    "json+base64-lz4": {"output_format": "json+base64", "compression": "lz4"},
}


def encoded(client, encoding: str):
    kwargs = ENCODINGS[encoding]
    return client.with_encoding(**kwargs) if kwargs else client


def check_array(value, shape, dtype) -> np.ndarray:
    assert isinstance(value, np.ndarray), f"expected an ndarray, got {type(value)}: {value!r}"
    assert value.shape == tuple(shape), (value.shape, shape)
    assert value.dtype == np.dtype(dtype), (value.dtype, dtype)
    return value


# ---------------------------------------------------------------------------------------------
# health, endpoints
# ---------------------------------------------------------------------------------------------

ALL_ENDPOINTS = {
    "apply",
    "jacobian",
    "jacobian_vector_product",
    "vector_jacobian_product",
    "abstract_eval",
    "health",
}


@pytest.mark.parametrize("name", ["vectoradd", "rosenbrock", "steady_state"])
def test_health_and_endpoints(name, request):
    client = request.getfixturevalue(name)
    assert client.health() == {"status": "ok"}
    # vectoradd exports only apply + jacobian; the rest is derived by the server and still served.
    assert set(client.available_endpoints) == ALL_ENDPOINTS


# ---------------------------------------------------------------------------------------------
# rosenbrock
# ---------------------------------------------------------------------------------------------

ROSEN_POINTS = [
    {"x": 0.5, "y": 1.0},
    {"x": -1.25, "y": 0.75},
    {"x": 2.0, "y": -3.0, "a": 2.0, "b": 10.0},
]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_rosenbrock_apply(rosenbrock, encoding):
    client = encoded(rosenbrock, encoding)
    out = client.apply({"x": 0.5, "y": 1.0})
    assert set(out) == {"result"}
    assert check_array(out["result"], (), "float64") == 56.5
    for p in ROSEN_POINTS:
        # numpy scalars go over the wire base64-encoded, Python floats as bare JSON numbers.
        inputs = {k: np.float64(v) if k == "x" else v for k, v in p.items()}
        got = client.apply(inputs)["result"]
        assert_allclose(got, ref.rosenbrock(**p), rtol=1e-14)


@pytest.mark.parametrize("encoding", ["json", "json+base64"])
def test_rosenbrock_jacobian(rosenbrock, encoding):
    client = encoded(rosenbrock, encoding)
    jac = client.jacobian({"x": 0.5, "y": 1.0}, jac_inputs=["x", "y"], jac_outputs=["result"])
    assert set(jac) == {"result"} and set(jac["result"]) == {"x", "y"}
    assert check_array(jac["result"]["x"], (), "float64") == -151.0
    assert check_array(jac["result"]["y"], (), "float64") == 150.0
    for p in ROSEN_POINTS:
        jac = client.jacobian(p, ["x", "y"], ["result"])["result"]
        gx, gy = ref.rosenbrock_grad(**p)
        assert_allclose([jac["x"], jac["y"]], [gx, gy], rtol=1e-13)
    only_y = client.jacobian({"x": 0.5, "y": 1.0}, ["y"], ["result"])
    assert set(only_y["result"]) == {"y"}


@pytest.mark.parametrize("encoding", ["json", "json+base64"])
def test_rosenbrock_jvp(rosenbrock, encoding):
    client = encoded(rosenbrock, encoding)
    out = client.jacobian_vector_product(
        {"x": 0.5, "y": 1.0}, ["x", "y"], ["result"], {"x": 1.0, "y": 0.0}
    )
    assert set(out) == {"result"}
    assert check_array(out["result"], (), "float64") == -151.0
    out = client.jacobian_vector_product({"x": 0.5, "y": 1.0}, ["y"], ["result"], {"y": 2.0})
    assert out["result"] == 300.0
    for p in ROSEN_POINTS:
        gx, gy = ref.rosenbrock_grad(**p)
        tx, ty = 0.25, -1.5
        out = client.jacobian_vector_product(
            p, ["x", "y"], ["result"], {"x": np.float64(tx), "y": ty}
        )
        assert_allclose(out["result"], gx * tx + gy * ty, rtol=1e-13)


@pytest.mark.parametrize("encoding", ["json", "json+base64"])
def test_rosenbrock_vjp(rosenbrock, encoding):
    client = encoded(rosenbrock, encoding)
    out = client.vector_jacobian_product({"x": 0.5, "y": 1.0}, ["x", "y"], ["result"], {"result": 1.0})
    assert set(out) == {"x", "y"}
    assert check_array(out["x"], (), "float64") == -151.0
    assert check_array(out["y"], (), "float64") == 150.0
    for p in ROSEN_POINTS:
        gx, gy = ref.rosenbrock_grad(**p)
        out = client.vector_jacobian_product(p, ["x", "y"], ["result"], {"result": np.float64(-2.0)})
        assert_allclose([out["x"], out["y"]], [-2.0 * gx, -2.0 * gy], rtol=1e-13)
    out = client.vector_jacobian_product({"x": 0.5, "y": 1.0}, ["x"], ["result"], {"result": 1.0})
    assert set(out) == {"x"}


def test_rosenbrock_abstract_eval(rosenbrock):
    scalar = {"shape": [], "dtype": "float64"}
    out = rosenbrock.abstract_eval({"x": scalar, "y": scalar})
    assert out == {"result": {"shape": [], "dtype": "float64"}}


# ---------------------------------------------------------------------------------------------
# vectoradd
# ---------------------------------------------------------------------------------------------

A = np.array([1.0, 2.0, 3.0], np.float32)
B = np.array([4.0, 5.0, 6.0], np.float32)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_vectoradd_apply(vectoradd, encoding):
    client = encoded(vectoradd, encoding)
    out = client.apply({"a": A, "b": B})
    assert set(out) == {"result"}
    assert_array_equal(check_array(out["result"], (3,), "float64"), [5.0, 7.0, 9.0])
    out = client.apply({"a": A, "b": B, "s": 2.0})
    assert_array_equal(out["result"], [6.0, 9.0, 12.0])
    # Lists and Python numbers are accepted as well as numpy arrays.
    out = client.apply({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0], "s": 2})
    assert_array_equal(out["result"], [6.0, 9.0, 12.0])
    # Normalised, in float32 as the Python original computes it: bit for bit.
    out = client.apply({"a": A, "b": B, "s": np.float32(2.0), "normalize": True})
    assert_array_equal(out["result"], ref.vectoradd(A, B, 2.0, True))
    assert_allclose(np.linalg.norm(out["result"]), 1.0, rtol=1e-6)
    a = np.array([0.1, -0.7, 2.5, 1e-3], np.float32)
    b = np.array([0.2, 0.3, -1.0, 7.0], np.float32)
    for normalize in (False, True):
        out = client.apply({"a": a, "b": b, "s": np.float32(3.0), "normalize": normalize})
        assert_array_equal(out["result"], ref.vectoradd(a, b, 3.0, normalize))


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("encoding", ["json", "json+base64"])
def test_vectoradd_jacobian(vectoradd, encoding, normalize):
    client = encoded(vectoradd, encoding)
    inputs = {"a": A, "b": B, "s": 2.0, "normalize": normalize}
    jac = client.jacobian(inputs, ["a", "b", "s"], ["result"])
    assert set(jac) == {"result"} and set(jac["result"]) == {"a", "b", "s"}
    want = ref.vectoradd_jacobian(A, B, 2.0, normalize)
    check_array(jac["result"]["a"], (3, 3), "float64")
    check_array(jac["result"]["b"], (3, 3), "float64")
    check_array(jac["result"]["s"], (3,), "float64")
    for k in ("a", "b", "s"):
        assert_allclose(jac["result"][k], want[k], rtol=1e-12, atol=1e-15, err_msg=k)
    if not normalize:
        assert_array_equal(jac["result"]["a"], 2.0 * np.eye(3))
        assert_array_equal(jac["result"]["b"], np.eye(3))
        assert_array_equal(jac["result"]["s"], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("encoding", ["json", "json+base64"])
def test_vectoradd_jvp(vectoradd, encoding, normalize):
    """vectoradd exports no jvp: the server derives it from the jacobian."""
    client = encoded(vectoradd, encoding)
    inputs = {"a": A, "b": B, "s": 2.0, "normalize": normalize}
    ta = np.array([0.5, -1.25, 2.0], np.float32)
    tb = np.array([1.0, 0.0, -0.25], np.float32)
    out = client.jacobian_vector_product(
        inputs, ["a", "b", "s"], ["result"], {"a": ta, "b": tb, "s": np.float32(0.75)}
    )
    assert set(out) == {"result"}
    check_array(out["result"], (3,), "float64")
    j = ref.vectoradd_jacobian(A, B, 2.0, normalize)
    want = j["a"] @ ta + j["b"] @ tb + j["s"] * 0.75
    assert_allclose(out["result"], want, rtol=1e-12, atol=1e-15)
    out = client.jacobian_vector_product(inputs, ["s"], ["result"], {"s": 1.0})
    assert_allclose(out["result"], j["s"], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("encoding", ["json", "json+base64"])
def test_vectoradd_vjp(vectoradd, encoding, normalize):
    """vectoradd exports no vjp: the server derives it from the jacobian."""
    client = encoded(vectoradd, encoding)
    inputs = {"a": A, "b": B, "s": 2.0, "normalize": normalize}
    w = np.array([1.0, -2.0, 0.5])
    out = client.vector_jacobian_product(inputs, ["a", "b", "s"], ["result"], {"result": w})
    assert set(out) == {"a", "b", "s"}
    # Gradients take the inputs' declared dtype, float32.
    check_array(out["a"], (3,), "float32")
    check_array(out["b"], (3,), "float32")
    check_array(out["s"], (), "float32")
    j = ref.vectoradd_jacobian(A, B, 2.0, normalize)
    for k in ("a", "b", "s"):
        assert_allclose(out[k], w @ j[k], rtol=1e-6, atol=1e-7, err_msg=k)


def test_vectoradd_abstract_eval(vectoradd):
    """Derived by the server (apply on zero-filled inputs)."""
    out = vectoradd.abstract_eval(
        {"a": {"shape": [5], "dtype": "float32"}, "b": {"shape": [5], "dtype": "float32"}}
    )
    assert out == {"result": {"shape": [5], "dtype": "float64"}}


# ---------------------------------------------------------------------------------------------
# steady-state
# ---------------------------------------------------------------------------------------------

F = np.array([1.0, 2.0, 3.0])
F7 = np.array([0.3, -1.2, 2.5, 0.0, 4.0, -0.7, 1.1])


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("f,c", [(F, 0.5), (F7, -0.8)], ids=["n3", "n7"])
def test_steady_state_apply(steady_state, encoding, f, c):
    client = encoded(steady_state, encoding)
    out = client.apply({"f": f, "coupling": c})
    assert set(out) == {"u", "iterations"}
    u = check_array(out["u"], f.shape, "float64")
    assert isinstance(out["iterations"], int) and 0 < out["iterations"] <= 50
    assert np.max(np.abs(ref.steady_state_residual(u, f, c))) <= 1e-11
    assert_allclose(u, ref.steady_state(f, c), rtol=1e-12, atol=1e-13)


def test_steady_state_apply_defaults(steady_state):
    # coupling defaults to 0.5; f as a plain list.
    out = steady_state.apply({"f": [1.0, 2.0, 3.0]})
    assert_allclose(out["u"], ref.steady_state(F, 0.5), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("encoding", ["json", "json+base64"])
@pytest.mark.parametrize("f,c", [(F, 0.5), (F7, -0.8)], ids=["n3", "n7"])
def test_steady_state_jacobian(steady_state, encoding, f, c):
    client = encoded(steady_state, encoding)
    jac = client.jacobian({"f": f, "coupling": c}, ["f", "coupling"], ["u"])
    assert set(jac) == {"u"} and set(jac["u"]) == {"f", "coupling"}
    n = f.size
    check_array(jac["u"]["f"], (n, n), "float64")
    check_array(jac["u"]["coupling"], (n,), "float64")
    want = ref.steady_state_jacobian(f, c)
    assert_allclose(jac["u"]["f"], want["f"], rtol=1e-10, atol=1e-13)
    assert_allclose(jac["u"]["coupling"], want["coupling"], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("encoding", ["json", "json+base64"])
def test_steady_state_jvp(steady_state, encoding):
    client = encoded(steady_state, encoding)
    f, c = F7, -0.8
    df = np.linspace(-1.0, 1.0, f.size)
    dc = 0.3
    out = client.jacobian_vector_product(
        {"f": f, "coupling": c}, ["f", "coupling"], ["u"], {"f": df, "coupling": dc}
    )
    assert set(out) == {"u"}
    du = check_array(out["u"], f.shape, "float64")
    assert_allclose(du, ref.steady_state_jvp(f, c, df, dc), rtol=1e-10, atol=1e-13)

    # Independently of the implicit-function formula: central differences of the served apply.
    h = 1e-6
    up = client.apply({"f": f + h * df, "coupling": c + h * dc})["u"]
    um = client.apply({"f": f - h * df, "coupling": c - h * dc})["u"]
    assert_allclose(du, (up - um) / (2 * h), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("encoding", ["json", "json+base64"])
def test_steady_state_vjp(steady_state, encoding):
    client = encoded(steady_state, encoding)
    f, c = F7, -0.8
    w = np.cos(np.arange(f.size))
    out = client.vector_jacobian_product(
        {"f": f, "coupling": c}, ["f", "coupling"], ["u"], {"u": w}
    )
    assert set(out) == {"f", "coupling"}
    check_array(out["f"], f.shape, "float64")
    check_array(out["coupling"], (), "float64")
    want = ref.steady_state_vjp(f, c, w)
    assert_allclose(out["f"], want["f"], rtol=1e-10, atol=1e-13)
    assert_allclose(out["coupling"], want["coupling"], rtol=1e-10, atol=1e-13)

    # The vjp is the transpose of the jvp: <w, J·v> = <Jᵀ·w, v>.
    v = np.sin(np.arange(f.size) + 1.0)
    jv = client.jacobian_vector_product(
        {"f": f, "coupling": c}, ["f", "coupling"], ["u"], {"f": v, "coupling": 0.5}
    )["u"]
    assert_allclose(w @ jv, out["f"] @ v + out["coupling"] * 0.5, rtol=1e-10)


def test_steady_state_abstract_eval(steady_state):
    out = steady_state.abstract_eval({"f": {"shape": [11], "dtype": "float64"}})
    assert out["u"] == {"shape": [11], "dtype": "float64"}
    assert set(out) == {"u", "iterations"}


# ---------------------------------------------------------------------------------------------
# Invalid inputs: 422s that the client turns into pydantic.ValidationError
# ---------------------------------------------------------------------------------------------

# case: (client fixture, method, args, (error type as upstream names it; loc)). The client
# sends numpy arrays base64-encoded, so an array of the wrong rank or a complex dtype fails
# upstream's encoded-array model: `array_non_numeric` (test_upstream.py compares every type
# with tesseract-core's own server).
INVALID = {
    # wrong rank
    "rosenbrock-rank": (
        "rosenbrock", "apply", ({"x": [0.5, 1.0], "y": 1.0},),
        ("array_dimensionality_mismatch", ("body", "inputs", "x")),
    ),
    "vectoradd-rank": (
        "vectoradd", "apply", ({"a": np.ones((2, 3), np.float32), "b": B},),
        ("array_non_numeric", ("body", "inputs", "a")),
    ),
    "steady-state-rank": (
        "steady_state", "apply", ({"f": np.float64(1.0)},),
        ("array_non_numeric", ("body", "inputs", "f")),
    ),
    "steady-state-rank-jacobian": (
        "steady_state", "jacobian", ({"f": np.ones((2, 2))}, ["f"], ["u"]),
        ("array_non_numeric", ("body", "inputs", "f")),
    ),
    # extra field
    "rosenbrock-extra": (
        "rosenbrock", "apply", ({"x": 0.5, "y": 1.0, "z": 2.0},),
        ("extra_forbidden", ("body", "inputs", "z")),
    ),
    "vectoradd-extra": (
        "vectoradd", "apply", ({"a": A, "b": B, "scale": 2.0},),
        ("extra_forbidden", ("body", "inputs", "scale")),
    ),
    "steady-state-extra-jvp": (
        "steady_state", "jacobian_vector_product", ({"f": F, "g": F}, ["f"], ["u"], {"f": F}),
        ("extra_forbidden", ("body", "inputs", "g")),
    ),
    # missing required field
    "vectoradd-missing": (
        "vectoradd", "apply", ({"a": A},),
        ("missing", ("body", "inputs", "b")),
    ),
    "steady-state-missing": (
        "steady_state", "apply", ({"coupling": 0.5},),
        ("missing", ("body", "inputs", "f")),
    ),
    "steady-state-missing-vjp": (
        "steady_state", "vector_jacobian_product", ({}, ["f"], ["u"], {"u": F}),
        ("missing", ("body", "inputs", "f")),
    ),
    # complex dtype (not castable to float)
    "rosenbrock-complex": (
        "rosenbrock", "apply", ({"x": np.complex128(0.5 + 1j), "y": 1.0},),
        ("array_non_numeric", ("body", "inputs", "x")),
    ),
    "vectoradd-complex": (
        "vectoradd", "apply", ({"a": A.astype(np.complex64), "b": B},),
        ("array_non_numeric", ("body", "inputs", "a")),
    ),
    "steady-state-complex": (
        "steady_state", "apply", ({"f": F.astype(np.complex128)},),
        ("array_non_numeric", ("body", "inputs", "f")),
    ),
    # tangent / cotangent keys not equal to jvp_inputs / vjp_outputs
    "rosenbrock-tangent-missing-key": (
        "rosenbrock", "jacobian_vector_product",
        ({"x": 0.5, "y": 1.0}, ["x", "y"], ["result"], {"x": 1.0}),
        ("value_error", ("body", "tangent_vector")),
    ),
    "rosenbrock-tangent-extra-key": (
        "rosenbrock", "jacobian_vector_product",
        ({"x": 0.5, "y": 1.0}, ["x"], ["result"], {"x": 1.0, "y": 1.0}),
        ("value_error", ("body", "tangent_vector")),
    ),
    "steady-state-tangent-wrong-key": (
        "steady_state", "jacobian_vector_product", ({"f": F}, ["f"], ["u"], {"coupling": 1.0}),
        ("value_error", ("body", "tangent_vector")),
    ),
    "vectoradd-tangent-missing-key": (
        "vectoradd", "jacobian_vector_product",
        ({"a": A, "b": B}, ["a", "b"], ["result"], {"a": A}),
        ("value_error", ("body", "tangent_vector")),
    ),
    "steady-state-cotangent-wrong-key": (
        "steady_state", "vector_jacobian_product",
        ({"f": F}, ["f"], ["u"], {"iterations": 1.0}),
        ("literal_error", ("body", "cotangent_vector", "iterations", "[key]")),
    ),
    # not a differentiable path
    "rosenbrock-jacobian-nondiff": (
        "rosenbrock", "jacobian", ({"x": 0.5, "y": 1.0}, ["a"], ["result"]),
        ("literal_error", ("body", "jac_inputs", 0, "literal['x']")),
    ),
    "steady-state-jvp-nondiff": (
        "steady_state", "jacobian_vector_product", ({"f": F}, ["tol"], ["u"], {"tol": 1.0}),
        ("literal_error", ("body", "jvp_inputs", 0, "literal['f']")),
    ),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_inputs_raise_validation_error(case, request):
    name, method, args, (want_type, want_loc) = INVALID[case]
    client = request.getfixturevalue(name)
    with pytest.raises(ValidationError) as excinfo:
        getattr(client, method)(*args)
    err = excinfo.value
    # Rebuilt by the client from the server's 422, not raised client-side.
    assert err.title == f"endpoint {method}"
    errors = err.errors()
    assert len(errors) >= 1
    first = errors[0]
    # Upstream's loc may go one level deeper (e.g. a literal's name); the prefix must match.
    assert tuple(first["loc"][: len(want_loc)]) == want_loc, errors
    assert first["type"] == want_type, errors
    assert first["msg"], errors
    # The server is still fine after it.
    assert client.health() == {"status": "ok"}


# ---------------------------------------------------------------------------------------------
# Many tangents in one request (the batched extension), K = 8
# ---------------------------------------------------------------------------------------------

K = 8


def post(url, route, body):
    response = requests.post(f"{url}/{route}", json=body, timeout=60)
    assert response.status_code == 200, (response.status_code, response.text)
    return response


def json_array(value) -> np.ndarray:
    assert value["object_type"] == "array"
    assert value["data"]["encoding"] == "json"
    arr = np.array(value["data"]["buffer"], dtype=value["dtype"])
    assert arr.shape == tuple(value["shape"])
    return arr


def test_batched_jvp_steady_state_is_native(steady_state_server, steady_state):
    f, c = F7, -0.8
    n = f.size
    rng = np.random.default_rng(8)
    tangents = rng.standard_normal((K, n))
    body = {
        "inputs": {"f": f.tolist(), "coupling": c},
        "jvp_inputs": ["f"],
        "jvp_outputs": ["u"],
        "tangent_vector": {"f": tangents.tolist()},
    }
    response = post(steady_state_server.url, "jacobian_vector_product", body)
    assert response.headers["Tesseract-Route"] == "native"
    assert response.headers["Tesseract-Batch-Size"] == str(K)
    batched = json_array(response.json()["u"])
    assert batched.shape == (K, n)

    # The client passes the stacked tangents through unchanged: the same answer.
    via_client = steady_state.jacobian_vector_product(
        {"f": f, "coupling": c}, ["f"], ["u"], {"f": tangents}
    )["u"]
    assert_array_equal(via_client, batched)

    for k in range(K):
        single = steady_state.jacobian_vector_product(
            {"f": f, "coupling": c}, ["f"], ["u"], {"f": tangents[k]}
        )["u"]
        assert single.shape == (n,)
        assert_allclose(batched[k], single, rtol=1e-13, atol=1e-15, err_msg=f"tangent {k}")
        assert_allclose(
            batched[k], ref.steady_state_jvp(f, c, tangents[k], 0.0), rtol=1e-10, atol=1e-13
        )


def test_batched_jvp_rosenbrock_is_looped(rosenbrock_server, rosenbrock):
    tx = np.linspace(-2.0, 2.0, K)
    ty = np.cos(np.arange(K))
    body = {
        "inputs": {"x": 0.5, "y": 1.0},
        "jvp_inputs": ["x", "y"],
        "jvp_outputs": ["result"],
        "tangent_vector": {"x": tx.tolist(), "y": ty.tolist()},
    }
    response = post(rosenbrock_server.url, "jacobian_vector_product", body)
    assert response.headers["Tesseract-Route"] == "looped"
    assert response.headers["Tesseract-Batch-Size"] == str(K)
    batched = json_array(response.json()["result"])
    assert batched.shape == (K,)
    for k in range(K):
        single = rosenbrock.jacobian_vector_product(
            {"x": 0.5, "y": 1.0}, ["x", "y"], ["result"], {"x": tx[k], "y": ty[k]}
        )["result"]
        assert single.shape == ()
        assert batched[k] == single, f"tangent {k}"
        assert_allclose(batched[k], -151.0 * tx[k] + 150.0 * ty[k], rtol=1e-13)


def test_unbatched_jvp_reports_no_batch(rosenbrock_server):
    body = {
        "inputs": {"x": 0.5, "y": 1.0},
        "jvp_inputs": ["x"],
        "jvp_outputs": ["result"],
        "tangent_vector": {"x": 1.0},
    }
    response = post(rosenbrock_server.url, "jacobian_vector_product", body)
    assert json_array(response.json()["result"]).shape == ()
    assert response.json()["result"]["data"]["buffer"] == -151.0


def test_batched_vjp_steady_state_is_native(steady_state_server, steady_state):
    f, c = F7, -0.8
    n = f.size
    cotangents = np.random.default_rng(9).standard_normal((K, n))
    body = {
        "inputs": {"f": f.tolist(), "coupling": c},
        "vjp_inputs": ["f", "coupling"],
        "vjp_outputs": ["u"],
        "cotangent_vector": {"u": cotangents.tolist()},
    }
    response = post(steady_state_server.url, "vector_jacobian_product", body)
    assert response.headers["Tesseract-Route"] == "native"
    assert response.headers["Tesseract-Batch-Size"] == str(K)
    gf = json_array(response.json()["f"])
    gc = json_array(response.json()["coupling"])
    assert gf.shape == (K, n) and gc.shape == (K,)
    for k in range(K):
        single = steady_state.vector_jacobian_product(
            {"f": f, "coupling": c}, ["f", "coupling"], ["u"], {"u": cotangents[k]}
        )
        assert_allclose(gf[k], single["f"], rtol=1e-13, atol=1e-15, err_msg=f"cotangent {k}")
        assert_allclose(gc[k], single["coupling"], rtol=1e-13, atol=1e-15)
        want = ref.steady_state_vjp(f, c, cotangents[k])
        assert_allclose(gf[k], want["f"], rtol=1e-10, atol=1e-13)
        assert_allclose(gc[k], want["coupling"], rtol=1e-10, atol=1e-13)


def test_batched_vjp_rosenbrock_is_looped(rosenbrock_server, rosenbrock):
    w = np.linspace(-1.0, 2.5, K)
    body = {
        "inputs": {"x": 0.5, "y": 1.0},
        "vjp_inputs": ["x", "y"],
        "vjp_outputs": ["result"],
        "cotangent_vector": {"result": w.tolist()},
    }
    response = post(rosenbrock_server.url, "vector_jacobian_product", body)
    assert response.headers["Tesseract-Route"] == "looped"
    assert response.headers["Tesseract-Batch-Size"] == str(K)
    gx = json_array(response.json()["x"])
    gy = json_array(response.json()["y"])
    assert gx.shape == (K,) and gy.shape == (K,)
    for k in range(K):
        single = rosenbrock.vector_jacobian_product(
            {"x": 0.5, "y": 1.0}, ["x", "y"], ["result"], {"result": w[k]}
        )
        assert (gx[k], gy[k]) == (single["x"], single["y"]), f"cotangent {k}"
        assert_allclose([gx[k], gy[k]], [-151.0 * w[k], 150.0 * w[k]], rtol=1e-13)
