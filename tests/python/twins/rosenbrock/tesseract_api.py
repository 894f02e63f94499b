"""NumPy twin of guest-example/rosenbrock, served by tesseract-core's `tesseract-runtime serve`.

`result = (a − x)² + b·(y − x²)²` in float64 with exact derivatives in x and y. Endpoints: what
the Rust component exports natively (apply, jacobian, jvp, vjp, abstract_eval).
"""

import numpy as np
from pydantic import BaseModel, Field

from tesseract_core.runtime import Differentiable, Float64, ShapeDType


class InputSchema(BaseModel):
    x: Differentiable[Float64] = Field(description="First coordinate.", default=0.0)
    y: Differentiable[Float64] = Field(description="Second coordinate.", default=0.0)
    a: Float64 = Field(
        description="Location of the minimum along x (the minimum is at (a, a²)).", default=1.0
    )
    b: Float64 = Field(description="Steepness of the curved valley.", default=100.0)


class OutputSchema(BaseModel):
    result: Differentiable[Float64] = Field(description="(a − x)² + b·(y − x²)²")


def _point(inputs: InputSchema) -> tuple[float, float, float, float]:
    return float(inputs.x), float(inputs.y), float(inputs.a), float(inputs.b)


def _partials(inputs: InputSchema) -> dict[str, float]:
    x, y, a, b = _point(inputs)
    inner = y - x * x
    return {"x": -2.0 * (a - x) - 4.0 * b * x * inner, "y": 2.0 * b * inner}


def apply(inputs: InputSchema) -> OutputSchema:
    x, y, a, b = _point(inputs)
    return OutputSchema(result=(a - x) ** 2 + b * (y - x * x) ** 2)


def jacobian(inputs: InputSchema, jac_inputs: set[str], jac_outputs: set[str]):
    p = _partials(inputs)
    return {out: {name: np.float64(p[name]) for name in jac_inputs} for out in jac_outputs}


def jacobian_vector_product(inputs, jvp_inputs, jvp_outputs, tangent_vector):
    p = _partials(inputs)
    dot = sum(p[name] * float(np.asarray(tangent_vector[name])) for name in jvp_inputs)
    return {out: np.float64(dot) for out in jvp_outputs}


def vector_jacobian_product(inputs, vjp_inputs, vjp_outputs, cotangent_vector):
    p = _partials(inputs)
    weight = sum(float(np.asarray(cotangent_vector[out])) for out in vjp_outputs)
    return {name: np.float64(weight * p[name]) for name in vjp_inputs}


def abstract_eval(abstract_inputs):
    return {"result": ShapeDType(shape=(), dtype="float64")}
