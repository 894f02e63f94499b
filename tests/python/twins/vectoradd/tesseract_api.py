"""NumPy twin of guest-example/vectoradd, served by tesseract-core's `tesseract-runtime serve`.

The same schema as the Rust example (and tesseract-core's own `examples/vectoradd`): float32
vectors `a`, `b`, scalar `s`, flag `normalize`; output `result = s·a + b` (optionally normalised)
widened to float64. Endpoints: what the Rust component exports natively, apply and jacobian.

The jacobian is upstream's example formula on purpose, including its `normalize=True` branch,
which is not the derivative of `apply` (reference §11). The side-by-side test
(tests/python/test_upstream.py) lists that as an intended difference and checks that
tesseract-wasm's answer is the true derivative. Without `normalize` both are exact.
"""

from typing import Self

import numpy as np
from pydantic import BaseModel, Field, model_validator

from tesseract_core.runtime import Array, Differentiable, Float32, Float64


class InputSchema(BaseModel):
    a: Differentiable[Array[(None,), Float32]] = Field(description="An arbitrary vector.")
    b: Differentiable[Array[(None,), Float32]] = Field(
        description="An arbitrary vector. Needs to have the same dimensions as a."
    )
    s: Differentiable[Float32] = Field(description="A scalar.", default=1.0)
    normalize: bool = Field(
        description="True if the output should be normalized, False otherwise.",
        default=False,
    )

    @model_validator(mode="after")
    def same_shape(self) -> Self:
        # Runs on abstract_eval's ShapeDType inputs too; both have `.shape`.
        if tuple(self.a.shape) != tuple(self.b.shape):
            raise ValueError(
                f"a and b must have the same shape. "
                f"Got {tuple(self.a.shape)} and {tuple(self.b.shape)} instead."
            )
        return self


class OutputSchema(BaseModel):
    result: Differentiable[Array[(None,), Float64]] = Field(description="Vector s·a + b")


def apply(inputs: InputSchema) -> OutputSchema:
    # float32 throughout, in NumPy's order, widened at the end: what the Rust example mirrors.
    r = inputs.a * np.float32(inputs.s) + inputs.b
    if inputs.normalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            r = r / np.sqrt(np.dot(r, r))
    return OutputSchema(result=r.astype(np.float64))


def jacobian(inputs: InputSchema, jac_inputs: set[str], jac_outputs: set[str]):
    a = np.asarray(inputs.a, np.float64)
    b = np.asarray(inputs.b, np.float64)
    s = float(inputs.s)
    n = a.size
    partials = {"a": np.eye(n) * s, "b": np.eye(n), "s": a.copy()}
    if inputs.normalize:
        # Upstream's examples/vectoradd formula (wrong unless s = 1 for ∂/∂a, always for ∂/∂s).
        r = a * s + b
        norm = np.sqrt(r @ r)
        partials["a"] = partials["a"] / norm - np.outer(r, a + s * b) / norm**3
        partials["b"] = partials["b"] / norm - np.outer(r, s * a + b) / norm**3
        partials["s"] = partials["s"] - (a + s * b) / norm**3 * (s * a * a + 2 * a * b)
    return {out: {name: partials[name] for name in jac_inputs} for out in jac_outputs}
