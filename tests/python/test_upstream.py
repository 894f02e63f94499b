"""Side by side with upstream: one corpus of requests to tesseract-core's own server and to ours.

For each example, `tesseract-runtime serve` (tesseract-core 1.15.0, pinned) serves its NumPy twin
in twins/<name>/tesseract_api.py, and `tesseract-wasm serve` serves the Rust component. Every case
of CORPUS goes to both, as raw HTTP, and the two answers must agree on:

- the status code;
- for 422s, the multiset of (`type`, `loc`) of the error details;
- for 404/405/406, the whole JSON body;
- for 200s, the `Content-Type`, the JSON structure (keys, plain values exactly) and every array:
  `object_type`, dtype, shape, encoding and compression as sent, and the decoded values, to
  1e-12 relative for float64 and to float32 precision for float32 (see `TOLERANCE`).

500 bodies are not compared: upstream sends a bare `Internal Server Error`, ours names the
guest's error (the HTTP issue asks for that).

A case whose answers differ fails, unless it names an entry of INTENDED_DIFFERENCES. Such an entry
says why we differ on purpose and carries a check that our answer is the right one; a listed
case whose answers agree fails too, so the list cannot go stale.
"""

from __future__ import annotations

import base64
import json
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lz4.frame as lz4frame
import numpy as np
import pytest
import requests

import reference as ref
from conftest import serve, start_upstream, stop_upstream, wait_upstream

# ---------------------------------------------------------------------------------------------
# The servers
# ---------------------------------------------------------------------------------------------

# Our example name → its twin's directory, and the name/version tesseract-core should report.
TWINS = {
    "vectoradd": ("vectoradd", "vectoradd", "1.2.3"),
    "rosenbrock": ("rosenbrock", "rosenbrock", "0.1.0"),
    "steady-state": ("steady_state", "steady-state", "0.1.0"),
}

# Files that binref inputs of the corpus point at, relative to the shared --input-path.
BINREF_FILES: dict[str, bytes] = {}


@dataclass
class Pair:
    name: str
    upstream_url: str
    upstream_out: Path
    ours_url: str
    ours_out: Path


@pytest.fixture(scope="session")
def pairs(tmp_path_factory) -> dict[str, Pair]:
    """One upstream and one tesseract-wasm server per example, sharing a binref input dir."""
    tmp = tmp_path_factory.mktemp("upstream")
    inputs = tmp / "inputs"
    inputs.mkdir()
    for rel, blob in BINREF_FILES.items():
        (inputs / rel).parent.mkdir(parents=True, exist_ok=True)
        (inputs / rel).write_bytes(blob)

    # tesseract-core takes seconds to import: start all three, then ours, then wait.
    upstream = {
        name: start_upstream(
            name, twin, tmp, inputs, TESSERACT_NAME=title, TESSERACT_VERSION=version
        )
        for name, (twin, title, version) in TWINS.items()
    }
    ours = {}
    result = {}
    try:
        for name in TWINS:
            out = tmp / f"ours-out-{name}"
            out.mkdir()
            ours[name] = serve(
                name, tmp, "--input-path", str(inputs), "--output-path", str(out)
            )
        for name, server in upstream.items():
            wait_upstream(server)
            result[name] = Pair(
                name,
                server.url,
                server.output_path,
                ours[name].url,
                tmp / f"ours-out-{name}",
            )
        yield result
    finally:
        for server in upstream.values():
            stop_upstream(server)
        for server in ours.values():
            server.stop()


# ---------------------------------------------------------------------------------------------
# Building requests
# ---------------------------------------------------------------------------------------------


def json_array(values, dtype: str, *, object_type: bool = True, encoding: str = "json") -> dict:
    arr = np.asarray(values, dtype=dtype)
    out = {"object_type": "array"} if object_type else {}
    out |= {"shape": list(arr.shape), "dtype": dtype}
    out["data"] = {"buffer": arr.tolist(), "encoding": encoding}
    return out


def b64_array(values, dtype: str, *, lz4: bool = False, object_type: bool = False) -> dict:
    """As tesseract-core's client encodes numpy arrays: little-endian C order, no object_type."""
    arr = np.array(values, dtype=np.dtype(dtype).newbyteorder("<"), order="C")
    blob = arr.tobytes()
    data: dict[str, Any] = {"encoding": "base64"}
    if lz4:
        blob = lz4frame.compress(blob)
        data["compression"] = "lz4"
    data["buffer"] = base64.b64encode(blob).decode()
    out = {"object_type": "array"} if object_type else {}
    return out | {"shape": list(arr.shape), "dtype": dtype, "data": data}


def binref_array(values, dtype: str, name: str, *, offset: int | None = 0, lz4: bool = False):
    """Writes the bytes (after `offset` junk bytes) to BINREF_FILES[name]."""
    arr = np.array(values, dtype=np.dtype(dtype).newbyteorder("<"), order="C")
    blob = arr.tobytes()
    data: dict[str, Any] = {"encoding": "binref"}
    if lz4:
        blob = lz4frame.compress(blob)
        data["compression"] = "lz4"
    pad = b"\xab" * (offset or 0)
    BINREF_FILES[name] = pad + blob
    buffer = name
    if offset is not None:
        buffer += f":{offset}"
        if lz4:
            buffer += f":{len(blob)}"
    data["buffer"] = buffer
    return {"shape": list(arr.shape), "dtype": dtype, "data": data}


@dataclass(frozen=True)
class Case:
    tesseract: str
    endpoint: str  # route without the leading slash, plus any query string
    label: str
    body: Any = None  # JSON-able; ignored when `raw` is set
    raw: bytes | None = None
    headers: tuple[tuple[str, str | None], ...] = ()
    method: str = "POST"
    # A key of INTENDED_DIFFERENCES when this case is expected to differ.
    intended: str | None = None

    @property
    def id(self) -> str:
        return f"{self.tesseract}/{self.endpoint}/{self.label}"


CORPUS: list[Case] = []


def case(tesseract: str, endpoint: str, label: str, body: Any = None, **kw) -> None:
    CORPUS.append(Case(tesseract, endpoint, label, body, **kw))


# ---------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------

VA = {"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]}
VA_FULL = {"a": [0.5, -1.25, 2.0], "b": [1.5, 0.25, -0.5], "s": 1.75, "normalize": False}
RB = {"x": 0.5, "y": 1.0}
RB_FULL = {"x": -1.25, "y": 0.75, "a": 2.0, "b": 10.0}
F5 = [1.5 * math.sin(0.7 * i + 0.3) + 0.2 for i in range(5)]
SS = {"f": F5, "coupling": 0.3}

PRIMALS = {"vectoradd": VA_FULL, "rosenbrock": RB_FULL, "steady-state": SS}
# Array fields and their dtypes, in each example's schema.
ARRAY_FIELDS = {
    "vectoradd": {"a": "float32", "b": "float32", "s": "float32"},
    "rosenbrock": {"x": "float64", "y": "float64", "a": "float64", "b": "float64"},
    "steady-state": {"f": "float64", "coupling": "float64"},
}
DIFF_IN = {"vectoradd": ["a", "b", "s"], "rosenbrock": ["x", "y"], "steady-state": ["f", "coupling"]}
DIFF_OUT = {"vectoradd": ["result"], "rosenbrock": ["result"], "steady-state": ["u"]}
NOT_DIFF_IN = {"vectoradd": "normalize", "rosenbrock": "a", "steady-state": "tol"}
NOT_DIFF_OUT = {"vectoradd": None, "rosenbrock": None, "steady-state": "iterations"}
# Endpoints each twin (and the Rust component) implements natively.
NATIVE = {
    "vectoradd": ["apply", "jacobian"],
    "rosenbrock": ["apply", "jacobian", "jacobian_vector_product", "vector_jacobian_product",
                   "abstract_eval"],
    "steady-state": ["apply", "jacobian", "jacobian_vector_product", "vector_jacobian_product",
                     "abstract_eval"],
}  # fmt: skip


def encode_inputs(name: str, how: Callable[[str, Any, str], Any]) -> dict:
    inputs = dict(PRIMALS[name])
    for field_name, dtype in ARRAY_FIELDS[name].items():
        if field_name in inputs:
            inputs[field_name] = how(field_name, inputs[field_name], dtype)
    return inputs


def primal_shape(name: str, path: str) -> tuple[int, ...]:
    return np.shape(PRIMALS[name][path])


def tangents(name: str, paths: list[str], scale: float = 1.0) -> dict:
    rng = np.random.default_rng(zlib.crc32("/".join([name, *paths]).encode()))
    return {p: (scale * rng.standard_normal(primal_shape(name, p))).tolist() for p in paths}


def cotangents(name: str, paths: list[str]) -> dict:
    shapes = {"result": (3,) if name == "vectoradd" else (), "u": (len(F5),)}
    rng = np.random.default_rng(7)
    return {p: rng.standard_normal(shapes[p]).tolist() for p in paths}


def build_corpus() -> None:
    names = list(TWINS)
    # --- input encodings, on apply -------------------------------------------------------
    encoders: dict[str, Callable[[str, Any, str], Any]] = {
        "plain": lambda f, v, d: v,
        "json-encoded": lambda f, v, d: json_array(v, d),
        "json-encoded-no-object-type": lambda f, v, d: json_array(v, d, object_type=False),
        "json-raw-encoding": lambda f, v, d: json_array(v, d, encoding="raw"),
        "base64": lambda f, v, d: b64_array(v, d),
        "base64-object-type": lambda f, v, d: b64_array(v, d, object_type=True),
        "base64-lz4": lambda f, v, d: b64_array(v, d, lz4=True),
    }
    for name in names:
        for label, how in encoders.items():
            case(name, "apply", f"inputs-{label}", {"inputs": encode_inputs(name, how)})
        for label, kw in {
            "binref": {},
            "binref-no-offset": {"offset": None},
            "binref-offset": {"offset": 13},
            "binref-lz4": {"lz4": True, "offset": 5},
        }.items():

            def how(f, v, d, label=label, kw=kw, name=name):
                return binref_array(v, d, f"{name}/{label}-{f}.bin", **kw)

            case(name, "apply", f"inputs-{label}", {"inputs": encode_inputs(name, how)})
        case(name, "apply?run_id=side-by-side-1", "run-id", {"inputs": PRIMALS[name]})
        case(name, "apply?run_id=", "empty-run-id", {"inputs": PRIMALS[name]})

    # Defaults filled in; plain non-array values in pydantic's lax mode.
    case("vectoradd", "apply", "defaults", {"inputs": VA})
    case("rosenbrock", "apply", "defaults", {"inputs": {}})
    case("steady-state", "apply", "defaults", {"inputs": {"f": F5}})
    case("vectoradd", "apply", "normalize", {"inputs": VA_FULL | {"normalize": True}})
    case("vectoradd", "apply", "normalize-zero-vector",
         {"inputs": {"a": [0.0, 0.0], "b": [0.0, 0.0], "normalize": True}})  # fmt: skip
    case("vectoradd", "apply", "empty-vectors", {"inputs": {"a": [], "b": []}})
    for label, value in {
        "str-true": "true", "str-yes": "yes", "str-0": "0", "int-1": 1, "float-1": 1.0,
        "str-maybe": "maybe", "int-2": 2, "null": None, "list": [True],
    }.items():  # fmt: skip
        case("vectoradd", "apply", f"normalize-{label}", {"inputs": VA | {"normalize": value}})
    for label, value in {
        "float-integral": 3.0, "float-fraction": 2.5, "str-int": "7", "str-float": "7.5",
        "bool": True, "negative": -1, "null": None, "zero": 0, "str-spaces": " 7 ",
    }.items():  # fmt: skip
        case("steady-state", "apply", f"max-iter-{label}",
             {"inputs": {"f": F5, "max_iter": value}})  # fmt: skip
    case("steady-state", "apply", "max-iter-beyond-64-bits",
         {"inputs": {"f": F5, "max_iter": 2**70}}, intended="integers-are-64-bit")  # fmt: skip

    # --- dtype casts (same_kind, integral floats to ints) ---------------------------------
    all_dtypes = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                  "uint16", "uint32", "uint64", "bool", "complex64", "complex128"]  # fmt: skip
    for dtype in all_dtypes:
        value = 1 if dtype == "bool" else 2
        case("rosenbrock", "apply", f"dtype-{dtype}-base64",
             {"inputs": {"x": b64_array(value, dtype), "y": 1.0}})  # fmt: skip
        case("rosenbrock", "apply", f"dtype-{dtype}-json",
             {"inputs": {"x": json_array(value, dtype) if "complex" not in dtype else
                         {"shape": [], "dtype": dtype, "data": {"buffer": 2, "encoding": "json"}},
                         "y": 1.0}})  # fmt: skip
        case("vectoradd", "apply", f"dtype-{dtype}-base64",
             {"inputs": {"a": b64_array([1, 0, 1], dtype), "b": VA["b"][:3]}})  # fmt: skip
        case("rosenbrock", "abstract_eval", f"dtype-{dtype}",
             {"inputs": {"x": {"shape": [], "dtype": dtype}, "y": {"shape": [], "dtype": "float64"}}})  # fmt: skip
    case("rosenbrock", "apply", "dtype-float128",
         {"inputs": {"x": {"shape": [], "dtype": "float128", "data": {"buffer": 1.0, "encoding": "json"}}}})  # fmt: skip
    case("rosenbrock", "apply", "json-float-for-int-dtype",
         {"inputs": {"x": {"shape": [], "dtype": "int32", "data": {"buffer": 1.5, "encoding": "json"}}}})  # fmt: skip
    case("rosenbrock", "apply", "json-bool-buffer",
         {"inputs": {"x": {"shape": [], "dtype": "bool", "data": {"buffer": True, "encoding": "json"}}}})  # fmt: skip
    case("rosenbrock", "apply", "bare-bool", {"inputs": {"x": True, "y": False}})
    case("rosenbrock", "apply", "bare-int", {"inputs": {"x": 2, "y": -3}})
    case("rosenbrock", "apply", "bare-huge-int", {"inputs": {"x": 2**70}})
    case("rosenbrock", "apply", "bare-uint64-int", {"inputs": {"x": 2**63 + 5}})
    case("steady-state", "apply", "float64-out-of-float32-range-to-float64",
         {"inputs": {"f": b64_array([1e300, 1, 2], "float64")}})  # fmt: skip
    case("vectoradd", "apply", "float64-over-float32-range",
         {"inputs": {"a": b64_array([1e300, 1, 2], "float64"), "b": [1, 2, 3]}})  # fmt: skip
    case("vectoradd", "apply", "int64-to-float32",
         {"inputs": {"a": b64_array([2**40, 1, 2], "int64"), "b": [1, 2, 3]}})  # fmt: skip
    case("vectoradd", "apply", "float64-to-float32-rounding",
         {"inputs": {"a": b64_array([0.1, 1 / 3, 2.0**-30], "float64"), "b": [0.2, 0.3, 0.4]}})  # fmt: skip

    # --- NaN and infinities --------------------------------------------------------------
    raw = {
        "nan-token": b'{"inputs": {"x": NaN, "y": 1.0}}',
        "infinity-token": b'{"inputs": {"x": Infinity, "y": 1.0}}',
        "minus-infinity-token": b'{"inputs": {"x": -Infinity, "y": 1.0}}',
        "nan-in-encoded-json": b'{"inputs": {"x": {"shape": [], "dtype": "float64", "data": {"buffer": NaN, "encoding": "json"}}}}',
        "nan-base64": json.dumps({"inputs": {"x": b64_array(np.nan, "float64")}}).encode(),
        "inf-base64": json.dumps({"inputs": {"x": b64_array(np.inf, "float64")}}).encode(),
    }  # fmt: skip
    for label, body in raw.items():
        case("rosenbrock", "apply", label, raw=body)
    case("rosenbrock", "apply", "float-literal-overflow", raw=b'{"inputs": {"x": 2e400, "y": -1E999}}')
    case("rosenbrock", "jacobian_vector_product", "nan-tangent",
         raw=b'{"inputs": {"x": 1.0}, "jvp_inputs": ["x"], "jvp_outputs": ["result"], "tangent_vector": {"x": NaN}}')  # fmt: skip
    case("steady-state", "apply", "nan-token-in-f", raw=b'{"inputs": {"f": [1.0, NaN, 2.0]}}',
         intended="non-finite-in-422-input")  # fmt: skip
    case("vectoradd", "apply", "infinity-token-in-a",
         raw=b'{"inputs": {"a": [Infinity, 1, 2], "b": [1, 2, -Infinity]}}')  # fmt: skip
    case("vectoradd", "apply", "nan-token-as-bool",
         raw=b'{"inputs": {"a": [1, 2], "b": [1, 2], "normalize": NaN}}',
         intended="non-finite-in-422-input")  # fmt: skip
    case("steady-state", "apply", "nan-token-max-iter",
         raw=b'{"inputs": {"f": [1.0, 2.0], "max_iter": NaN}}', intended="non-finite-in-422-input")  # fmt: skip

    # --- shapes, ranks, malformed arrays ----------------------------------------------------
    case("vectoradd", "apply", "rank-2", {"inputs": {"a": [[1, 2, 3]], "b": [4, 5, 6]}})
    case("vectoradd", "apply", "rank-0", {"inputs": {"a": 1.0, "b": [4, 5, 6]}})
    case("vectoradd", "apply", "lengths-differ", {"inputs": {"a": [1, 2, 3], "b": [4, 5]}})
    case("vectoradd", "apply", "rank-2-base64",
         {"inputs": {"a": b64_array(np.ones((2, 3)), "float32"), "b": [4, 5, 6]}})  # fmt: skip
    case("vectoradd", "apply", "rank-2-json-encoded",
         {"inputs": {"a": json_array(np.ones((2, 3)), "float32"), "b": [4, 5, 6]}})  # fmt: skip
    case("steady-state", "vector_jacobian_product", "cotangent-key-not-differentiable",
         {"inputs": SS, "vjp_inputs": ["f"], "vjp_outputs": ["u"],
          "cotangent_vector": {"iterations": 1.0}})  # fmt: skip
    case("vectoradd", "apply", "ragged", {"inputs": {"a": [[1, 2], [3]], "b": [1, 2]}})
    case("rosenbrock", "apply", "scalar-as-list", {"inputs": {"x": [0.5], "y": 1.0}})
    case("rosenbrock", "apply", "scalar-shape-1",
         {"inputs": {"x": json_array([0.5], "float64"), "y": 1.0}})  # fmt: skip
    case("steady-state", "apply", "empty-f", {"inputs": {"f": []}})
    case("steady-state", "apply", "coupling-too-big", {"inputs": {"f": F5, "coupling": 1.5}})
    case("steady-state", "apply", "no-convergence", {"inputs": {"f": F5, "max_iter": 0}})
    case("steady-state", "apply", "tol-negative", {"inputs": {"f": F5, "tol": -1.0}})
    bad_arrays = {
        "string": "foo",
        "list-of-strings": ["x", "y"],
        "null": None,
        "dict-not-array": {"foo": 1},
        "mixed-list": [1, "a", 2],
        "nested-null": [1, None, 2],
        "shape-buffer-mismatch": {"shape": [2], "dtype": "float64", "data": {"buffer": [1, 2, 3], "encoding": "json"}},
        "negative-shape": {"shape": [-3], "dtype": "float64", "data": {"buffer": [1, 2, 3], "encoding": "json"}},
        "base64-short": {"shape": [3], "dtype": "float64", "data": {"buffer": base64.b64encode(b"\0" * 16).decode(), "encoding": "base64"}},
        "base64-long": {"shape": [3], "dtype": "float64", "data": {"buffer": base64.b64encode(b"\0" * 32).decode(), "encoding": "base64"}},
        "base64-bad-chars": {"shape": [3], "dtype": "float64", "data": {"buffer": "!!not base64!!", "encoding": "base64"}},
        "base64-no-padding": {"shape": [1], "dtype": "float64", "data": {"buffer": "AAAAAAAA8D8", "encoding": "base64"}},
        "lz4-garbage": {"shape": [3], "dtype": "float64", "data": {"buffer": base64.b64encode(b"garbage").decode(), "encoding": "base64", "compression": "lz4"}},
        "compression-unknown": {"shape": [3], "dtype": "float64", "data": {"buffer": base64.b64encode(b"\0" * 24).decode(), "encoding": "base64", "compression": "zstd"}},
        "encoding-unknown": {"shape": [3], "dtype": "float64", "data": {"buffer": [1, 2, 3], "encoding": "zip"}},
        "object-type-wrong": {"object_type": "tensor", "shape": [3], "dtype": "float64", "data": {"buffer": [1, 2, 3], "encoding": "json"}},
        "extra-key": {"shape": [3], "dtype": "float64", "data": {"buffer": [1, 2, 3], "encoding": "json"}, "extra": 1},
        "extra-data-key": {"shape": [3], "dtype": "float64", "data": {"buffer": [1, 2, 3], "encoding": "json", "extra": 1}},
        "missing-data": {"shape": [3], "dtype": "float64"},
        "missing-shape": {"dtype": "float64", "data": {"buffer": [1, 2, 3], "encoding": "json"}},
        "missing-dtype": {"shape": [3], "data": {"buffer": [1, 2, 3], "encoding": "json"}},
        "missing-encoding": {"shape": [3], "dtype": "float64", "data": {"buffer": [1, 2, 3]}},
        "binref-missing-file": {"shape": [3], "dtype": "float64", "data": {"buffer": "nope.bin:0", "encoding": "binref"}},
        "binref-short-file": binref_array([1.0], "float64", "steady-state/short.bin") | {"shape": [3]},
    }  # fmt: skip
    for label, value in bad_arrays.items():
        case("steady-state", "apply", f"f-{label}", {"inputs": {"f": value}})

    # --- request structure -----------------------------------------------------------------
    for name in names:
        p = PRIMALS[name]
        case(name, "apply", "missing-inputs", {})
        case(name, "apply", "misspelled-inputs", {"inputz": p})
        case(name, "apply", "extra-top-level", {"inputs": p, "extra": 1})
        case(name, "apply", "extra-input-field", {"inputs": p | {"zzz": 3}})
        case(name, "apply", "inputs-is-list", {"inputs": [1, 2]})
        case(name, "apply", "inputs-is-null", {"inputs": None})
        case(name, "apply", "body-is-list", [1, 2])
        case(name, "apply", "body-is-null", raw=b"null")
        case(name, "apply", "empty-body", raw=b"")
        case(name, "apply", "invalid-json", raw=b'{"inputs": {x}}')
        case(name, "apply", "truncated-json", raw=b'{"inputs": {"x": 1')
        case(name, "apply", "trailing-garbage", raw=json.dumps({"inputs": p}).encode() + b" x")
        case(name, "apply", "text-plain", raw=json.dumps({"inputs": p}).encode(),
             headers=(("Content-Type", "text/plain"),))  # fmt: skip
        case(name, "apply", "no-content-type", raw=json.dumps({"inputs": p}).encode(),
             headers=(("Content-Type", None),))  # fmt: skip
        case(name, "apply", "content-type-charset", raw=json.dumps({"inputs": p}).encode(),
             headers=(("Content-Type", "application/json; charset=utf-8"),))  # fmt: skip
    case("steady-state", "apply", "missing-required", {"inputs": {"coupling": 0.1}})
    case("vectoradd", "apply", "missing-both", {"inputs": {}})

    # --- Accept negotiation -------------------------------------------------------------
    accepts = {
        "none": None,
        "star": "*/*",
        "application-star": "application/*",
        "client-default": "application/*; gpu_transport=none",
        "json": "application/json",
        "json-gpu-none": "application/json; gpu_transport=none",
        "base64": "application/json+base64",
        "base64-client": "application/json+base64; gpu_transport=none",
        "base64-lz4": "application/json+base64; compression=lz4",
        "base64-lz4-quoted": 'application/json+base64; compression="lz4"',
        "base64-compression-none": "application/json+base64; compression=none",
        "json-lz4": "application/json; compression=lz4",
        "binref": "application/json+binref",
        "binref-lz4": "application/json+binref; compression=lz4",
        "star-lz4": "*/*; compression=lz4",
        "q-prefers-base64": "application/json;q=0.5, application/json+base64;q=0.9",
        "q-equal-keeps-order": "application/json+base64, application/json",
        "q-zero": "application/json+base64;q=0",
        "q-invalid": "application/json+base64;q=abc, application/json;q=0.1",
        "unmatched-then-json": "application/msgpack, application/json;q=0.1",
        "case-insensitive": "Application/JSON+Base64",
        "spaces": "application/json+base64 ;  compression = lz4",
        "text-json": "text/json+base64",
        "unmatched-msgpack": "application/msgpack",
        "unmatched-html": "text/html",
        "unmatched-gpu": "application/json; gpu_transport=cuda_ipc",
        "unmatched-compression": "application/json+base64; compression=zstd",
        "unmatched-several": "application/xml, text/plain;q=0.5",
        "empty-ranges": ", ,",
    }
    for name in names:
        p = PRIMALS[name]
        jac_body = {"inputs": p, "jac_inputs": DIFF_IN[name], "jac_outputs": DIFF_OUT[name]}
        for label, accept in accepts.items():
            h = (("Accept", accept),)
            why = {"q-zero": "q-zero-not-acceptable"}.get(label)
            case(name, "apply", f"accept-{label}", {"inputs": p}, headers=h, intended=why)
            case(name, "jacobian", f"accept-{label}", jac_body, headers=h, intended=why)
        case(name, "health", "accept-msgpack-ignored", method="GET",
             headers=(("Accept", "application/msgpack"),))  # fmt: skip
    for label in ("none", "base64-lz4", "unmatched-msgpack"):
        h = (("Accept", accepts[label]),)
        for name in ("rosenbrock", "steady-state"):
            p = PRIMALS[name]
            case(name, "jacobian_vector_product", f"accept-{label}",
                 {"inputs": p, "jvp_inputs": DIFF_IN[name], "jvp_outputs": DIFF_OUT[name],
                  "tangent_vector": tangents(name, DIFF_IN[name])}, headers=h)  # fmt: skip
            case(name, "vector_jacobian_product", f"accept-{label}",
                 {"inputs": p, "vjp_inputs": DIFF_IN[name], "vjp_outputs": DIFF_OUT[name],
                  "cotangent_vector": cotangents(name, DIFF_OUT[name])}, headers=h)  # fmt: skip
            case(name, "abstract_eval", f"accept-{label}",
                 {"inputs": abstract_inputs(name)}, headers=h)  # fmt: skip

    # --- jacobian ----------------------------------------------------------------------------
    for name in names:
        p = PRIMALS[name]
        ins, outs = DIFF_IN[name], DIFF_OUT[name]
        for i in ins:
            case(name, "jacobian", f"wrt-{i}", {"inputs": p, "jac_inputs": [i], "jac_outputs": outs})
        def jac(label, body_extra, **kw):
            case(name, "jacobian", label,
                 {"inputs": p, "jac_inputs": ins, "jac_outputs": outs} | body_extra, **kw)  # fmt: skip
        jac("all", {})
        jac("duplicates", {"jac_inputs": ins + ins[:1]})
        jac("empty-jac-inputs", {"jac_inputs": []})
        jac("empty-jac-outputs", {"jac_outputs": []})
        jac("non-differentiable-input", {"jac_inputs": [NOT_DIFF_IN[name]]})
        jac("non-differentiable-input-among-others", {"jac_inputs": [*ins, NOT_DIFF_IN[name]]})
        jac("unknown-input", {"jac_inputs": ["zzz"]})
        jac("unknown-output", {"jac_outputs": ["zzz"]})
        jac("input-as-output", {"jac_outputs": [ins[0]]})
        jac("jac-inputs-string", {"jac_inputs": ins[0]})
        jac("jac-inputs-number", {"jac_inputs": [1]})
        jac("extra-field", {"extra": True})
        case(name, "jacobian", "missing-jac-outputs", {"inputs": p, "jac_inputs": ins})
        jac("bad-inputs", {"inputs": p | {"zzz": 1}})
        if NOT_DIFF_OUT[name]:
            jac("non-differentiable-output", {"jac_outputs": [NOT_DIFF_OUT[name]]})
    case("vectoradd", "jacobian", "normalize", intended="vectoradd-normalize-jacobian",
         body={"inputs": VA_FULL | {"normalize": True}, "jac_inputs": ["a", "b", "s"],
               "jac_outputs": ["result"]})  # fmt: skip
    case("vectoradd", "jacobian", "normalize-s-1-wrt-b",
         {"inputs": VA_FULL | {"normalize": True, "s": 1.0}, "jac_inputs": ["b"],
          "jac_outputs": ["result"]})  # fmt: skip
    case("vectoradd", "jacobian", "lengths-differ",
         {"inputs": {"a": [1, 2], "b": [1, 2, 3]}, "jac_inputs": ["a"], "jac_outputs": ["result"]})  # fmt: skip
    case("steady-state", "jacobian", "coupling-too-big",
         {"inputs": {"f": F5, "coupling": -1.0}, "jac_inputs": ["f"], "jac_outputs": ["u"]})  # fmt: skip

    # --- jvp / vjp (rosenbrock and steady-state implement them natively) ---------------------
    for name in ("rosenbrock", "steady-state"):
        p = PRIMALS[name]
        ins, outs = DIFF_IN[name], DIFF_OUT[name]

        def jvp(label, extra, name=name, p=p, ins=ins, outs=outs, **kw):
            body = {"inputs": p, "jvp_inputs": ins, "jvp_outputs": outs,
                    "tangent_vector": tangents(name, ins)} | extra  # fmt: skip
            case(name, "jacobian_vector_product", label, body, **kw)

        def vjp(label, extra, name=name, p=p, ins=ins, outs=outs, **kw):
            body = {"inputs": p, "vjp_inputs": ins, "vjp_outputs": outs,
                    "cotangent_vector": cotangents(name, outs)} | extra  # fmt: skip
            case(name, "vector_jacobian_product", label, body, **kw)

        jvp("all", {})
        vjp("all", {})
        for i in ins:
            jvp(f"wrt-{i}", {"jvp_inputs": [i], "tangent_vector": tangents(name, [i])})
            vjp(f"wrt-{i}", {"vjp_inputs": [i]})
        jvp("base64-tangents", {"tangent_vector": {
            k: b64_array(v, "float64") for k, v in tangents(name, ins).items()}})
        jvp("lz4-tangents", {"tangent_vector": {
            k: b64_array(v, "float64", lz4=True) for k, v in tangents(name, ins).items()}})
        jvp("float32-tangents", {"tangent_vector": {
            k: b64_array(v, "float32") for k, v in tangents(name, ins).items()}})
        jvp("int-tangents", {"tangent_vector": {
            k: np.ones(primal_shape(name, k), int).tolist() for k in ins}})
        jvp("complex-tangent", {"tangent_vector": {
            k: b64_array(v, "complex128") for k, v in tangents(name, ins).items()}})
        jvp("tangent-missing-key", {"tangent_vector": tangents(name, ins[:1])})
        jvp("tangent-extra-key", {"tangent_vector": tangents(name, ins) | {"zzz": 1.0}})
        jvp("tangent-keys-for-subset", {"jvp_inputs": ins[:1]})
        jvp("tangent-non-numeric", {"tangent_vector": {k: "x" for k in ins}})
        jvp("tangent-null", {"tangent_vector": None})
        case(name, "jacobian_vector_product", "missing-tangent",
             {"inputs": p, "jvp_inputs": ins, "jvp_outputs": outs})  # fmt: skip
        jvp("empty-jvp-inputs", {"jvp_inputs": [], "tangent_vector": {}})
        jvp("non-differentiable-input", {"jvp_inputs": [NOT_DIFF_IN[name]],
                                         "tangent_vector": {NOT_DIFF_IN[name]: 1.0}})
        jvp("unknown-output", {"jvp_outputs": ["zzz"]})
        jvp("duplicate-inputs", {"jvp_inputs": ins + ins})
        jvp("extra-field", {"extra": 1})
        vjp("base64-cotangents", {"cotangent_vector": {
            k: b64_array(v, "float64") for k, v in cotangents(name, outs).items()}})
        vjp("lz4-cotangents", {"cotangent_vector": {
            k: b64_array(v, "float64", lz4=True) for k, v in cotangents(name, outs).items()}})
        vjp("float32-cotangents", {"cotangent_vector": {
            k: b64_array(v, "float32") for k, v in cotangents(name, outs).items()}})
        vjp("complex-cotangent", {"cotangent_vector": {
            k: b64_array(v, "complex64") for k, v in cotangents(name, outs).items()}})
        vjp("cotangent-missing-key", {"cotangent_vector": {}})
        vjp("cotangent-extra-key", {"cotangent_vector": cotangents(name, outs) | {"zzz": 1.0}})
        vjp("cotangent-non-numeric", {"cotangent_vector": {k: "x" for k in outs}})
        vjp("empty-vjp-outputs", {"vjp_outputs": [], "cotangent_vector": {}})
        vjp("non-differentiable-input", {"vjp_inputs": [NOT_DIFF_IN[name]]})
        vjp("unknown-input", {"vjp_inputs": ["zzz"]})
        vjp("extra-field", {"extra": 1})
        # Batched (co)tangents: the extension tesseract-core does not have (issue #244).
        jvp("batched-tangents", {"tangent_vector": {
            k: np.stack([np.asarray(tangents(name, ins, s)[k]) for s in (1.0, 2.0, -0.5)]).tolist()
            for k in ins}}, intended="batched-tangents")  # fmt: skip
        vjp("batched-cotangents", {"cotangent_vector": {
            k: np.stack([np.asarray(v) * s for s in (1.0, -3.0)]).tolist()
            for k, v in cotangents(name, outs).items()}}, intended="batched-cotangents")  # fmt: skip

    # A larger problem, to hold the values to 1e-12 where round-off has room to grow.
    f64 = np.sin(np.linspace(0.0, 9.0, 64)) * 2.0 + 0.1
    big = {"f": b64_array(f64, "float64"), "coupling": 0.8}
    rng = np.random.default_rng(64)
    case("steady-state", "apply", "n-64", {"inputs": big}, headers=(("Accept", "application/json+base64"),))
    case("steady-state", "jacobian", "n-64",
         {"inputs": big, "jac_inputs": ["f", "coupling"], "jac_outputs": ["u"]})  # fmt: skip
    case("steady-state", "jacobian_vector_product", "n-64",
         {"inputs": big, "jvp_inputs": ["f", "coupling"], "jvp_outputs": ["u"],
          "tangent_vector": {"f": b64_array(rng.standard_normal(64), "float64"), "coupling": -0.7}})  # fmt: skip
    case("steady-state", "vector_jacobian_product", "n-64",
         {"inputs": big, "vjp_inputs": ["f", "coupling"], "vjp_outputs": ["u"],
          "cotangent_vector": {"u": b64_array(rng.standard_normal(64), "float64")}})  # fmt: skip
    case("vectoradd", "apply", "n-1000-normalize",
         {"inputs": {"a": b64_array(rng.standard_normal(1000), "float32"),
                     "b": b64_array(rng.standard_normal(1000), "float32"), "s": 0.3,
                     "normalize": True}})  # fmt: skip

    ss, f = PRIMALS["steady-state"], F5
    case("steady-state", "jacobian_vector_product", "tangent-broadcast-size-1",
         {"inputs": ss, "jvp_inputs": ["f"], "jvp_outputs": ["u"],
          "tangent_vector": {"f": [0.5]}})  # fmt: skip
    case("steady-state", "jacobian_vector_product", "tangent-wrong-length",
         {"inputs": ss, "jvp_inputs": ["f"], "jvp_outputs": ["u"],
          "tangent_vector": {"f": [1.0, 2.0]}})  # fmt: skip
    case("steady-state", "jacobian_vector_product", "tangent-rank-0-for-vector",
         {"inputs": ss, "jvp_inputs": ["f"], "jvp_outputs": ["u"],
          "tangent_vector": {"f": 1.0}})  # fmt: skip
    case("steady-state", "jacobian_vector_product", "non-differentiable-output",
         {"inputs": ss, "jvp_inputs": ["f"], "jvp_outputs": ["iterations"],
          "tangent_vector": {"f": f}})  # fmt: skip
    case("steady-state", "vector_jacobian_product", "cotangent-wrong-length",
         {"inputs": ss, "vjp_inputs": ["f"], "vjp_outputs": ["u"],
          "cotangent_vector": {"u": [1.0, 2.0]}}, intended="cotangent-wrong-length")  # fmt: skip
    case("steady-state", "vector_jacobian_product", "cotangent-broadcast-size-1",
         {"inputs": ss, "vjp_inputs": ["f"], "vjp_outputs": ["u"],
          "cotangent_vector": {"u": [2.0]}})  # fmt: skip
    case("steady-state", "vector_jacobian_product", "cotangent-rank-0-for-vector",
         {"inputs": ss, "vjp_inputs": ["f"], "vjp_outputs": ["u"],
          "cotangent_vector": {"u": 1.0}})  # fmt: skip
    case("steady-state", "vector_jacobian_product", "bad-primal",
         {"inputs": {"f": []}, "vjp_inputs": ["f"], "vjp_outputs": ["u"],
          "cotangent_vector": {"u": []}})  # fmt: skip

    # --- abstract_eval ---------------------------------------------------------------------
    for name in ("rosenbrock", "steady-state"):
        a = abstract_inputs(name)
        case(name, "abstract_eval", "shapedtype", {"inputs": a})
        case(name, "abstract_eval", "full-arrays", {"inputs": encode_inputs(
            name, lambda f, v, d: json_array(v, d))})  # fmt: skip
        case(name, "abstract_eval", "extra-input-field", {"inputs": a | {"zzz": 1}})
        case(name, "abstract_eval", "extra-top-level", {"inputs": a, "zzz": 1})
        case(name, "abstract_eval", "missing-inputs", {})
        case(name, "abstract_eval", "bad-dtype-name",
             {"inputs": a | {next(iter(a)): {"shape": [], "dtype": "float128"}}})  # fmt: skip
        case(name, "abstract_eval", "plain-number-for-array",
             {"inputs": a | {next(iter(a)): 1.0}})  # fmt: skip
        case(name, "abstract_eval", "missing-shape",
             {"inputs": a | {next(iter(a)): {"dtype": "float64"}}})  # fmt: skip
        case(name, "abstract_eval?run_id=x", "run-id-ignored", {"inputs": a})
    case("rosenbrock", "abstract_eval", "wrong-rank",
         {"inputs": {"x": {"shape": [2], "dtype": "float64"}}})  # fmt: skip
    case("rosenbrock", "abstract_eval", "defaults-only", {"inputs": {}})
    case("steady-state", "abstract_eval", "wrong-rank",
         {"inputs": {"f": {"shape": [2, 2], "dtype": "float64"}}})  # fmt: skip
    case("steady-state", "abstract_eval", "length-0",
         {"inputs": {"f": {"shape": [0], "dtype": "float64"}}})  # fmt: skip
    case("steady-state", "abstract_eval", "float32-cast",
         {"inputs": {"f": {"shape": [7], "dtype": "float32"}, "max_iter": 3}})  # fmt: skip
    case("steady-state", "abstract_eval", "complex",
         {"inputs": {"f": {"shape": [7], "dtype": "complex64"}}})  # fmt: skip
    case("steady-state", "abstract_eval", "max-iter-str",
         {"inputs": {"f": {"shape": [7], "dtype": "float64"}, "max_iter": "x"}})  # fmt: skip

    # --- routes and methods --------------------------------------------------------------
    for name in names:
        case(name, "health", "get", method="GET")
        case(name, "health", "get-null-body", method="GET", raw=b"null")
        case(name, "health", "post", method="POST", body={})
        case(name, "apply", "get", method="GET")
        case(name, "jacobian", "put", method="PUT", body={})
        case(name, "nope", "unknown-route", body={})
        case(name, "input_schema", "removed-route", method="GET")
        case(name, "apply/", "trailing-slash", {"inputs": PRIMALS[name]})
    # vectoradd exports apply and jacobian only; we derive the rest (upstream: 404).
    va = VA_FULL
    case("vectoradd", "jacobian_vector_product", "derived", intended="derived-endpoints",
         body={"inputs": va, "jvp_inputs": ["a", "s"], "jvp_outputs": ["result"],
               "tangent_vector": {"a": [1.0, -2.0, 0.5], "s": 2.0}})  # fmt: skip
    case("vectoradd", "vector_jacobian_product", "derived", intended="derived-endpoints",
         body={"inputs": va, "vjp_inputs": ["a", "b", "s"], "vjp_outputs": ["result"],
               "cotangent_vector": {"result": [1.0, 0.5, -1.0]}})  # fmt: skip
    case("vectoradd", "abstract_eval", "derived", intended="derived-endpoints",
         body={"inputs": {"a": {"shape": [4], "dtype": "float32"},
                          "b": {"shape": [4], "dtype": "float64"}}})  # fmt: skip


def abstract_inputs(name: str) -> dict:
    out = {}
    for k, v in PRIMALS[name].items():
        dtype = ARRAY_FIELDS[name].get(k)
        out[k] = {"shape": list(np.shape(v)), "dtype": dtype} if dtype else v
    return out


build_corpus()
_ids = [c.id + (f"[{c.method}]" if c.method != "POST" else "") for c in CORPUS]
assert len(_ids) == len(set(_ids)), sorted(i for i in _ids if _ids.count(i) > 1)


# ---------------------------------------------------------------------------------------------
# Sending and decoding
# ---------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    content_type: str
    text: str
    json: Any = None
    out_dir: Path | None = None

    def summary(self, limit: int = 1500) -> str:
        t = self.text if len(self.text) <= limit else self.text[:limit] + "…"
        return f"{self.status} [{self.content_type}] {t}"


def send(base: str, c: Case, out_dir: Path | None = None) -> Reply:
    # None removes requests' defaults (Accept: */*) so "no header" really sends none.
    headers: dict[str, str | None] = {"Accept": None, "Content-Type": "application/json"}
    headers.update(dict(c.headers))
    if c.raw is not None:
        data = c.raw
    elif c.body is None:
        data = None
    else:
        data = json.dumps(c.body, allow_nan=False).encode()
    if data is None and c.method == "GET":
        headers["Content-Type"] = None
    # A fresh connection per request: upstream drops keep-alive connections after a 500.
    r = requests.request(
        c.method, f"{base}/{c.endpoint}", data=data, headers=headers, timeout=120
    )
    try:
        body = r.json()
    except ValueError:
        body = None
    return Reply(r.status_code, r.headers.get("content-type", ""), r.text, body, out_dir)


def send_both(pair: Pair, c: Case) -> tuple[Reply, Reply]:
    return send(pair.upstream_url, c, pair.upstream_out), send(pair.ours_url, c, pair.ours_out)


@dataclass
class Decoded:
    """A decoded output array, with how it came over the wire."""

    dtype: str
    shape: tuple[int, ...]
    encoding: str
    compression: str | None
    values: np.ndarray


def _nulls_to_nan(x):
    if isinstance(x, list):
        return [_nulls_to_nan(v) for v in x]
    return math.nan if x is None else x


def decode_array(obj: dict, out_dir: Path | None) -> Decoded:
    dtype = np.dtype(obj["dtype"])
    shape = tuple(obj["shape"])
    data = obj["data"]
    enc, comp = data["encoding"], data.get("compression")
    if enc == "json":
        values = np.asarray(_nulls_to_nan(data["buffer"]), dtype=dtype).reshape(shape)
    else:
        if enc == "base64":
            blob = base64.b64decode(data["buffer"])
        elif enc == "binref":
            assert out_dir is not None
            m = re.fullmatch(r"(.+?)(?::(\d+)(?::(\d+))?)?", data["buffer"])
            assert m, data["buffer"]
            raw = (out_dir / m[1]).read_bytes()
            offset = int(m[2] or 0)
            size = int(m[3]) if m[3] else int(np.prod(shape)) * dtype.itemsize
            blob = raw[offset : offset + size]
        else:
            raise AssertionError(f"unexpected encoding {enc!r}")
        if comp == "lz4":
            blob = lz4frame.decompress(blob)
        values = np.frombuffer(blob, dtype=dtype.newbyteorder("<")).reshape(shape)
    # binref buffers name files in each server's own output dir: only the encoding is compared.
    return Decoded(str(dtype), shape, enc, comp, values)


def decode(obj: Any, out_dir: Path | None) -> Any:
    if isinstance(obj, dict):
        if obj.get("object_type") == "array":
            return decode_array(obj, out_dir)
        return {k: decode(v, out_dir) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v, out_dir) for v in obj]
    return obj


# Relative tolerance by dtype: float64 to 1e-12; float32 and narrower at their own precision.
TOLERANCE = {"float64": 1e-12, "float32": 4 * float(np.finfo(np.float32).eps),
             "float16": 4 * float(np.finfo(np.float16).eps)}  # fmt: skip


# Outputs whose values carry less precision than their dtype: vectoradd computes s·a + b and
# its norm in float32 (as upstream's example does) and widens to float64, so float32 precision
# is all there is to compare; numpy's BLAS sums the squares in another order than the Rust.
COMPUTED_IN = {("vectoradd", "result"): "float32"}


def close(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    """Elementwise relative closeness, with NaNs in the same places and a floor of rtol times
    the array's largest magnitude (so round-off next to zero entries does not count)."""
    if a.shape != b.shape:
        return False
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    nan_a, nan_b = np.isnan(a64), np.isnan(b64)
    if (nan_a != nan_b).any():
        return False
    a64, b64 = a64[~nan_a], b64[~nan_b]
    inf = np.isinf(a64) | np.isinf(b64)
    if (a64[inf] != b64[inf]).any():
        return False
    a64, b64 = a64[~inf], b64[~inf]
    if a64.size == 0:
        return True
    scale = max(np.abs(a64).max(), np.abs(b64).max())
    return bool(np.all(np.abs(a64 - b64) <= rtol * np.maximum(np.maximum(np.abs(a64), np.abs(b64)), scale * 1e-3)))  # fmt: skip


def diff_trees(up: Any, ours: Any, at: str = "$", tesseract: str = "") -> list[str]:
    if isinstance(up, Decoded) or isinstance(ours, Decoded):
        if not (isinstance(up, Decoded) and isinstance(ours, Decoded)):
            return [f"{at}: {up!r} vs {ours!r}"]
        out = []
        for attr in ("dtype", "shape", "encoding", "compression"):
            if getattr(up, attr) != getattr(ours, attr):
                out.append(f"{at}.{attr}: upstream {getattr(up, attr)!r}, ours {getattr(ours, attr)!r}")
        if not out:
            if up.values.dtype.kind in "fc":
                field = at.removeprefix("$.")  # "result" for apply, "result.a" for a jacobian
                precision = COMPUTED_IN.get((tesseract, field), up.dtype)
                ok = close(up.values, ours.values, TOLERANCE.get(precision, 0.0))
            else:
                ok = np.array_equal(up.values, ours.values)
            if not ok:
                out.append(f"{at}: values differ\n  upstream {up.values!r}\n  ours     {ours.values!r}")
        return out
    if isinstance(up, dict) and isinstance(ours, dict):
        out = []
        if set(up) != set(ours):
            out.append(f"{at}: keys upstream {sorted(up)}, ours {sorted(ours)}")
        for k in set(up) & set(ours):
            out += diff_trees(up[k], ours[k], f"{at}.{k}", tesseract)
        return out
    if isinstance(up, list) and isinstance(ours, list) and len(up) == len(ours):
        return [
            d
            for i, (u, o) in enumerate(zip(up, ours))
            for d in diff_trees(u, o, f"{at}[{i}]", tesseract)
        ]
    if up != ours or type(up) is not type(ours):
        return [f"{at}: upstream {up!r}, ours {ours!r}"]
    return []


def error_keys(reply: Reply) -> list[tuple[str, tuple]]:
    detail = (reply.json or {}).get("detail")
    if not isinstance(detail, list):
        return [("<not a list>", (repr(detail),))]
    return sorted((d.get("type"), tuple(d.get("loc", ()))) for d in detail)


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def compare(up: Reply, ours: Reply, tesseract: str = "") -> list[str]:
    """What differs between the two answers, in words; empty when they agree."""
    if up.status != ours.status:
        return [f"status: upstream {up.status}, ours {ours.status}"]
    if up.status == 422:
        a, b = error_keys(up), error_keys(ours)
        return [] if a == b else [f"422 details (type, loc):\n  upstream {a}\n  ours     {b}"]
    if up.status in (404, 405, 406):
        return [] if up.json == ours.json else [f"body: upstream {up.json}, ours {ours.json}"]
    if up.status == 500:
        return []  # bodies differ by design (module docstring)
    out = []
    if media_type(up.content_type) != media_type(ours.content_type):
        out.append(f"content-type: upstream {up.content_type!r}, ours {ours.content_type!r}")
    if up.json is None or ours.json is None:
        if up.text != ours.text:
            out.append("non-JSON bodies differ")
        return out
    return out + diff_trees(
        decode(up.json, up.out_dir), decode(ours.json, ours.out_dir), tesseract=tesseract
    )


# ---------------------------------------------------------------------------------------------
# Intended differences
# ---------------------------------------------------------------------------------------------


@dataclass
class Intended:
    reason: str
    # Asserts that our answer is right; gets the case, both replies and the server pair.
    check: Callable[[Case, Reply, Reply, Pair], None] = field(repr=False)


def arrays_of(reply: Reply) -> dict:
    assert reply.status == 200, reply.summary()
    return decode(reply.json, reply.out_dir)


def _check_cotangent_wrong_length(c: Case, up: Reply, ours: Reply, pair: Pair) -> None:
    assert up.status == 500, up.summary()  # the defect, so the entry cannot go stale silently
    assert ours.status == 422, ours.summary()
    detail = ours.json["detail"]
    assert len(detail) == 1 and detail[0]["type"] == "value_error", detail
    cot = c.body["cotangent_vector"]["u"]
    assert str(len(cot)) in detail[0]["msg"] and str(len(F5)) in detail[0]["msg"], detail


def _check_normalize_jacobian(c: Case, up: Reply, ours: Reply, pair: Pair) -> None:
    inputs = c.body["inputs"]
    want = ref.vectoradd_jacobian(inputs["a"], inputs["b"], inputs["s"], normalize=True)
    got = arrays_of(ours)["result"]
    for name in ("a", "b", "s"):
        assert got[name].dtype == "float64"
        np.testing.assert_allclose(got[name].values, want[name], rtol=1e-6, atol=1e-7)
    # ...and upstream's is not (its formula is wrong for ∂/∂s whatever s is).
    assert not np.allclose(arrays_of(up)["result"]["s"].values, want["s"], rtol=1e-3)


def _single(c: Case, key: str, k: int) -> Case:
    body = json.loads(json.dumps(c.body))
    body[key] = {p: v[k] if isinstance(v, list) else v for p, v in body[key].items()}
    return Case(c.tesseract, c.endpoint, f"{c.label}-{k}", body)


def _check_batched(key: str) -> Callable[[Case, Reply, Reply, Pair], None]:
    def check(c: Case, up: Reply, ours: Reply, pair: Pair) -> None:
        assert up.status == 422, up.summary()
        got = arrays_of(ours)
        batch = len(next(iter(c.body[key].values())))
        # Each slice equals upstream's answer to the single request.
        for k in range(batch):
            single = arrays_of(send(pair.upstream_url, _single(c, key, k)))
            for path, arr in single.items():
                assert got[path].shape == (batch, *arr.shape), (got[path].shape, arr.shape)
                assert close(got[path].values[k], arr.values, 1e-12), (path, k)

    return check


def _check_derived(c: Case, up: Reply, ours: Reply, pair: Pair) -> None:
    assert up.status == 404 and up.json == {"detail": "Not Found"}, up.summary()
    got = arrays_of(ours)
    inputs = c.body["inputs"]
    if c.endpoint == "abstract_eval":
        assert got == {"result": {"shape": [4], "dtype": "float64"}}, got
        return
    ins = c.body["jvp_inputs" if "jvp_inputs" in c.body else "vjp_inputs"]
    # The contraction of upstream's own jacobian.
    jac = arrays_of(send(pair.upstream_url, Case("vectoradd", "jacobian", "for-derived", {
        "inputs": inputs, "jac_inputs": ins, "jac_outputs": ["result"]})))["result"]  # fmt: skip
    if "tangent_vector" in c.body:
        t = c.body["tangent_vector"]
        want = sum(np.tensordot(jac[i].values, np.asarray(t[i], float), np.ndim(t[i])) for i in ins)
        assert close(got["result"].values, want, 1e-6), (got["result"].values, want)
    else:
        w = np.asarray(c.body["cotangent_vector"]["result"])
        for i in ins:
            want = np.tensordot(w, jac[i].values, 1)
            assert close(got[i].values, want, 1e-6), (i, got[i].values, want)
            assert got[i].dtype == "float32"  # the input's dtype, as the derivative of a float32


def _check_non_finite_422(c: Case, up: Reply, ours: Reply, pair: Pair) -> None:
    assert up.status == 500 and "Internal Server Error" in up.text, up.summary()
    assert ours.status == 422, ours.summary()
    for d in ours.json["detail"]:
        assert d["loc"][:2] == ["body", "inputs"], d
    assert "\\u0000" not in ours.text and "\x00" not in ours.text, ours.summary()


def _check_64_bit_integers(c: Case, up: Reply, ours: Reply, pair: Pair) -> None:
    assert up.status == 200, up.summary()
    assert ours.status == 422, ours.summary()
    assert error_keys(ours) == [("int_type", ("body", "inputs", "max_iter"))], ours.summary()


def _check_q_zero(c: Case, up: Reply, ours: Reply, pair: Pair) -> None:
    assert up.status == 200 and media_type(up.content_type) == "application/json+base64"
    assert ours.status == 406, ours.summary()
    detail = ours.json["detail"]
    assert detail["message"] == f"Cannot produce any encoding accepted by {dict(c.headers)['Accept']!r}"
    assert detail["available_formats"] == ["json", "json+base64", "json+binref"]


INTENDED_DIFFERENCES: dict[str, Intended] = {
    "non-finite-in-422-input": Intended(
        "A 422 echoes the offending input; when that input holds NaN or Infinity, upstream's "
        "JSON encoder refuses it and the client gets a bare 500. We answer the 422 (the "
        "non-finite value is shown as null, as answers write it).",
        _check_non_finite_422,
    ),
    "integers-are-64-bit": Intended(
        "Plain integer fields cross into the component as 64-bit integers (WIT s64); Python's "
        "are unbounded. A larger one is a 422 int_type here instead of reaching user code.",
        _check_64_bit_integers,
    ),
    "q-zero-not-acceptable": Intended(
        "RFC 9110 §12.4.2: q=0 means 'not acceptable'. Upstream only sorts such a range last and "
        "may still answer in it; we leave it out and answer 406 when nothing else matches.",
        _check_q_zero,
    ),
    "cotangent-wrong-length": Intended(
        "Upstream validates a cotangent against the output's declared shape (None,) only, so a "
        "wrong length reaches user code and answers 500 (reference §11); we check it against the "
        "actual output shape and answer 422 naming both lengths. Size-1 broadcasting applies to "
        "tangents upstream but never to cotangents, so a length-1 cotangent is a 500 there too.",
        _check_cotangent_wrong_length,
    ),
    "vectoradd-normalize-jacobian": Intended(
        "tesseract-core's examples/vectoradd jacobian for normalize=True is not the derivative "
        "of apply (reference §11); the twin keeps upstream's formula, ours is the true derivative.",
        _check_normalize_jacobian,
    ),
    "batched-tangents": Intended(
        "Many tangents in one request (DESIGN decision 7, tesseract-core #244): a tangent of shape "
        "(*B, *P) is a batch. Upstream answers 422 (shape mismatch); we answer each of the B jvps.",
        _check_batched("tangent_vector"),
    ),
    "batched-cotangents": Intended(
        "Many cotangents in one request (DESIGN decision 7): a cotangent of shape (*B, *O) is a "
        "batch. Upstream answers 422 (the rank differs from the declared one); we answer each vjp.",
        _check_batched("cotangent_vector"),
    ),
    "derived-endpoints": Intended(
        "vectoradd exports apply and jacobian only; we serve jvp and vjp by contracting the "
        "jacobian and abstract_eval by applying to zeros. Upstream has no derived routes: 404.",
        _check_derived,
    ),
}


# Differences that are neither intended nor fixed yet, because the fix lies outside the files
# of the change that added this test. Each is an expected failure (xfail, strict: once fixed,
# the test fails until the entry is removed), so they stay visible in every run.
KNOWN_DIFFERENCES: dict[str, str] = {
}


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def _params():
    for c, i in zip(CORPUS, _ids):
        reason = KNOWN_DIFFERENCES.get(c.id)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(c, id=i, marks=marks)


@pytest.mark.parametrize("c", list(_params()))
def test_same_as_upstream(c: Case, pairs):
    pair = pairs[c.tesseract]
    up, ours = send_both(pair, c)
    diffs = compare(up, ours, c.tesseract)
    where = f"\nupstream: {up.summary()}\nours:     {ours.summary()}"
    if c.intended is None:
        assert not diffs, "differs from tesseract-core:\n" + "\n".join(diffs) + where
        return
    intended = INTENDED_DIFFERENCES[c.intended]
    assert diffs, f"listed as intended difference {c.intended!r} but agrees now{where}"
    intended.check(c, up, ours, pair)


def test_every_intended_difference_is_exercised():
    used = {c.intended for c in CORPUS if c.intended}
    assert used == set(INTENDED_DIFFERENCES), set(INTENDED_DIFFERENCES) ^ used
    assert set(KNOWN_DIFFERENCES) <= {c.id for c in CORPUS}


def test_binref_inputs_were_written():
    # The corpus must really exercise binref (the files land in the shared --input-path).
    assert any("binref" in c.label for c in CORPUS) and BINREF_FILES


# ---------------------------------------------------------------------------------------------
# /openapi.json
# ---------------------------------------------------------------------------------------------

# Components compared whole; the rest of FastAPI's components are compared by name only.
OPENAPI_COMPONENTS = [
    "Apply_InputSchema", "Apply_OutputSchema", "ApplyInputSchema", "ApplyOutputSchema",
    "AbstractEval_InputSchema", "AbstractEval_OutputSchema", "AbstractInputSchema",
    "AbstractOutputSchema", "ShapeDType", "Base64ArrayData", "BinrefArrayData", "JsonArrayData",
    "JsonValue", "JacobianInputSchema", "JacobianOutputSchema", "Jacobian_InputSchema",
    "JVPInputSchema", "JVPOutputSchema", "Jvp_InputSchema", "VJPInputSchema", "VJPOutputSchema",
    "Vjp_InputSchema",
]  # fmt: skip


def _without_cuda_ipc(node: Any) -> Any:
    """Drops the cuda_ipc encoding: this server offers no GPU transport (DESIGN non-goal)."""
    if isinstance(node, dict):
        return {
            k: _without_cuda_ipc(v)
            for k, v in node.items()
            if k != "cuda_ipc" and v != {"$ref": "#/components/schemas/CudaIpcArrayData"}
        }
    if isinstance(node, list):
        return [
            _without_cuda_ipc(v)
            for v in node
            if v != {"$ref": "#/components/schemas/CudaIpcArrayData"}
        ]
    return node


def _json_diff(up: Any, ours: Any, at: str) -> list[str]:
    if isinstance(up, dict) and isinstance(ours, dict):
        out = []
        for k in up.keys() | ours.keys():
            if k not in ours:
                out.append(f"{at}.{k}: only upstream: {json.dumps(up[k])[:200]}")
            elif k not in up:
                out.append(f"{at}.{k}: only ours: {json.dumps(ours[k])[:200]}")
            else:
                out += _json_diff(up[k], ours[k], f"{at}.{k}")
        if list(up) == list(ours) or set(up) != set(ours) or at.endswith("properties") is False:
            return out
        return out + [f"{at}: key order upstream {list(up)}, ours {list(ours)}"]
    if up != ours:
        return [f"{at}: upstream {json.dumps(up)[:200]}, ours {json.dumps(ours)[:200]}"]
    return []


# Documentation text of the shared schemas is upstream's docstrings, not protocol.
OPENAPI_DOC_KEYS = {"description", "examples"}
OPENAPI_DOC_COMPONENTS = {
    "Base64ArrayData", "BinrefArrayData", "JsonArrayData", "ShapeDType", "AbstractInputSchema",
    "AbstractOutputSchema", "JacobianInputSchema", "JacobianOutputSchema", "JVPInputSchema",
    "JVPOutputSchema", "VJPInputSchema", "VJPOutputSchema",
}  # fmt: skip
# Intended differences in the document, by location, with the reason. A location under
# `operation` is relative to each operation upstream has, compared without its documentation
# text (OPENAPI_DOC_KEYS); every listed location must differ in every example's document.
OPENAPI_INTENDED = {
    "ShapeDType.properties.shape.items.minimum": (
        "we refuse negative sizes in an abstract_eval ShapeDType (greater_than_equal) and say "
        "so; upstream's model takes any int and hands it to user code"
    ),
    "operation.x-tesseract-route": (
        "our extension: how the planner serves the operation (native, looped, from-jacobian, ...)"
    ),
    "operation.responses.200.content.application/json+base64": (
        "upstream answers json+base64 when Accept asks for it but documents application/json "
        "only; we list each media type Accept can select (schemathesis checks content types)"
    ),
    "operation.responses.200.content.application/json+binref": (
        "as json+base64; offered when the server has an --output-path"
    ),
    # Every status our server answers on an operation is documented, with the body it sends
    # (schemathesis's status_code_conformance holds); upstream's document lists 200 and 422
    # only, though its server answers 406, 500 and others too. OPENAPI_ADDED_RESPONSES says on
    # which operations.
    "operation.responses.406": "an Accept header none of the offered encodings satisfies",
    "operation.responses.408": "the body did not arrive within --body-timeout",
    "operation.responses.413": "a body over --max-body-size",
    "operation.responses.500": "the component failed, trapped or broke its contract",
    "operation.responses.503": "admission control: the compute queue is full (Retry-After)",
    "operation.responses.504": "the component ran past --timeout",
}


def _added_responses(path: str) -> set[str]:
    """The statuses we document on `path` beyond upstream's (see OPENAPI_INTENDED)."""
    if path == "/health":
        return set()
    added = {"408", "413", "500", "503", "504"}
    # abstract_eval answers plain JSON whatever Accept says: never 406.
    return added if path == "/abstract_eval" else added | {"406"}


def _without_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_docs(v) for k, v in node.items() if k not in OPENAPI_DOC_KEYS}
    if isinstance(node, list):
        return [_without_docs(v) for v in node]
    return node


# Routes we serve and upstream does not: what the planner derives (vectoradd's jvp, vjp and
# abstract_eval: the "derived-endpoints" intended difference).
OPENAPI_DERIVED = {
    "vectoradd": {"/jacobian_vector_product", "/vector_jacobian_product", "/abstract_eval"}
}


def _openapi_documents(pair: Pair) -> tuple[dict, dict]:
    up = requests.get(f"{pair.upstream_url}/openapi.json", timeout=30).json()
    ours = requests.get(f"{pair.ours_url}/openapi.json", timeout=30).json()
    return up, ours


def _openapi_diffs(name: str, up: dict, ours: dict) -> list[str]:
    """Where the documents differ, as `<location>: <how>` lines; asserts that the routes, the
    methods and the added responses are the expected ones."""
    diffs = []
    for key in ("openapi", "x-supported-output-formats", "x-supported-gpu-transports",
                "x-supported-compressions"):  # fmt: skip
        diffs += _json_diff(up.get(key), ours.get(key), key)
    for key in ("title", "version"):
        diffs += _json_diff(up["info"].get(key), ours["info"].get(key), f"info.{key}")
    derived = OPENAPI_DERIVED.get(name, set())
    assert set(up["paths"]) | derived == set(ours["paths"]), (sorted(up["paths"]), sorted(ours["paths"]))
    for path, ops in up["paths"].items():
        assert set(ops) == set(ours["paths"][path]), path
        for method, op in ops.items():
            our_op = ours["paths"][path][method]
            added = set(our_op["responses"]) - set(op["responses"])
            assert added == _added_responses(path), (method, path, sorted(added))
            where = f"{method.upper()} {path}"
            diffs += [
                f"{d} ({where})"
                for d in _json_diff(_without_docs(op), _without_docs(our_op), "operation")
            ]
    up_schemas, our_schemas = up["components"]["schemas"], ours["components"]["schemas"]
    for component in OPENAPI_COMPONENTS:
        if component not in up_schemas and (derived or component not in our_schemas):
            continue  # absent upstream, present here only for a derived route
        a, b = _without_cuda_ipc(up_schemas.get(component)), our_schemas.get(component)
        if component in OPENAPI_DOC_COMPONENTS:
            a, b = _without_docs(a), _without_docs(b)
        diffs += _json_diff(a, b, component)
    return diffs


@pytest.mark.parametrize("name", list(TWINS))
def test_openapi_matches_upstream(name, pairs):
    up, ours = _openapi_documents(pairs[name])
    diffs = _openapi_diffs(name, up, ours)
    unexpected = [d for d in diffs if d.split(":")[0] not in OPENAPI_INTENDED]
    assert not unexpected, "openapi.json differs from tesseract-core's:\n" + "\n".join(unexpected)
    # The same component names (clients may look any up), but the GPU transport's; derived
    # routes bring their own.
    up_schemas, our_schemas = up["components"]["schemas"], ours["components"]["schemas"]
    missing = set(up_schemas) - set(our_schemas) - {"CudaIpcArrayData"}
    assert not missing, sorted(missing)
    extra = set(our_schemas) - set(up_schemas)
    if name in OPENAPI_DERIVED:
        extra -= {
            "JVPInputSchema", "JVPOutputSchema", "Jvp_InputSchema", "VJPInputSchema",
            "VJPOutputSchema", "Vjp_InputSchema", "AbstractInputSchema", "AbstractOutputSchema",
            "AbstractEval_InputSchema", "AbstractEval_OutputSchema", "ShapeDType",
        }  # fmt: skip
    assert not extra, sorted(extra)


def test_every_openapi_intended_difference_is_exercised(pairs):
    # As for the corpus: a listed difference that no example's document shows any more fails.
    seen = set()
    for name in TWINS:
        seen |= {d.split(":")[0] for d in _openapi_diffs(name, *_openapi_documents(pairs[name]))}
    stale = set(OPENAPI_INTENDED) - seen
    assert not stale, f"listed in OPENAPI_INTENDED but the same as upstream now: {sorted(stale)}"
