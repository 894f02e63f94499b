//! tesseract-core's request bodies in, response JSON out: the one codec the CLI `run` command
//! and the HTTP server share.
//!
//! A request is validated completely before the guest runs (inputs, path sets, (co)tangent
//! keys and shapes). (Co)tangents may carry extra leading axes: that is a batch, served in one
//! call, and the response carries the same leading axes. The rule itself is
//! [`tesseract_wire::batch`]'s; this module decides what each (co)tangent is checked against.
//!
//! `P` is the primal's actual shape for tangents. For cotangents it is the output's declared
//! shape, or its actual shape (through abstract_eval) when the output has any rank.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use tesseract_model::path::{self, TemplateSegment};
use tesseract_model::schema::{Dim, FieldKind, Info, ShapeSpec};
use tesseract_model::{AbstractLeaf, AbstractTree, GuestError, Leaf, Tensor, Tree, Vectors};

use crate::codec::{self, Answer, Compression, DecodeOptions, OutputFormat};
use crate::planner::{Endpoint, Route};
use crate::runtime::Runtime;
use crate::sandbox::CallError;
use crate::schema::{self, Loc, ValidationError, ValidationErrors};
use tesseract_wire::batch::{self, Reference};
use tesseract_wire::contract::{Contract, Dtypes, Violation};

/// How arrays are read and written for one request, and how large a batch may be.
#[derive(Debug, Clone)]
pub struct CodecOptions {
    pub decode: DecodeOptions,
    pub format: Format,
    /// Most (co)tangents one request may carry (the product of its batch axes).
    pub max_batch: usize,
    /// Most bytes the (co)tangents of one request may take once broadcast; [`handle`] also
    /// caps it at the guest memory limit, since a batch must fit in one guest.
    pub max_vector_bytes: u64,
}

/// The default for [`CodecOptions::max_batch`].
pub const DEFAULT_MAX_BATCH: usize = 4096;

impl CodecOptions {
    fn batch_limits(&self) -> batch::Limits {
        batch::Limits {
            max_batch: self.max_batch,
            max_vector_bytes: self.max_vector_bytes,
        }
    }
}

impl Default for CodecOptions {
    fn default() -> CodecOptions {
        CodecOptions {
            decode: DecodeOptions::default(),
            format: Format::default(),
            max_batch: DEFAULT_MAX_BATCH,
            max_vector_bytes: u64::MAX,
        }
    }
}

/// The response encoding (tesseract-core's output format and compression).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub output: OutputFormat,
    pub compression: Compression,
}

impl Default for Format {
    fn default() -> Format {
        Format {
            output: OutputFormat::Json,
            compression: Compression::None,
        }
    }
}

/// A served request: the response body and the route that computed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Serializes straight from the result's tensors; derefs to the body as a [`Value`].
    pub body: Answer,
    pub route: Route,
    /// K, the number of (co)tangents of a batched jvp/vjp; `None` for anything else.
    pub batch_size: Option<usize>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The request is invalid (HTTP 422), with tesseract-core's error details.
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    /// The computation failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

impl From<ValidationErrors> for RequestError {
    fn from(e: ValidationErrors) -> RequestError {
        RequestError::Invalid(e)
    }
}

impl RequestError {
    /// The HTTP status tesseract-core clients expect for this error.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Invalid(_) => 422,
            RequestError::Call(e) => match e {
                CallError::Guest(GuestError {
                    kind: tesseract_model::ErrorKind::InvalidInput,
                    ..
                })
                | CallError::InvalidRequest(_) => 422,
                CallError::Unsupported(_) => 404,
                CallError::Busy => 503,
                CallError::Timeout { .. } => 504,
                _ => 500,
            },
        }
    }

    /// The JSON body: `{"detail":[...]}` for 422s, `{"detail":"..."}` otherwise.
    pub fn body(&self) -> Value {
        match self {
            RequestError::Invalid(e) => e.to_detail(),
            RequestError::Call(CallError::Guest(g))
                if g.kind == tesseract_model::ErrorKind::InvalidInput =>
            {
                ValidationErrors(vec![ValidationError::value_error(
                    loc(&["body", "inputs"]),
                    Value::Null,
                    &g.message,
                )])
                .to_detail()
            }
            RequestError::Call(CallError::InvalidRequest(msg)) => {
                ValidationErrors(vec![ValidationError::value_error(
                    loc(&["body"]),
                    Value::Null,
                    msg,
                )])
                .to_detail()
            }
            RequestError::Call(e) => json!({ "detail": e.to_string() }),
        }
    }
}

fn loc(parts: &[&str]) -> Vec<Loc> {
    parts.iter().map(|&p| Loc::from(p)).collect()
}

fn with(base: &[Loc], more: impl IntoIterator<Item = Loc>) -> Vec<Loc> {
    base.iter().cloned().chain(more).collect()
}

/// Parses an endpoint name as used in routes and the CLI.
pub fn endpoint_from_name(name: &str) -> Option<Endpoint> {
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

/// Splits a request body into its fields, enforcing `extra="forbid"` and required fields. All
/// problems are reported together, as pydantic does.
fn body_fields<'a, const N: usize>(
    body: &'a Value,
    names: [&str; N],
) -> Result<[&'a Value; N], ValidationErrors> {
    let Some(obj) = body.as_object() else {
        return Err(ValidationErrors(vec![ValidationError {
            kind: "model_attributes_type".into(),
            loc: loc(&["body"]),
            msg: "Input should be a valid dictionary or object to extract fields from".into(),
            input: body.clone(),
            ctx: None,
        }]));
    };
    let mut errors = Vec::new();
    for (key, value) in obj {
        if !names.contains(&key.as_str()) {
            errors.push(ValidationError::extra_forbidden(
                with(&loc(&["body"]), [Loc::Key(key.clone())]),
                value.clone(),
            ));
        }
    }
    let mut out = [&Value::Null; N];
    for (slot, name) in out.iter_mut().zip(names) {
        match obj.get(name) {
            Some(v) => *slot = v,
            None => errors.push(ValidationError::missing(
                with(&loc(&["body"]), [Loc::from(name)]),
                body.clone(),
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ValidationErrors(errors))
    }
}

/// Whether concrete `path` instantiates `template` (`items.[1]` instantiates `items.[]`).
fn instantiates(path: &str, template: &str) -> bool {
    path::parse(path).is_ok_and(|segments| path::template(&segments) == template)
}

fn differentiable_templates(fields: &[tesseract_model::schema::Field]) -> Vec<&str> {
    fields
        .iter()
        .filter(|f| f.is_differentiable())
        .map(|f| f.path.as_str())
        .collect()
}

/// A set of paths (`jvp_inputs`, ...): a non-empty list of unique strings, each a
/// differentiable path of the given side.
fn path_set(
    value: &Value,
    name: &str,
    allowed: &[&str],
    inputs: Option<&Tree>,
    decode: &DecodeOptions,
    errors: &mut Vec<ValidationError>,
) -> Vec<String> {
    let at = loc(&["body", name]);
    let Some(items) = value.as_array() else {
        errors.push(ValidationError {
            kind: "set_type".into(),
            loc: at,
            msg: "Input should be a valid set".into(),
            input: value.clone(),
            ctx: None,
        });
        return Vec::new();
    };
    if items.is_empty() {
        errors.push(ValidationError {
            kind: "too_short".into(),
            loc: at.clone(),
            msg: "Set should have at least 1 item after validation, not 0".into(),
            input: value.clone(),
            ctx: Some(json!({"field_type": "Set", "min_length": 1, "actual_length": 0})),
        });
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let here = with(&at, [Loc::Index(i)]);
        let Some(p) = item.as_str() else {
            // Upstream's set items are literals, so a non-string fails each literal.
            errors.extend(not_a_path(&here, item, &item.to_string(), name, allowed));
            continue;
        };
        if let Err(msg) = decode.check_path(p) {
            errors.push(ValidationError::value_error(here, Value::Null, &msg));
            continue;
        }
        // A set: a repeated path is the same path (upstream accepts it too).
        if !seen.insert(p) {
            continue;
        }
        if !allowed.iter().any(|t| instantiates(p, t)) {
            errors.extend(not_a_path(&here, item, p, name, allowed));
            continue;
        }
        if let Some(tree) = inputs
            && !tree.contains_key(p)
        {
            errors.push(ValidationError::value_error(
                here,
                item.clone(),
                &format!("Could not find {name} path {p} in inputs."),
            ));
            continue;
        }
        out.push(p.to_owned());
    }
    out
}

/// A set of strings as Python prints it (`{'x', 'y'}`), as upstream's messages quote them.
fn python_set(items: &BTreeSet<&str>) -> String {
    if items.is_empty() {
        return "set()".into();
    }
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("{{{}}}", quoted.join(", "))
}

/// Errors for a path that names no differentiable field, worded as upstream's pydantic model
/// words them: one `literal_error` per allowed literal path (loc ending in `literal['x']`), and
/// a `string_pattern_mismatch` per container template (`items.[]`), whose paths upstream
/// matches with a regex.
fn not_a_path(
    at: &[Loc],
    item: &Value,
    path: &str,
    name: &str,
    allowed: &[&str],
) -> Vec<ValidationError> {
    if allowed.is_empty() {
        let msg =
            format!("`{path}` is not a differentiable path: this Tesseract has none for {name}");
        return vec![ValidationError::value_error(
            at.to_vec(),
            item.clone(),
            &msg,
        )];
    }
    // pydantic names the union member in the loc, unless the union has only one.
    let member = |name: String| {
        if allowed.len() == 1 {
            at.to_vec()
        } else {
            with(at, [Loc::Key(name)])
        }
    };
    allowed
        .iter()
        .map(|t| {
            let is_literal = path::parse_template(t)
                .iter()
                .all(|s| matches!(s, TemplateSegment::Field(_)));
            if is_literal {
                ValidationError {
                    kind: "literal_error".into(),
                    loc: member(format!("literal['{t}']")),
                    msg: format!("Input should be '{t}'"),
                    input: item.clone(),
                    ctx: Some(json!({ "expected": format!("'{t}'") })),
                }
            } else {
                ValidationError {
                    kind: "string_pattern_mismatch".into(),
                    loc: member("constrained-str".into()),
                    msg: format!("String should match the path template '{t}'"),
                    input: item.clone(),
                    ctx: Some(json!({ "pattern": t })),
                }
            }
        })
        .collect()
}

/// The declared shape of a differentiable output path.
fn output_spec<'a>(info: &'a Info, concrete: &str) -> Option<&'a ShapeSpec> {
    let template = path::template(&path::parse(concrete).ok()?);
    match &info.output(&template)?.kind {
        FieldKind::Array(a) => Some(&a.shape),
        FieldKind::Plain { .. } => None,
    }
}

/// Validated (co)tangents: one map, and the batch shape (empty for a single vector).
struct Directions {
    vectors: Vectors,
    batch: Vec<usize>,
}

/// The key set a (co)tangent map must match: its field's name, its validated paths (`None`
/// when that field failed validation) and the differentiable templates keys may take.
struct KeySet<'a> {
    name: &'a str,
    paths: Option<&'a [String]>,
    allowed: &'a [&'a str],
}

/// An encoded array with complex data: an array to upstream's (co)tangent field type, which
/// only its cast to the (real) declared dtype then refuses.
fn complex_dtype(raw: &Value) -> Option<&str> {
    raw.get("dtype")
        .and_then(Value::as_str)
        .filter(|d| d.starts_with("complex"))
}

/// Validates a `tangent_vector` / `cotangent_vector` in upstream's two stages. First the field
/// type, `dict[path, Array[..., None]]`: each key a differentiable path (`literal_error`s at
/// `[name, key, "[key]", ...]`), each value an array of any shape and dtype (errors at
/// `[name, key]`). Then, only if that passed, the field validator: one `value_error` at
/// `[name]` for the first problem (key set, cast, shape or batch).
fn directions(
    value: &Value,
    name: &str,
    keys: KeySet<'_>,
    reference: impl Fn(&str) -> Option<(tesseract_model::DType, Reference)>,
    opts: &CodecOptions,
    errors: &mut Vec<ValidationError>,
) -> Option<Directions> {
    let at = loc(&["body", name]);
    let Some(obj) = value.as_object() else {
        errors.push(ValidationError {
            kind: "dict_type".into(),
            loc: at,
            msg: "Input should be a valid dictionary".into(),
            input: value.clone(),
            ctx: None,
        });
        return None;
    };
    let before = errors.len();
    let mut decoded: BTreeMap<&str, Tensor> = BTreeMap::new();
    for (key, raw) in obj {
        let here = with(&at, [Loc::Key(key.clone())]);
        if !keys.allowed.iter().any(|t| instantiates(key, t)) {
            let key_loc = with(&here, [Loc::from("[key]")]);
            let item = Value::String(key.clone());
            errors.extend(not_a_path(&key_loc, &item, key, keys.name, keys.allowed));
        }
        match codec::decode_array(raw, &opts.decode) {
            Ok(t) => {
                decoded.insert(key.as_str(), t);
            }
            Err(_) if complex_dtype(raw).is_some() => {}
            Err(e) => errors.push(ValidationError::from_array(here, raw.clone(), e)),
        }
    }
    if errors.len() > before {
        return None;
    }
    let label = name.replace('_', " ");
    let mut fail = |msg: String| {
        errors.push(ValidationError::value_error(
            at.clone(),
            value.clone(),
            &msg,
        ));
        None
    };
    let Some(paths) = keys.paths else {
        return fail(format!(
            "Unable to validate {label} as {} either missing or invalid",
            keys.name
        ));
    };
    let given: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    let wanted: BTreeSet<&str> = paths.iter().map(String::as_str).collect();
    if given != wanted {
        return fail(format!(
            "Expected {label} with keys conforming to {}: {}, got {}.",
            keys.name,
            python_set(&wanted),
            python_set(&given)
        ));
    }
    let mut fitted: Vec<(String, Tensor, Vec<usize>)> = Vec::new();
    for key in paths {
        let Some((dtype, shape)) = reference(key) else {
            continue;
        };
        let cast = match decoded.remove(key.as_str()) {
            Some(t) => codec::cast(t, dtype).map_err(|e| e.msg),
            None => Err(format!(
                "Array dtype '{}' cannot be safely cast to '{dtype}'",
                complex_dtype(&obj[key.as_str()]).unwrap_or("complex128")
            )),
        };
        let t = match cast {
            Ok(t) => t,
            Err(msg) => return fail(format!("{label} '{key}': {msg}")),
        };
        match batch::fit_vector(t, &shape, &opts.batch_limits(), &opts.decode) {
            Ok((t, b)) => fitted.push((key.clone(), t, b)),
            Err(msg) => return fail(format!("`{key}` {msg}")),
        }
    }
    match batch::assemble(name, fitted, &opts.batch_limits(), &opts.decode) {
        Ok((vectors, batch)) => Some(Directions { vectors, batch }),
        Err(more) => {
            let msg = more.into_iter().next().map_or_else(String::new, |e| e.msg);
            fail(msg)
        }
    }
}

/// Without an abstract_eval export, abstract_eval applies the component to zeros of the given
/// shapes, which the host allocates: a 108-byte body could otherwise ask for gigabytes. They
/// count against the request's array limits like decoded arrays.
fn charge_derived_zeros(
    runtime: &Runtime,
    tree: &AbstractTree,
    decode: &DecodeOptions,
) -> Result<(), CallError> {
    if runtime.route(Endpoint::AbstractEval) == Some(Route::Native) {
        return Ok(());
    }
    for (path, leaf) in tree {
        if let AbstractLeaf::Array(sd) = leaf {
            decode.charge_allocation(&sd.shape, sd.dtype).map_err(|e| {
                CallError::InvalidRequest(format!(
                    "this component has no abstract_eval export, so abstract_eval runs apply on zeros, and `{path}`: {}",
                    e.msg
                ))
            })?;
        }
    }
    Ok(())
}

/// Flattens a batch `B ++ rest` to `[K, *rest]`.
fn flatten_batch(v: Vectors, batch: &[usize]) -> Result<(Vectors, usize), CallError> {
    batch::flatten_batch(v, batch).map_err(|e| CallError::InvalidRequest(e.to_string()))
}

/// Restores a batch `[K, *rest]` to `B ++ rest`; a guest that answered with another K broke
/// its contract.
fn restore_batch(v: Vectors, batch: &[usize]) -> Result<Vectors, CallError> {
    batch::restore_batch(v, batch).map_err(|e| CallError::Contract(e.to_string()))
}

/// The (co)tangent results keyed by their paths as given (not unflattened), moved into the
/// answer.
fn vectors_json(v: Vectors, format: Format) -> Answer {
    let skeleton = Value::Object(v.keys().map(|p| (p.clone(), Value::Null)).collect());
    let mut answer = Answer::new(skeleton, format.output, format.compression);
    for (p, t) in v {
        answer.put(&[path::Segment::Key(p)], t);
    }
    answer
}

/// The declared contract results are held to on the HTTP path: dtypes are cast as upstream
/// re-validates outputs; anything else the schema does not allow is the component's fault.
fn contract(info: &Info) -> Contract<'_> {
    Contract::new(info, Dtypes::Cast)
}

fn broke(e: Violation) -> CallError {
    CallError::Contract(e.0)
}

/// Checks apply's outputs against the declared output schema and fits them to it.
fn conform_outputs(info: &Info, outputs: Tree) -> Result<Tree, CallError> {
    contract(info).apply(outputs).map_err(broke)
}

/// The result tree as nested JSON, its tensors moved into the answer at their places.
fn tree_json(tree: Tree, format: Format) -> Result<Answer, CallError> {
    let mut flat: BTreeMap<String, Value> = BTreeMap::new();
    let mut tensors = Vec::new();
    for (p, leaf) in tree {
        match leaf {
            Leaf::Tensor(t) => {
                flat.insert(p.clone(), Value::Null);
                tensors.push((p, t));
            }
            Leaf::Plain(plain) => {
                flat.insert(p, codec::plain_to_json(&plain));
            }
        }
    }
    let skeleton = codec::unflatten(&flat).map_err(|e| CallError::Contract(e.to_string()))?;
    let mut answer = Answer::new(skeleton, format.output, format.compression);
    for (p, t) in tensors {
        // `unflatten` has parsed every path already.
        let at = path::parse(&p).map_err(|e| CallError::Contract(e.to_string()))?;
        answer.put(&at, t);
    }
    Ok(answer)
}

/// Validates `body` for `endpoint` and serves it with `runtime`.
///
/// # Errors
/// [`RequestError::Invalid`] before any guest runs, or [`RequestError::Call`].
pub fn handle(
    runtime: &Runtime,
    endpoint: Endpoint,
    body: &Value,
    opts: &CodecOptions,
) -> Result<Response, RequestError> {
    let info = runtime.component().info();
    let guest_memory = runtime.component().limits().max_memory_bytes;
    let opts = &CodecOptions {
        max_vector_bytes: opts.max_vector_bytes.min(guest_memory),
        decode: opts.decode.for_request(),
        ..opts.clone()
    };
    let mut errors = Vec::new();
    let body_loc = loc(&["body", "inputs"]);
    match endpoint {
        Endpoint::Apply => {
            let [inputs] = body_fields(body, ["inputs"])?;
            let tree = schema::validate_inputs(info, inputs, &opts.decode, &body_loc)?;
            let served = runtime.apply(tree)?;
            let outputs = conform_outputs(info, served.value)?;
            Ok(Response {
                body: tree_json(outputs, opts.format)?,
                route: served.route,
                batch_size: None,
            })
        }
        Endpoint::AbstractEval => {
            let [inputs] = body_fields(body, ["inputs"])?;
            let tree = schema::validate_abstract_inputs(info, inputs, &body_loc)?;
            charge_derived_zeros(runtime, &tree, &opts.decode)?;
            let served = runtime.abstract_eval(&tree)?;
            contract(info).abstract_eval(&served.value).map_err(broke)?;
            let flat: BTreeMap<String, Value> = served
                .value
                .iter()
                .map(|(p, l)| (p.clone(), codec::abstract_leaf_to_json(l)))
                .collect();
            let body = codec::unflatten(&flat).map_err(|e| CallError::Contract(e.to_string()))?;
            Ok(Response {
                body: body.into(),
                route: served.route,
                batch_size: None,
            })
        }
        Endpoint::Jacobian => {
            let v = body_fields(body, ["inputs", "jac_inputs", "jac_outputs"])?;
            let tree = schema::validate_inputs(info, v[0], &opts.decode, &body_loc)?;
            let ins = path_set(
                v[1],
                "jac_inputs",
                &differentiable_templates(&info.inputs),
                Some(&tree),
                &opts.decode,
                &mut errors,
            );
            let outs = path_set(
                v[2],
                "jac_outputs",
                &differentiable_templates(&info.outputs),
                None,
                &opts.decode,
                &mut errors,
            );
            if !errors.is_empty() {
                return Err(ValidationErrors(errors).into());
            }
            let mut served = runtime.jacobian(&tree, &ins, &outs)?;
            served.value = contract(info)
                .jacobian(&tree, &ins, &outs, served.value)
                .map_err(broke)?;
            let mut nested: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
            for (o, i) in served.value.keys() {
                nested
                    .entry(o.clone())
                    .or_default()
                    .insert(i.clone(), Value::Null);
            }
            let skeleton = Value::Object(
                nested
                    .into_iter()
                    .map(|(o, m)| (o, Value::Object(m)))
                    .collect(),
            );
            let mut body = Answer::new(skeleton, opts.format.output, opts.format.compression);
            for ((o, i), t) in served.value {
                body.put(&[path::Segment::Key(o), path::Segment::Key(i)], t);
            }
            Ok(Response {
                body,
                route: served.route,
                batch_size: None,
            })
        }
        Endpoint::Jvp | Endpoint::BatchedJvp => {
            let v = body_fields(
                body,
                ["inputs", "jvp_inputs", "jvp_outputs", "tangent_vector"],
            )?;
            let tree = schema::validate_inputs(info, v[0], &opts.decode, &body_loc)?;
            let before = errors.len();
            let ins = path_set(
                v[1],
                "jvp_inputs",
                &differentiable_templates(&info.inputs),
                Some(&tree),
                &opts.decode,
                &mut errors,
            );
            let outs = path_set(
                v[2],
                "jvp_outputs",
                &differentiable_templates(&info.outputs),
                None,
                &opts.decode,
                &mut errors,
            );
            let reference = |key: &str| match tree.get(key) {
                Some(Leaf::Tensor(t)) => Some((t.dtype(), Reference::Actual(t.shape().to_vec()))),
                _ => None,
            };
            let ins_valid = !errors[before..]
                .iter()
                .any(|e| e.loc.get(1) == Some(&Loc::from("jvp_inputs")));
            let allowed = differentiable_templates(&info.inputs);
            let keys = KeySet {
                name: "jvp_inputs",
                paths: ins_valid.then_some(ins.as_slice()),
                allowed: &allowed,
            };
            let dirs = directions(v[3], "tangent_vector", keys, reference, opts, &mut errors);
            let dirs = match dirs {
                Some(d) if errors.is_empty() => d,
                _ => return Err(ValidationErrors(errors).into()),
            };
            let batch_size = (!dirs.batch.is_empty()).then(|| dirs.batch.iter().product());
            let (value, route) = if dirs.batch.is_empty() {
                let s = runtime.jvp(&tree, &ins, &outs, &dirs.vectors)?;
                (s.value, s.route)
            } else {
                let (flat, k) = flatten_batch(dirs.vectors, &dirs.batch)?;
                let s = runtime.batched_jvp(&tree, &ins, &outs, &flat, k)?;
                (restore_batch(s.value, &dirs.batch)?, s.route)
            };
            let value = contract(info)
                .jvp(&outs, &dirs.batch, value)
                .map_err(broke)?;
            Ok(Response {
                body: vectors_json(value, opts.format),
                route,
                batch_size,
            })
        }
        Endpoint::Vjp | Endpoint::BatchedVjp => {
            let v = body_fields(
                body,
                ["inputs", "vjp_inputs", "vjp_outputs", "cotangent_vector"],
            )?;
            let tree = schema::validate_inputs(info, v[0], &opts.decode, &body_loc)?;
            let ins = path_set(
                v[1],
                "vjp_inputs",
                &differentiable_templates(&info.inputs),
                Some(&tree),
                &opts.decode,
                &mut errors,
            );
            let before = errors.len();
            let outs = path_set(
                v[2],
                "vjp_outputs",
                &differentiable_templates(&info.outputs),
                None,
                &opts.decode,
                &mut errors,
            );
            let outs_valid = errors.len() == before;
            // Outputs of any rank or with a free dimension have no declared shape to check a
            // cotangent against (a wrong length would reach the guest, a size-1 dimension could
            // not broadcast): ask for their shapes, only for an otherwise valid request, since
            // that may run the guest.
            let needs_actual = errors.is_empty()
                && outs.iter().any(|o| match output_spec(info, o) {
                    Some(ShapeSpec::AnyRank) => true,
                    Some(ShapeSpec::Ranked(dims)) => dims.contains(&Dim::Any),
                    None => false,
                });
            // A native abstract_eval is cheap; otherwise apply on the real inputs tells the
            // shapes (apply on zeros could fail where the real inputs do not).
            let actual = match (needs_actual, runtime.route(Endpoint::AbstractEval)) {
                (false, _) => None,
                (true, Some(Route::Native)) => Some(
                    runtime
                        .abstract_eval(&crate::runtime::abstract_of(&tree))?
                        .value,
                ),
                (true, _) => Some(crate::runtime::abstract_of(
                    &runtime.apply(tree.clone())?.value,
                )),
            };
            let reference = |key: &str| {
                let template = path::template(&path::parse(key).ok()?);
                let FieldKind::Array(spec) = &info.output(&template)?.kind else {
                    return None;
                };
                if let Some(Some(tesseract_model::AbstractLeaf::Array(sd))) =
                    actual.as_ref().map(|a| a.get(key))
                {
                    return Some((spec.dtype, Reference::Actual(sd.shape.clone())));
                }
                Some((spec.dtype, Reference::Declared(spec.shape.clone())))
            };
            let allowed = differentiable_templates(&info.outputs);
            let keys = KeySet {
                name: "vjp_outputs",
                paths: outs_valid.then_some(outs.as_slice()),
                allowed: &allowed,
            };
            let dirs = directions(v[3], "cotangent_vector", keys, reference, opts, &mut errors);
            let dirs = match dirs {
                Some(d) if errors.is_empty() => d,
                _ => return Err(ValidationErrors(errors).into()),
            };
            let batch_size = (!dirs.batch.is_empty()).then(|| dirs.batch.iter().product());
            let (value, route) = if dirs.batch.is_empty() {
                let s = runtime.vjp(&tree, &ins, &outs, &dirs.vectors)?;
                (s.value, s.route)
            } else {
                let (flat, k) = flatten_batch(dirs.vectors, &dirs.batch)?;
                let s = runtime.batched_vjp(&tree, &ins, &outs, &flat, k)?;
                (restore_batch(s.value, &dirs.batch)?, s.route)
            };
            let value = contract(info)
                .vjp(&tree, &ins, &dirs.batch, value)
                .map_err(broke)?;
            Ok(Response {
                body: vectors_json(value, opts.format),
                route,
                batch_size,
            })
        }
    }
}
