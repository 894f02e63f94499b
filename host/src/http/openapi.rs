//! `/openapi.json`: tesseract-core's OpenAPI 3.1 document, generated from the component's
//! metadata ([`Info`]) and the routes this server serves.
//!
//! Clients read some of it by name, so those parts follow upstream exactly (reference §1.7,
//! §4.2): `paths` (the Python client derives its endpoint list from the keys), the top-level
//! `x-supported-*` keys, `Apply_InputSchema` / `Apply_OutputSchema` (array fields inlined as
//! `EncodedArrayModel__…` objects with `array_flags` and `object_type.const == "array"`, nested
//! models as `$ref`s to `Apply_<Name>`), and `ApplyInputSchema` / `ApplyOutputSchema` with
//! `differentiable_arrays` and `field_order` (tesseract-jax). The rest is descriptive.
//!
//! Beyond upstream, each computational operation lists every error status it can answer, with
//! its body (`responses`), and 200 lists each media type `Accept` can select.
//!
//! Nested model names are derived from paths (`vector_add` → `Apply_VectorAdd`), since the
//! metadata has no class names.

use serde_json::{Map, Value, json};
use tesseract_model::DType;
use tesseract_model::path::{TemplateSegment, parse_template};
use tesseract_model::schema::{ArraySpec, Dim, Field, FieldKind, Info, ShapeSpec};

use crate::codec::{NUMPY_DTYPES, can_cast_same_kind};
use crate::planner::{Endpoint, Route};

mod responses;

/// What the document describes besides the component: the served routes and the server's
/// options.
#[derive(Debug, Clone)]
pub struct Served<'a> {
    /// Each endpoint served, with the route that serves it.
    pub endpoints: &'a [(Endpoint, Route)],
    /// `x-supported-output-formats`.
    pub formats: &'a [&'a str],
    /// Largest number of (co)tangents in one batched request.
    pub max_batch: usize,
}

const SCHEMAS: &str = "#/components/schemas/";

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{SCHEMAS}{name}") })
}

/// A declared tree of fields: leaves, models (ordered), lists and dicts.
enum Node<'a> {
    Leaf(&'a Field),
    Model(Vec<(String, Node<'a>)>),
    List(Box<Node<'a>>),
    Dict(Box<Node<'a>>),
}

fn fresh<'a>(segments: &[TemplateSegment], field: &'a Field) -> Node<'a> {
    match segments.split_first() {
        None => Node::Leaf(field),
        Some((TemplateSegment::Field(name), rest)) => {
            Node::Model(vec![(name.clone(), fresh(rest, field))])
        }
        Some((TemplateSegment::AnyIndex, rest)) => Node::List(Box::new(fresh(rest, field))),
        Some((TemplateSegment::AnyKey, rest)) => Node::Dict(Box::new(fresh(rest, field))),
    }
}

/// Adds `field` at `segments`. Declarations that contradict an earlier one (a leaf and a
/// model at the same path) are skipped: the first one wins.
fn insert<'a>(node: &mut Node<'a>, segments: &[TemplateSegment], field: &'a Field) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    match (node, first) {
        (Node::Model(children), TemplateSegment::Field(name)) => {
            match children.iter_mut().find(|(n, _)| n == name) {
                Some((_, child)) => insert(child, rest, field),
                None => children.push((name.clone(), fresh(rest, field))),
            }
        }
        (Node::List(inner), TemplateSegment::AnyIndex)
        | (Node::Dict(inner), TemplateSegment::AnyKey) => insert(inner, rest, field),
        _ => {}
    }
}

fn tree(fields: &[Field]) -> Node<'_> {
    let mut root = Node::Model(Vec::new());
    for f in fields {
        insert(&mut root, &parse_template(&f.path), f);
    }
    root
}

fn required(node: &Node<'_>) -> bool {
    match node {
        Node::Leaf(f) => f.default.is_none(),
        Node::Model(children) => children.iter().any(|(_, c)| required(c)),
        Node::List(_) | Node::Dict(_) => true,
    }
}

fn join(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.to_owned()
    } else {
        format!("{path}.{segment}")
    }
}

/// `vector_add.[]` → `VectorAdd`.
fn pascal(path: &str) -> String {
    path.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or(String::new(), |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// pydantic's default title for a field name: `vector_add` → `Vector Add`.
fn title(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or(String::new(), |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn default_value(field: &Field) -> Option<Value> {
    field
        .default
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
}

fn shape_tag(shape: &ShapeSpec) -> String {
    match shape {
        ShapeSpec::AnyRank => "anyrank".into(),
        ShapeSpec::Ranked(dims) if dims.is_empty() => "scalar".into(),
        ShapeSpec::Ranked(dims) => dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => n.to_string(),
                Dim::Any => "any".into(),
            })
            .collect::<Vec<_>>()
            .join("_"),
    }
}

fn shape_schema(shape: &ShapeSpec) -> Value {
    let mut s = match shape {
        ShapeSpec::AnyRank => json!({ "items": { "type": "integer" }, "type": "array" }),
        ShapeSpec::Ranked(dims) if dims.is_empty() => {
            json!({ "type": "array", "maxItems": 0, "minItems": 0 })
        }
        ShapeSpec::Ranked(dims) => {
            let items: Vec<Value> = dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(1) => json!({ "type": "integer", "const": 1 }),
                    Dim::Fixed(n) => json!({ "type": "integer", "enum": [1, n] }),
                    Dim::Any => json!({ "type": "integer", "minimum": 0.0 }),
                })
                .collect();
            json!({
                "type": "array", "prefixItems": items,
                "maxItems": dims.len(), "minItems": dims.len(),
            })
        }
    };
    let example: Value = match shape {
        ShapeSpec::AnyRank => json!([]),
        ShapeSpec::Ranked(dims) => dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => json!(n),
                Dim::Any => json!(1),
            })
            .collect(),
    };
    if let Some(obj) = s.as_object_mut() {
        obj.insert("title".into(), json!("Shape"));
        obj.insert("description".into(), json!("Shape of the array"));
        obj.insert("examples".into(), json!([example]));
    }
    s
}

/// The wire dtypes that cast to `to` under numpy's same-kind rule, as upstream's enum lists.
fn castable(to: DType) -> Vec<&'static str> {
    NUMPY_DTYPES
        .into_iter()
        .filter(|from| can_cast_same_kind(from, to) == Some(true))
        .collect()
}

fn data_schema() -> Value {
    json!({
        "oneOf": [
            schema_ref("BinrefArrayData"),
            schema_ref("Base64ArrayData"),
            schema_ref("JsonArrayData"),
        ],
        "title": "Data",
        "discriminator": {
            "propertyName": "encoding",
            "mapping": {
                "base64": format!("{SCHEMAS}Base64ArrayData"),
                "binref": format!("{SCHEMAS}BinrefArrayData"),
                "json": format!("{SCHEMAS}JsonArrayData"),
            }
        }
    })
}

const OBJECT_TYPE_DESCRIPTION: &str = "Indicates that this dict can be parsed to an array.";

/// An array field inlined as upstream's `EncodedArrayModel__<shape>__<dtype>__<flags>`.
fn encoded_array(field: &Field, spec: &ArraySpec) -> Value {
    let flags: Vec<&str> = if spec.differentiable {
        vec!["DIFFERENTIABLE"]
    } else {
        Vec::new()
    };
    let mut s = Map::new();
    s.insert(
        "properties".into(),
        json!({
            "object_type": {
                "type": "string", "const": "array", "title": "Object Type",
                "description": OBJECT_TYPE_DESCRIPTION, "default": "array",
            },
            "shape": shape_schema(&spec.shape),
            "dtype": {
                "type": "string", "enum": castable(spec.dtype), "title": "Dtype",
                "description": "Data type of the array", "examples": [spec.dtype.name()],
            },
            "data": data_schema(),
        }),
    );
    s.insert("additionalProperties".into(), json!(false));
    s.insert("type".into(), json!("object"));
    s.insert("required".into(), json!(["shape", "dtype", "data"]));
    s.insert(
        "title".into(),
        json!(format!(
            "EncodedArrayModel__{}__{}__{}",
            shape_tag(&spec.shape),
            spec.dtype.name(),
            flags.first().copied().unwrap_or("noflags")
        )),
    );
    if !field.description.is_empty() {
        s.insert("description".into(), json!(field.description));
    }
    if let Some(d) = default_value(field) {
        s.insert("default".into(), d);
    }
    s.insert("array_flags".into(), json!(flags));
    Value::Object(s)
}

/// A plain field: its own JSON Schema plus title, description and default.
fn plain(field: &Field, json_schema: &str) -> Value {
    let mut s = match serde_json::from_str::<Value>(json_schema) {
        Ok(Value::Object(obj)) => obj,
        _ => Map::new(),
    };
    let name = field.path.rsplit('.').next().unwrap_or(&field.path);
    s.entry("title").or_insert_with(|| json!(title(name)));
    if !field.description.is_empty() {
        s.insert("description".into(), json!(field.description));
    }
    if let Some(d) = default_value(field) {
        s.insert("default".into(), d);
    }
    Value::Object(s)
}

/// numpy's shape of a JSON value: nested list lengths, first element at each depth.
fn json_shape(value: &Value) -> Vec<usize> {
    let mut shape = Vec::new();
    let mut probe = value;
    while let Value::Array(items) = probe {
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    shape
}

fn apply_leaf(field: &Field) -> Value {
    match &field.kind {
        FieldKind::Array(spec) => encoded_array(field, spec),
        FieldKind::Plain { json_schema } => plain(field, json_schema),
    }
}

fn abstract_leaf(field: &Field) -> Value {
    match &field.kind {
        FieldKind::Array(spec) => {
            let mut s = schema_ref("ShapeDType");
            if let Some(obj) = s.as_object_mut() {
                if !field.description.is_empty() {
                    obj.insert("description".into(), json!(field.description));
                }
                // As upstream: an array default becomes the ShapeDType of that default.
                if let Some(default) = default_value(field) {
                    let shape = json_shape(&default);
                    obj.insert(
                        "default".into(),
                        json!({ "shape": shape, "dtype": spec.dtype.name() }),
                    );
                }
            }
            s
        }
        FieldKind::Plain { json_schema } => plain(field, json_schema),
    }
}

/// Writes a tree as JSON Schema: models become components named `<prefix>_<Name>`.
struct Emitter<'s> {
    prefix: &'static str,
    leaf: fn(&Field) -> Value,
    components: &'s mut Map<String, Value>,
    field_order: Map<String, Value>,
}

impl Emitter<'_> {
    fn model(&mut self, children: &[(String, Node<'_>)], path: &str, name: &str) -> Value {
        let mut properties = Map::new();
        for (field, child) in children {
            let schema = self.node(child, &join(path, field));
            properties.insert(field.clone(), schema);
        }
        let required: Vec<&str> = children
            .iter()
            .filter(|(_, c)| required(c))
            .map(|(n, _)| n.as_str())
            .collect();
        self.field_order.insert(
            path.to_owned(),
            json!(children.iter().map(|(n, _)| n).collect::<Vec<_>>()),
        );
        let mut s = Map::new();
        s.insert("properties".into(), Value::Object(properties));
        s.insert("additionalProperties".into(), json!(false));
        s.insert("type".into(), json!("object"));
        if !required.is_empty() {
            s.insert("required".into(), json!(required));
        }
        s.insert("title".into(), json!(name));
        Value::Object(s)
    }

    fn node(&mut self, node: &Node<'_>, path: &str) -> Value {
        match node {
            Node::Leaf(f) => (self.leaf)(f),
            Node::Model(children) => {
                let base = format!("{}_{}", self.prefix, pascal(path));
                let mut name = base.clone();
                let mut n = 2;
                while self.components.contains_key(&name) {
                    name = format!("{base}{n}");
                    n += 1;
                }
                // Reserve the name before recursing, so a nested model cannot take it.
                self.components.insert(name.clone(), Value::Null);
                let schema = self.model(children, path, &name);
                self.components.insert(name.clone(), schema);
                schema_ref(&name)
            }
            Node::List(inner) => {
                json!({ "type": "array", "items": self.node(inner, &join(path, "[]")) })
            }
            Node::Dict(inner) => {
                json!({ "type": "object", "additionalProperties": self.node(inner, &join(path, "{}")) })
            }
        }
    }
}

/// Emits the root model of `fields` as `<prefix>_<root>` plus its nested models, and returns
/// the `field_order` map.
fn emit_root(
    components: &mut Map<String, Value>,
    prefix: &'static str,
    root: &str,
    fields: &[Field],
    leaf: fn(&Field) -> Value,
) -> Value {
    let name = format!("{prefix}_{root}");
    // Claim the root's name first: a nested model called `input_schema` must not take it.
    components.insert(name.clone(), Value::Null);
    let mut emitter = Emitter {
        prefix,
        leaf,
        components,
        field_order: Map::new(),
    };
    let schema = match tree(fields) {
        Node::Model(children) => emitter.model(&children, "", &name),
        _ => json!({ "type": "object", "title": name }),
    };
    let order = Value::Object(std::mem::take(&mut emitter.field_order));
    components.insert(name, schema);
    order
}

/// `differentiable_arrays`: path template → `{dtype, shape}`, no `shape` for any rank.
fn differentiable_arrays(fields: &[Field]) -> Value {
    let mut out = Map::new();
    for f in fields {
        let Some(spec) = f.array().filter(|a| a.differentiable) else {
            continue;
        };
        let mut entry = Map::new();
        entry.insert("dtype".into(), json!(spec.dtype.name()));
        if let ShapeSpec::Ranked(dims) = &spec.shape {
            let dims: Vec<Value> = dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => json!(n),
                    Dim::Any => Value::Null,
                })
                .collect();
            entry.insert("shape".into(), Value::Array(dims));
        }
        out.insert(f.path.clone(), Value::Object(entry));
    }
    Value::Object(out)
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One allowed path: a `const` for a plain template, a pattern when it has `[]` or `{}`.
fn path_schema(template: &str) -> Value {
    let segments = parse_template(template);
    if segments
        .iter()
        .all(|s| matches!(s, TemplateSegment::Field(_)))
    {
        return json!({ "type": "string", "const": template });
    }
    let parts: Vec<String> = segments
        .iter()
        .map(|s| match s {
            TemplateSegment::Field(name) => regex_escape(name),
            TemplateSegment::AnyIndex => r"\[\d+\]".to_owned(),
            TemplateSegment::AnyKey => r"\{(?:[^{}\\]|\\.)+\}".to_owned(),
        })
        .collect();
    json!({ "type": "string", "pattern": format!("^{}$", parts.join(r"\.")) })
}

fn path_set(fields: &[Field], name: &str) -> Value {
    let mut options: Vec<Value> = fields
        .iter()
        .filter(|f| f.is_differentiable())
        .map(|f| path_schema(&f.path))
        .collect();
    // As pydantic: a union of one member is that member.
    let items = match options.len() {
        1 => options.remove(0),
        _ => json!({ "anyOf": options }),
    };
    json!({
        "type": "array", "items": items, "uniqueItems": true, "minItems": 1,
        "title": title(name),
    })
}

/// Upstream's `Array[..., None]`, inlined where (co)tangents and derivatives appear: any shape,
/// any dtype.
fn any_array() -> Value {
    json!({
        "properties": {
            "object_type": { "type": "string", "const": "array", "title": "Object Type", "description": OBJECT_TYPE_DESCRIPTION, "default": "array" },
            "shape": { "items": { "type": "integer" }, "type": "array", "title": "Shape", "description": "Shape of the array" },
            "dtype": { "type": "string", "enum": NUMPY_DTYPES, "title": "Dtype", "description": "Data type of the array", "examples": ["float64"] },
            "data": data_schema(),
        },
        "additionalProperties": false, "type": "object", "required": ["shape", "dtype", "data"],
        "array_flags": [],
    })
}

/// `propertyNames` of a map keyed by differentiable paths, which pydantic writes only when
/// there is a single plain path.
fn key_names(fields: &[Field]) -> Option<Value> {
    let mut paths = fields
        .iter()
        .filter(|f| f.is_differentiable())
        .map(|f| &f.path);
    match (paths.next(), paths.next()) {
        (Some(only), None)
            if parse_template(only)
                .iter()
                .all(|s| matches!(s, TemplateSegment::Field(_))) =>
        {
            Some(json!({ "const": only }))
        }
        _ => None,
    }
}

/// A map from differentiable paths (of `keys`) to arrays of any shape and dtype.
fn path_map(keys: &[Field], extra: Value) -> Value {
    let mut map = Map::new();
    map.insert("additionalProperties".into(), any_array());
    if let Some(names) = key_names(keys) {
        map.insert("propertyNames".into(), names);
    }
    map.insert("type".into(), json!("object"));
    if let Value::Object(extra) = extra {
        map.extend(extra);
    }
    Value::Object(map)
}

fn vectors(keys: &[Field], name: &str, description: &str) -> Value {
    path_map(
        keys,
        json!({ "title": title(name), "description": description }),
    )
}

fn request_schema(title: &str, properties: Value) -> Value {
    let required: Vec<String> = properties
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    json!({
        "properties": properties, "additionalProperties": false, "type": "object",
        "required": required, "title": title,
    })
}

fn inputs_property() -> Value {
    json!({ "$ref": format!("{SCHEMAS}Apply_InputSchema"), "description": "The input data to apply the Tesseract to." })
}

/// `inputs` of a gradient request: upstream's per-route copy of the input schema
/// (`Jacobian_InputSchema`, `Jvp_InputSchema`, `Vjp_InputSchema`), emitted here.
fn route_inputs(
    components: &mut Map<String, Value>,
    prefix: &'static str,
    info: &Info,
    description: &str,
) -> Value {
    emit_root(components, prefix, "InputSchema", &info.inputs, apply_leaf);
    json!({ "$ref": format!("{SCHEMAS}{prefix}_InputSchema"), "description": description })
}

/// The schemas every document carries: array payloads and FastAPI's error models.
fn shared_schemas(components: &mut Map<String, Value>) {
    components.insert(
        "JsonArrayData".into(),
        json!({
            "properties": {
                "buffer": schema_ref("JsonValue"),
                "encoding": { "type": "string", "const": "json", "title": "Encoding" },
                "compression": { "type": "null", "title": "Compression" },
            },
            "additionalProperties": false, "type": "object", "required": ["buffer", "encoding"],
            "title": "JsonArrayData",
        }),
    );
    // Any JSON: nested lists, a number or a bool in practice.
    components.insert("JsonValue".into(), json!({}));
    components.insert(
        "Base64ArrayData".into(),
        json!({
            "properties": {
                "buffer": { "type": "string", "title": "Buffer", "description": "Little-endian C-order bytes, standard base64 with padding." },
                "encoding": { "type": "string", "const": "base64", "title": "Encoding" },
                "compression": { "anyOf": [ { "type": "string", "const": "lz4" }, { "type": "null" } ], "title": "Compression", "description": "lz4: the bytes are an lz4 frame." },
            },
            "additionalProperties": false, "type": "object", "required": ["buffer", "encoding"],
            "title": "Base64ArrayData",
        }),
    );
    components.insert(
        "BinrefArrayData".into(),
        json!({
            "properties": {
                "buffer": { "type": "string", "pattern": "^.+?(\\:\\d+(\\:\\d+)?)?$", "title": "Buffer", "description": "<path>[:<offset>[:<compressed size>]], relative to the server's input or output path." },
                "encoding": { "type": "string", "const": "binref", "title": "Encoding" },
                "compression": { "anyOf": [ { "type": "string", "const": "lz4" }, { "type": "null" } ], "title": "Compression" },
            },
            "additionalProperties": false, "type": "object", "required": ["buffer", "encoding"],
            "title": "BinrefArrayData",
        }),
    );
    components.insert(
        "ShapeDType".into(),
        json!({
            "properties": {
                "shape": { "type": "array", "items": { "type": "integer", "minimum": 0 }, "title": "Shape" },
                "dtype": { "type": "string", "enum": NUMPY_DTYPES, "title": "Dtype" },
            },
            "type": "object", "required": ["shape", "dtype"], "title": "ShapeDType",
        }),
    );
    components.insert(
        "ValidationError".into(),
        json!({
            "properties": {
                "loc": { "items": { "anyOf": [ { "type": "string" }, { "type": "integer" } ] }, "type": "array", "title": "Location" },
                "msg": { "type": "string", "title": "Message" },
                "type": { "type": "string", "title": "Error Type" },
                "input": { "title": "Input" },
                "ctx": { "type": "object", "title": "Context" },
            },
            "type": "object", "required": ["loc", "msg", "type"], "title": "ValidationError",
        }),
    );
    components.insert(
        "HTTPValidationError".into(),
        json!({
            "properties": { "detail": { "items": schema_ref("ValidationError"), "type": "array", "title": "Detail" } },
            "type": "object", "title": "HTTPValidationError",
        }),
    );
}

fn batch_rule(kind: &str, primal: &str, result: &str, max_batch: usize) -> String {
    format!(
        "**Many {kind}s in one request** (a tesseract-wasm extension; requests tesseract-core \
         clients send today get today's answer). For each {kind} path, let P be the actual shape \
         of the {primal} at that path. A {kind} of shape P is a single {kind}: size-1 dimensions \
         broadcast to P, as upstream. A {kind} of shape (*B, *P) with at least one leading axis \
         is a batch with batch shape B; size-1 broadcasting applies to the trailing P part only. \
         All batched {kind}s must share the same B, and unbatched ones are broadcast across the \
         batch. Each {result} comes back with shape (*B, *shape). The batch holds K = prod(B) \
         {kind}s, at most {max_batch}; a larger K, or a shape that fits neither rule, is a 422 \
         naming both shapes. The primal is evaluated once for the whole batch. The response \
         header `Tesseract-Route` names how the request was served (`native`: the component's \
         batched export; `looped`: its single export on parallel fresh instances; \
         `from-jacobian`: contracted from the jacobian), and `Tesseract-Batch-Size` gives K."
    )
}

fn operation(
    endpoint: Endpoint,
    route: Route,
    description: String,
    request: &str,
    response: &str,
    formats: &[&str],
) -> Value {
    let name = endpoint.name();
    let negotiated = endpoint != Endpoint::AbstractEval;
    let mut content = Map::new();
    content.insert(
        "application/json".into(),
        json!({ "schema": schema_ref(response) }),
    );
    if negotiated {
        for f in formats.iter().filter(|f| **f != "json") {
            content.insert(
                format!("application/{f}"),
                json!({ "schema": schema_ref(response) }),
            );
        }
    }
    let mut op = Map::new();
    op.insert("summary".into(), json!(title(name)));
    op.insert("description".into(), json!(description));
    op.insert("operationId".into(), json!(format!("{name}_{name}_post")));
    if negotiated {
        op.insert(
            "parameters".into(),
            json!([{
                "name": "accept", "in": "header", "required": false,
                "schema": { "anyOf": [ { "type": "string" }, { "type": "null" } ], "title": "Accept" },
                "description": "Response encoding: application/json, application/json+base64 or application/json+binref, with optional `compression=lz4` and `gpu_transport=none` parameters and q-values. */* and application/* mean the server default.",
            }]),
        );
    }
    op.insert(
        "requestBody".into(),
        json!({ "content": { "application/json": { "schema": schema_ref(request) } }, "required": true }),
    );
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({ "description": "Successful Response", "content": content }),
    );
    responses.insert(
        "422".into(),
        json!({ "description": "Validation Error", "content": { "application/json": { "schema": schema_ref("HTTPValidationError") } } }),
    );
    responses::add_errors(&mut responses, negotiated, formats);
    // Three-digit codes: text order is numeric order.
    responses.sort_keys();
    op.insert("responses".into(), Value::Object(responses));
    op.insert("x-tesseract-route".into(), json!(route.name()));
    json!({ "post": op })
}

/// The OpenAPI document for `info`, served as `served` says.
pub fn document(info: &Info, served: &Served<'_>) -> Value {
    let mut components = Map::new();
    let input_order = emit_root(
        &mut components,
        "Apply",
        "InputSchema",
        &info.inputs,
        apply_leaf,
    );
    let output_order = emit_root(
        &mut components,
        "Apply",
        "OutputSchema",
        &info.outputs,
        apply_leaf,
    );
    components.insert(
        "ApplyInputSchema".into(),
        json!({
            "properties": { "inputs": inputs_property() },
            "additionalProperties": false, "type": "object", "required": ["inputs"],
            "title": "ApplyInputSchema",
            "differentiable_arrays": differentiable_arrays(&info.inputs),
            "field_order": input_order,
        }),
    );
    components.insert(
        "ApplyOutputSchema".into(),
        json!({
            "$ref": format!("{SCHEMAS}Apply_OutputSchema"), "title": "ApplyOutputSchema",
            "description": "The output data from applying the Tesseract.",
            "differentiable_arrays": differentiable_arrays(&info.outputs),
            "field_order": output_order,
        }),
    );
    shared_schemas(&mut components);

    let mut paths = Map::new();
    for &(endpoint, route) in served.endpoints {
        let (description, request, response) = match endpoint {
            Endpoint::Apply => {
                let mut d = "Apply the Tesseract to the input data.\n\n".to_owned();
                d.push_str(&info.description);
                (d, "ApplyInputSchema", "ApplyOutputSchema")
            }
            Endpoint::Jacobian => {
                let inputs = route_inputs(
                    &mut components,
                    "Jacobian",
                    info,
                    "The input data to compute the Jacobian at.",
                );
                components.insert(
                    "JacobianInputSchema".into(),
                    request_schema(
                        "JacobianInputSchema",
                        json!({
                            "inputs": inputs,
                            "jac_inputs": path_set(&info.inputs, "jac_inputs"),
                            "jac_outputs": path_set(&info.outputs, "jac_outputs"),
                        }),
                    ),
                );
                components.insert(
                    "JacobianOutputSchema".into(),
                    {
                        let mut outer = path_map(
                            &info.outputs,
                            json!({
                                "title": "JacobianOutputSchema",
                                "description": "{output path: {input path: array of shape (*output shape, *input shape)}}",
                            }),
                        );
                        if let Some(obj) = outer.as_object_mut() {
                            obj.insert(
                                "additionalProperties".into(),
                                path_map(&info.inputs, json!({})),
                            );
                        }
                        outer
                    },
                );
                (
                    "Computes the Jacobian of (some of) the outputs with respect to (some of) the \
                     inputs, at the point given by `inputs`."
                        .to_owned(),
                    "JacobianInputSchema",
                    "JacobianOutputSchema",
                )
            }
            Endpoint::Jvp | Endpoint::BatchedJvp => {
                let inputs = route_inputs(
                    &mut components,
                    "Jvp",
                    info,
                    "The input data to compute the JVP at.",
                );
                components.insert(
                    "JVPInputSchema".into(),
                    request_schema(
                        "JVPInputSchema",
                        json!({
                            "inputs": inputs,
                            "jvp_inputs": path_set(&info.inputs, "jvp_inputs"),
                            "jvp_outputs": path_set(&info.outputs, "jvp_outputs"),
                            "tangent_vector": vectors(&info.inputs, "tangent_vector", "Tangents keyed by input path; the key set must equal jvp_inputs. Extra leading axes make a batch (see the operation)."),
                        }),
                    ),
                );
                components.insert(
                    "JVPOutputSchema".into(),
                    path_map(
                        &info.outputs,
                        json!({ "title": "JVPOutputSchema", "description": "Results keyed by output path." }),
                    ),
                );
                (
                    format!(
                        "Computes the Jacobian-vector product of (some of) the outputs with \
                         respect to (some of) the inputs, at the point given by `inputs`.\n\n{}",
                        batch_rule("tangent", "primal input", "output", served.max_batch)
                    ),
                    "JVPInputSchema",
                    "JVPOutputSchema",
                )
            }
            Endpoint::Vjp | Endpoint::BatchedVjp => {
                let inputs = route_inputs(
                    &mut components,
                    "Vjp",
                    info,
                    "The input data to compute the VJP at.",
                );
                components.insert(
                    "VJPInputSchema".into(),
                    request_schema(
                        "VJPInputSchema",
                        json!({
                            "inputs": inputs,
                            "vjp_inputs": path_set(&info.inputs, "vjp_inputs"),
                            "vjp_outputs": path_set(&info.outputs, "vjp_outputs"),
                            "cotangent_vector": vectors(&info.outputs, "cotangent_vector", "Cotangents keyed by output path; the key set must equal vjp_outputs. Extra leading axes make a batch (see the operation)."),
                        }),
                    ),
                );
                components.insert(
                    "VJPOutputSchema".into(),
                    path_map(
                        &info.inputs,
                        json!({ "title": "VJPOutputSchema", "description": "Results keyed by input path." }),
                    ),
                );
                (
                    format!(
                        "Computes the vector-Jacobian product of (some of) the outputs with \
                         respect to (some of) the inputs, at the point given by `inputs`.\n\n{}",
                        batch_rule("cotangent", "output", "gradient", served.max_batch)
                    ),
                    "VJPInputSchema",
                    "VJPOutputSchema",
                )
            }
            Endpoint::AbstractEval => {
                emit_root(
                    &mut components,
                    "AbstractEval",
                    "InputSchema",
                    &info.inputs,
                    abstract_leaf,
                );
                emit_root(
                    &mut components,
                    "AbstractEval",
                    "OutputSchema",
                    &info.outputs,
                    abstract_leaf,
                );
                components.insert(
                    "AbstractInputSchema".into(),
                    request_schema(
                        "AbstractInputSchema",
                        json!({ "inputs": schema_ref("AbstractEval_InputSchema") }),
                    ),
                );
                components.insert(
                    "AbstractOutputSchema".into(),
                    json!({ "$ref": format!("{SCHEMAS}AbstractEval_OutputSchema"), "title": "AbstractOutputSchema" }),
                );
                (
                    "Computes the shapes and dtypes of the outputs from the shapes and dtypes of \
                     the inputs: arrays are replaced by {\"shape\": [...], \"dtype\": \"...\"}."
                        .to_owned(),
                    "AbstractInputSchema",
                    "AbstractOutputSchema",
                )
            }
        };
        paths.insert(
            format!("/{}", endpoint.name()),
            operation(
                endpoint,
                route,
                description,
                request,
                response,
                served.formats,
            ),
        );
    }
    paths.insert(
        "/health".into(),
        json!({ "get": {
            "summary": "Health", "description": "Answers while the server can take requests, even while computations run.",
            "operationId": "health_health_get",
            // Upstream's schema: the body is `{"status": "ok"}`.
            "responses": { "200": { "description": "Successful Response", "content": { "application/json": { "schema": { "additionalProperties": true, "type": "object", "title": "Response Health Health Get" } } } } },
        } }),
    );

    json!({
        "openapi": "3.1.0",
        "info": { "title": info.name, "version": info.version, "description": info.description },
        "paths": paths,
        "components": { "schemas": components },
        "x-supported-output-formats": served.formats,
        "x-supported-gpu-transports": super::negotiate::GPU_TRANSPORTS,
        "x-supported-compressions": super::negotiate::COMPRESSIONS,
    })
}

#[cfg(test)]
mod tests;
