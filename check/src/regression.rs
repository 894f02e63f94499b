//! Regression cases: `{endpoint, payload, expected}` in tesseract-core's request and response
//! formats, with optional `rtol`/`atol` (NumPy's `allclose` rule, `|a − e| ≤ atol + rtol·|e|`).
//! Payloads are validated as the server validates requests; their inputs are also the base
//! points of the other checks.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use tesseract_model::schema::Info;
use tesseract_model::{DType, Leaf, Tree, Vectors};
use tesseract_wire::codec::{self, Compression, DecodeOptions, OutputFormat};
use tesseract_wire::schema::{self, Loc};

use crate::session::{Checked, Measured, Session, Stop};
use crate::subject::Endpoint;

/// The default `rtol`, NumPy's `assert_allclose`'s.
pub const DEFAULT_RTOL: f64 = 1e-7;

/// One regression case.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// `apply`, `jacobian`, `jacobian_vector_product`, `vector_jacobian_product` or
    /// `abstract_eval`.
    pub endpoint: String,
    /// The request body, as sent to that endpoint.
    pub payload: Value,
    /// The response body.
    #[serde(alias = "expected_outputs")]
    pub expected: Value,
    #[serde(default)]
    pub rtol: Option<f64>,
    #[serde(default)]
    pub atol: Option<f64>,
}

/// Why a cases file cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid regression cases: {0}")]
pub struct CasesError(pub String);

/// Reads cases from a JSON list of cases, one case, or `{"cases": [...]}`.
///
/// # Errors
/// When the JSON is none of those, or a case lacks a field.
pub fn parse_cases(json: &Value) -> Result<Vec<Case>, CasesError> {
    let list = match json {
        Value::Array(items) => items.clone(),
        Value::Object(m) if m.contains_key("cases") => match &m["cases"] {
            Value::Array(items) => items.clone(),
            _ => return Err(CasesError("`cases` must be a list".into())),
        },
        Value::Object(_) => vec![json.clone()],
        _ => return Err(CasesError("expected a list of cases".into())),
    };
    list.into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v).map_err(|e| CasesError(format!("case {}: {e}", i + 1)))
        })
        .collect()
}

fn endpoint_of(name: &str) -> Option<Endpoint> {
    [
        Endpoint::Apply,
        Endpoint::Jacobian,
        Endpoint::Jvp,
        Endpoint::Vjp,
        Endpoint::AbstractEval,
    ]
    .into_iter()
    .find(|e| e.name() == name)
}

fn field<'a>(payload: &'a Value, name: &str) -> Result<&'a Value, String> {
    payload
        .get(name)
        .ok_or_else(|| format!("the payload has no `{name}`"))
}

fn inputs_of(info: &Info, payload: &Value) -> Result<Tree, String> {
    let loc = [Loc::from("payload"), Loc::from("inputs")];
    schema::validate_inputs(
        info,
        field(payload, "inputs")?,
        &DecodeOptions::default(),
        &loc,
    )
    .map_err(|e| {
        e.0.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// The case's concrete inputs, if its payload has valid ones (abstract_eval's do not count).
pub fn base_point(info: &Info, case: &Case) -> Option<Tree> {
    match endpoint_of(&case.endpoint)? {
        Endpoint::AbstractEval => None,
        _ => inputs_of(info, &case.payload).ok(),
    }
}

fn strings(payload: &Value, name: &str) -> Result<Vec<String>, String> {
    field(payload, name)?
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .ok_or_else(|| format!("`{name}` must be a list of paths"))
}

/// (Co)tangents from `payload[name]`, each cast to `dtype_of(path)`.
fn vectors(
    payload: &Value,
    name: &str,
    dtype_of: impl Fn(&str) -> Option<DType>,
) -> Result<Vectors, String> {
    let Some(map) = field(payload, name)?.as_object() else {
        return Err(format!("`{name}` must be an object of arrays"));
    };
    map.iter()
        .map(|(p, v)| {
            let dtype = dtype_of(p).ok_or_else(|| {
                format!("`{name}` names `{p}`, which is not a differentiable array")
            })?;
            let t = schema::decode_as(v, dtype, &DecodeOptions::default())
                .map_err(|e| format!("`{name}.{p}`: {}", e.msg))?;
            Ok((p.clone(), t))
        })
        .collect()
}

fn tree_json(tree: &Tree) -> Result<Value, String> {
    let flat: BTreeMap<String, Value> = tree
        .iter()
        .map(|(p, l)| {
            (
                p.clone(),
                codec::leaf_to_json(l, OutputFormat::Json, Compression::None),
            )
        })
        .collect();
    codec::unflatten(&flat).map_err(|e| e.to_string())
}

fn vectors_json(v: &Vectors) -> Value {
    Value::Object(
        v.iter()
            .map(|(p, t)| {
                (
                    p.clone(),
                    codec::encode_array(t, OutputFormat::Json, Compression::None),
                )
            })
            .collect(),
    )
}

/// Runs the case's request and renders the response as the server would (plain JSON arrays).
fn respond(s: &mut Session, endpoint: Endpoint, payload: &Value) -> Result<Value, Stop> {
    let info = s.info();
    let bad = |e: String| Stop::Fail(format!("invalid payload: {e}"));
    if endpoint == Endpoint::AbstractEval {
        let tree =
            schema::validate_abstract_inputs(info, field(payload, "inputs").map_err(bad)?, &[])
                .map_err(|e| {
                    bad(e
                        .0
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "))
                })?;
        let out = s.abstract_eval(&tree)?;
        let flat: BTreeMap<String, Value> = out
            .iter()
            .map(|(p, l)| (p.clone(), codec::abstract_leaf_to_json(l)))
            .collect();
        return codec::unflatten(&flat).map_err(|e| Stop::Fail(e.to_string()));
    }
    let inputs = inputs_of(info, payload).map_err(bad)?;
    let input_dtype = |p: &str| match inputs.get(p) {
        Some(Leaf::Tensor(t)) => Some(t.dtype()),
        _ => None,
    };
    let output_dtype = |p: &str| {
        let template = tesseract_model::path::template(&tesseract_model::path::parse(p).ok()?);
        Some(info.output(&template)?.array()?.dtype)
    };
    match endpoint {
        Endpoint::Apply => tree_json(&s.apply(&inputs)?).map_err(Stop::Fail),
        Endpoint::Jacobian => {
            let ins = strings(payload, "jac_inputs").map_err(bad)?;
            let outs = strings(payload, "jac_outputs").map_err(bad)?;
            let blocks = s.jacobian(&inputs, &ins, &outs)?;
            let mut nested: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
            for ((o, i), t) in &blocks {
                nested.entry(o.clone()).or_default().insert(
                    i.clone(),
                    codec::encode_array(t, OutputFormat::Json, Compression::None),
                );
            }
            Ok(Value::Object(
                nested
                    .into_iter()
                    .map(|(o, m)| (o, Value::Object(m)))
                    .collect(),
            ))
        }
        Endpoint::Jvp => {
            let ins = strings(payload, "jvp_inputs").map_err(bad)?;
            let outs = strings(payload, "jvp_outputs").map_err(bad)?;
            let t = vectors(payload, "tangent_vector", input_dtype).map_err(bad)?;
            Ok(vectors_json(&s.jvp(&inputs, &ins, &outs, &t)?))
        }
        Endpoint::Vjp => {
            let ins = strings(payload, "vjp_inputs").map_err(bad)?;
            let outs = strings(payload, "vjp_outputs").map_err(bad)?;
            let c = vectors(payload, "cotangent_vector", output_dtype).map_err(bad)?;
            Ok(vectors_json(&s.vjp(&inputs, &ins, &outs, &c)?))
        }
        _ => Err(Stop::Fail(format!(
            "`{}` is not a tesseract-core endpoint",
            endpoint.name()
        ))),
    }
}

struct Tolerance {
    rtol: f64,
    atol: f64,
}

fn is_encoded(v: &Value) -> bool {
    v.get("object_type").and_then(Value::as_str) == Some("array")
}

/// Compares `actual` with `expected`; returns the worst relative deviation seen.
fn compare(
    actual: &Value,
    expected: &Value,
    at: &str,
    tol: &Tolerance,
    worst: &mut f64,
) -> Result<(), String> {
    let here = |k: &str| {
        if at.is_empty() {
            k.to_owned()
        } else {
            format!("{at}.{k}")
        }
    };
    if is_encoded(actual) {
        let opts = DecodeOptions::default();
        let a = codec::decode_array(actual, &opts).map_err(|e| format!("`{at}`: {}", e.msg))?;
        let e = codec::decode_array(expected, &opts)
            .map_err(|e| format!("`{at}`: expected value: {}", e.msg))?;
        if a.shape() != e.shape() {
            return Err(format!(
                "`{at}` has shape {}, expected {}",
                codec::py_shape(a.shape()),
                codec::py_shape(e.shape())
            ));
        }
        for (i, (x, y)) in a.data().to_f64().iter().zip(e.data().to_f64()).enumerate() {
            number(*x, y, &format!("{at}[{i}]"), tol, worst)?;
        }
        return Ok(());
    }
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            if a.keys().ne(e.keys())
                && a.keys().collect::<std::collections::BTreeSet<_>>() != e.keys().collect()
            {
                let keys =
                    |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<_>>().join(", ");
                return Err(format!(
                    "`{at}` has keys [{}], expected [{}]",
                    keys(a),
                    keys(e)
                ));
            }
            a.iter()
                .try_for_each(|(k, v)| compare(v, &e[k], &here(k), tol, worst))
        }
        (Value::Array(a), Value::Array(e)) if a.len() == e.len() => a
            .iter()
            .zip(e)
            .enumerate()
            .try_for_each(|(i, (x, y))| compare(x, y, &here(&format!("[{i}]")), tol, worst)),
        (Value::Number(a), Value::Number(e)) => number(
            a.as_f64().unwrap_or(f64::NAN),
            e.as_f64().unwrap_or(f64::NAN),
            at,
            tol,
            worst,
        ),
        (a, e) if a == e => Ok(()),
        (a, e) => Err(format!("`{at}` is {a}, expected {e}")),
    }
}

fn number(a: f64, e: f64, at: &str, tol: &Tolerance, worst: &mut f64) -> Result<(), String> {
    if a == e || (a.is_nan() && e.is_nan()) {
        return Ok(());
    }
    let deviation = (a - e).abs();
    *worst = worst.max(if e == 0.0 {
        deviation
    } else {
        deviation / e.abs()
    });
    if deviation <= tol.atol + tol.rtol * e.abs() {
        Ok(())
    } else {
        Err(format!(
            "`{at}` is {a}, expected {e} (rtol {:.1e}, atol {:.1e})",
            tol.rtol, tol.atol
        ))
    }
}

/// One case: the response against the expected one. The error is the worst relative
/// deviation; the tolerance, `rtol`.
pub fn run_case(s: &mut Session, case: &Case) -> (Option<Endpoint>, Checked) {
    let Some(endpoint) = endpoint_of(&case.endpoint) else {
        return (
            None,
            Err(Stop::Fail(format!("unknown endpoint `{}`", case.endpoint))),
        );
    };
    let tol = Tolerance {
        rtol: case.rtol.unwrap_or(DEFAULT_RTOL),
        atol: case.atol.unwrap_or(0.0),
    };
    let result = respond(s, endpoint, &case.payload).and_then(|actual| {
        let mut worst = 0.0;
        match compare(&actual, &case.expected, "", &tol, &mut worst) {
            // Deviations `atol` covers can exceed `rtol`; they passed all the same.
            Ok(()) if worst > tol.rtol => Ok(Measured {
                error: Some(worst),
                tolerance: None,
                detail: format!("within atol {:.1e}", tol.atol),
            }),
            Ok(()) => Ok(Measured::within(worst, tol.rtol)),
            Err(e) => Err(Stop::Fail(e)),
        }
    });
    (Some(endpoint), result)
}
