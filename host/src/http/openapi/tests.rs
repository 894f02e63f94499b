//! Unit tests of the OpenAPI generator, on metadata built by hand. Expected values are the
//! ones captured from tesseract-core 1.15 (reference §4.2) where clients read them.

use std::time::Duration;

use axum::response::IntoResponse;
use serde_json::{Value, json};
use tesseract_model::schema::{ArraySpec, Dim, Field, FieldKind, Info, ShapeSpec};
use tesseract_model::{DType, ErrorKind, GuestError};

use super::{Served, document};
use crate::http::ApiError;
use crate::http::negotiate::NotAcceptable;
use crate::planner::{Endpoint, Route};
use crate::request::RequestError;
use crate::sandbox::CallError;
use crate::schema::{Loc, ValidationError};

fn array(path: &str, dtype: DType, shape: ShapeSpec, differentiable: bool) -> Field {
    Field {
        path: path.into(),
        kind: FieldKind::Array(ArraySpec {
            dtype,
            shape,
            differentiable,
        }),
        description: format!("The {path}."),
        default: None,
    }
}

fn with_default(mut f: Field, default: &str) -> Field {
    f.default = Some(default.into());
    f
}

fn ranked(dims: &[Option<usize>]) -> ShapeSpec {
    ShapeSpec::Ranked(
        dims.iter()
            .map(|d| d.map_or(Dim::Any, Dim::Fixed))
            .collect(),
    )
}

fn rosenbrock() -> Info {
    let scalar = ShapeSpec::scalar;
    Info {
        name: "rosenbrock".into(),
        version: "0.1.0".into(),
        description: "Evaluates the Rosenbrock function.".into(),
        inputs: vec![
            with_default(array("x", DType::Float32, scalar(), true), "0.0"),
            with_default(array("y", DType::Float32, scalar(), true), "0.0"),
            with_default(array("a", DType::Float32, scalar(), false), "1.0"),
            with_default(array("b", DType::Float32, scalar(), false), "100.0"),
        ],
        outputs: vec![array("result", DType::Float32, scalar(), true)],
    }
}

/// The nested example of reference §4.2, plus a plain field and an any-rank output.
fn nested() -> Info {
    Info {
        name: "nested".into(),
        version: "1.2.3".into(),
        description: String::new(),
        inputs: vec![
            array("a.v", DType::Float32, ranked(&[None]), true),
            array("a.s", DType::Float32, ShapeSpec::scalar(), true),
            array("items.[]", DType::Float64, ranked(&[Some(3)]), true),
            array(
                "named.{}",
                DType::Float64,
                ranked(&[Some(2), Some(2)]),
                true,
            ),
            Field {
                path: "n".into(),
                kind: FieldKind::Plain {
                    json_schema: r#"{"type":"integer"}"#.into(),
                },
                description: "A count.".into(),
                default: Some("3".into()),
            },
        ],
        outputs: vec![
            array("out", DType::Float64, ShapeSpec::AnyRank, true),
            array("m", DType::Int64, ranked(&[Some(1), Some(4), None]), false),
        ],
    }
}

fn doc(info: &Info, endpoints: &[(Endpoint, Route)]) -> Value {
    document(
        info,
        &Served {
            endpoints,
            formats: &["json", "json+base64"],
            max_batch: 4096,
        },
    )
}

fn all_endpoints() -> Vec<(Endpoint, Route)> {
    vec![
        (Endpoint::Apply, Route::Native),
        (Endpoint::Jacobian, Route::Native),
        (Endpoint::Jvp, Route::FromJacobian),
        (Endpoint::Vjp, Route::FromJacobian),
        (Endpoint::AbstractEval, Route::ApplyOnZeros),
    ]
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

#[test]
fn top_level_keys_clients_read() {
    let d = doc(&rosenbrock(), &all_endpoints());
    assert_eq!(d["openapi"], "3.1.0");
    assert_eq!(d["info"]["title"], "rosenbrock");
    assert_eq!(d["info"]["version"], "0.1.0");
    assert_eq!(
        d["x-supported-output-formats"],
        json!(["json", "json+base64"])
    );
    assert_eq!(d["x-supported-gpu-transports"], json!(["none"]));
    assert_eq!(d["x-supported-compressions"], json!(["none", "lz4"]));
    let paths: Vec<&String> = d["paths"]
        .as_object()
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        paths,
        [
            "/apply",
            "/jacobian",
            "/jacobian_vector_product",
            "/vector_jacobian_product",
            "/abstract_eval",
            "/health"
        ]
    );
    assert_eq!(
        d["paths"]["/apply"]["post"]["operationId"],
        "apply_apply_post"
    );
    assert_eq!(
        d["paths"]["/apply"]["post"]["description"],
        "Apply the Tesseract to the input data.\n\nEvaluates the Rosenbrock function."
    );
}

#[test]
fn only_served_endpoints_are_paths() {
    let d = doc(&rosenbrock(), &[(Endpoint::Apply, Route::Native)]);
    let paths: Vec<&String> = d["paths"]
        .as_object()
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    assert_eq!(paths, ["/apply", "/health"]);
    assert!(schema(&d, "JVPInputSchema").is_null());
}

#[test]
fn apply_schemas_match_upstream() {
    let d = doc(&rosenbrock(), &all_endpoints());
    assert_eq!(
        schema(&d, "ApplyInputSchema"),
        &json!({
            "properties": {"inputs": {"$ref": "#/components/schemas/Apply_InputSchema", "description": "The input data to apply the Tesseract to."}},
            "additionalProperties": false, "type": "object", "required": ["inputs"], "title": "ApplyInputSchema",
            "differentiable_arrays": {"x": {"dtype": "float32", "shape": []}, "y": {"dtype": "float32", "shape": []}},
            "field_order": {"": ["x", "y", "a", "b"]},
        })
    );
    let out = schema(&d, "ApplyOutputSchema");
    assert_eq!(out["$ref"], "#/components/schemas/Apply_OutputSchema");
    assert_eq!(
        out["differentiable_arrays"],
        json!({"result": {"dtype": "float32", "shape": []}})
    );
    assert_eq!(out["field_order"], json!({"": ["result"]}));

    let x = &schema(&d, "Apply_InputSchema")["properties"]["x"];
    assert_eq!(
        x["title"],
        "EncodedArrayModel__scalar__float32__DIFFERENTIABLE"
    );
    assert_eq!(x["array_flags"], json!(["DIFFERENTIABLE"]));
    assert_eq!(x["properties"]["object_type"]["const"], "array");
    assert_eq!(x["default"], json!(0.0));
    assert_eq!(x["description"], "The x.");
    assert_eq!(x["required"], json!(["shape", "dtype", "data"]));
    assert_eq!(
        x["properties"]["shape"]["maxItems"],
        json!(0),
        "a scalar has an empty shape"
    );
    assert_eq!(
        x["properties"]["dtype"]["enum"],
        json!([
            "float16", "float32", "float64", "int8", "int16", "int32", "int64", "bool", "uint8",
            "uint16", "uint32", "uint64"
        ])
    );
    let a = &schema(&d, "Apply_InputSchema")["properties"]["a"];
    assert_eq!(a["title"], "EncodedArrayModel__scalar__float32__noflags");
    assert_eq!(a["array_flags"], json!([]));
    assert!(schema(&d, "Apply_InputSchema").get("required").is_none());
    assert_eq!(
        schema(&d, "Apply_OutputSchema")["required"],
        json!(["result"])
    );
}

#[test]
fn nested_templates_become_models_lists_and_dicts() {
    let d = doc(&nested(), &all_endpoints());
    assert_eq!(
        schema(&d, "ApplyInputSchema")["differentiable_arrays"],
        json!({"a.v": {"dtype": "float32", "shape": [null]}, "a.s": {"dtype": "float32", "shape": []},
               "items.[]": {"dtype": "float64", "shape": [3]}, "named.{}": {"dtype": "float64", "shape": [2, 2]}})
    );
    assert_eq!(
        schema(&d, "ApplyInputSchema")["field_order"],
        json!({"": ["a", "items", "named", "n"], "a": ["v", "s"]})
    );
    let props = &schema(&d, "Apply_InputSchema")["properties"];
    assert_eq!(props["a"], json!({"$ref": "#/components/schemas/Apply_A"}));
    assert_eq!(
        schema(&d, "Apply_A")["properties"]["v"]["title"],
        "EncodedArrayModel__any__float32__DIFFERENTIABLE"
    );
    assert_eq!(props["items"]["type"], "array");
    assert_eq!(
        props["items"]["items"]["title"],
        "EncodedArrayModel__3__float64__DIFFERENTIABLE"
    );
    assert_eq!(props["named"]["type"], "object");
    assert_eq!(
        props["named"]["additionalProperties"]["title"],
        "EncodedArrayModel__2_2__float64__DIFFERENTIABLE"
    );
    assert_eq!(
        props["n"],
        json!({"type": "integer", "title": "N", "description": "A count.", "default": 3})
    );
}

#[test]
fn any_rank_has_no_shape_key() {
    let d = doc(&nested(), &all_endpoints());
    assert_eq!(
        schema(&d, "ApplyOutputSchema")["differentiable_arrays"],
        json!({"out": {"dtype": "float64"}})
    );
    let out = &schema(&d, "Apply_OutputSchema")["properties"]["out"];
    assert_eq!(
        out["title"],
        "EncodedArrayModel__anyrank__float64__DIFFERENTIABLE"
    );
    assert_eq!(
        out["properties"]["shape"]["items"],
        json!({"type": "integer"})
    );
}

#[test]
fn fixed_dimensions_accept_their_size_or_one() {
    let d = doc(&nested(), &all_endpoints());
    let m = &schema(&d, "Apply_OutputSchema")["properties"]["m"];
    assert_eq!(m["title"], "EncodedArrayModel__1_4_any__int64__noflags");
    let shape = &m["properties"]["shape"];
    assert_eq!(
        shape["prefixItems"],
        json!([{"type": "integer", "const": 1}, {"type": "integer", "enum": [1, 4]}, {"type": "integer", "minimum": 0.0}])
    );
    assert_eq!(shape["minItems"], json!(3));
    assert_eq!(shape["maxItems"], json!(3));
    assert_eq!(
        m["properties"]["dtype"]["enum"],
        json!([
            "int8", "int16", "int32", "int64", "bool", "uint8", "uint16", "uint32", "uint64"
        ])
    );
}

#[test]
fn gradient_requests_list_differentiable_paths() {
    let d = doc(&nested(), &all_endpoints());
    let ins = &schema(&d, "JVPInputSchema")["properties"]["jvp_inputs"];
    assert_eq!(ins["minItems"], json!(1));
    assert_eq!(ins["uniqueItems"], json!(true));
    assert_eq!(
        ins["items"]["anyOf"],
        json!([
            {"type": "string", "const": "a.v"},
            {"type": "string", "const": "a.s"},
            {"type": "string", "pattern": r"^items\.\[\d+\]$"},
            {"type": "string", "pattern": r"^named\.\{(?:[^{}\\]|\\.)+\}$"},
        ])
    );
    // One differentiable output: pydantic's one-member union is that member, and maps keyed by
    // outputs name it in `propertyNames`.
    let vjp = schema(&d, "VJPInputSchema");
    assert_eq!(
        vjp["properties"]["vjp_outputs"]["items"],
        json!({"type": "string", "const": "out"})
    );
    let cot = &vjp["properties"]["cotangent_vector"];
    assert_eq!(cot["propertyNames"], json!({"const": "out"}));
    assert_eq!(cot["title"], json!("Cotangent Vector"));
    assert_eq!(cot["additionalProperties"]["array_flags"], json!([]));
    assert_eq!(
        cot["additionalProperties"]["properties"]["dtype"]["enum"]
            .as_array()
            .map(Vec::len),
        Some(14),
        "any dtype, complex included"
    );
    assert_eq!(
        schema(&d, "JVPOutputSchema")["propertyNames"],
        json!({"const": "out"})
    );
    assert!(schema(&d, "VJPOutputSchema").get("propertyNames").is_none());
    // Each gradient route has its own copy of the input schema, as upstream names them.
    for (request, copy) in [
        ("JacobianInputSchema", "Jacobian_InputSchema"),
        ("JVPInputSchema", "Jvp_InputSchema"),
        ("VJPInputSchema", "Vjp_InputSchema"),
    ] {
        assert_eq!(
            schema(&d, request)["properties"]["inputs"]["$ref"],
            json!(format!("#/components/schemas/{copy}"))
        );
        assert_eq!(
            schema(&d, copy)["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect::<Vec<_>>()),
            schema(&d, "Apply_InputSchema")["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect::<Vec<_>>())
        );
    }
}

#[test]
fn jvp_and_vjp_describe_the_batch_rule() {
    let d = doc(&rosenbrock(), &all_endpoints());
    for (path, kind) in [
        ("/jacobian_vector_product", "tangent"),
        ("/vector_jacobian_product", "cotangent"),
    ] {
        let text = d["paths"][path]["post"]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(
            text.contains(&format!("Many {kind}s in one request")),
            "{path}"
        );
        assert!(text.contains("(*B, *P)"), "{path}");
        assert!(text.contains("at most 4096"), "{path}");
        assert!(text.contains("Tesseract-Batch-Size"), "{path}");
    }
}

#[test]
fn abstract_eval_takes_shapes_and_dtypes() {
    let d = doc(&nested(), &all_endpoints());
    assert_eq!(
        schema(&d, "AbstractEval_A")["properties"]["v"]["$ref"],
        "#/components/schemas/ShapeDType"
    );
    assert_eq!(
        schema(&d, "AbstractInputSchema")["properties"]["inputs"]["$ref"],
        "#/components/schemas/AbstractEval_InputSchema"
    );
    assert!(
        d["paths"]["/abstract_eval"]["post"]
            .get("parameters")
            .is_none()
    );
}

/// The errors the server can answer on a computational route, one or more per cause in the
/// status table of [`crate::http`]. 404 and 405 are not among them: they answer paths and
/// methods the document has no operation for.
fn route_errors() -> Vec<ApiError> {
    let call = |e: CallError| ApiError::Request(RequestError::Call(e));
    vec![
        ApiError::invalid(ValidationError::missing(
            vec![Loc::from("body")],
            Value::Null,
        )),
        call(CallError::Guest(GuestError::invalid_input(
            "x must be positive",
        ))),
        call(CallError::InvalidRequest("batch sizes disagree".into())),
        ApiError::NotAcceptable(NotAcceptable {
            accept: "text/html".into(),
            formats: vec!["json", "json+base64"],
        }),
        ApiError::BodyTimeout,
        ApiError::TooLarge,
        call(CallError::Guest(GuestError {
            kind: ErrorKind::Failed,
            message: "did not converge".into(),
        })),
        call(CallError::Trap {
            trap: "unreachable".into(),
            message: Some("panicked at src/lib.rs".into()),
        }),
        call(CallError::MemoryLimit {
            limit_bytes: 1 << 29,
        }),
        call(CallError::StackOverflow),
        call(CallError::Contract(
            "output `result` has dtype int32".into(),
        )),
        call(CallError::Host("wasmtime failed".into())),
        ApiError::Internal("cannot write the binref file".into()),
        ApiError::Overloaded,
        call(CallError::Busy),
        call(CallError::Timeout {
            limit: Duration::from_secs(60),
        }),
    ]
}

/// Does not compile once [`ApiError`] gains a variant: then add it to [`route_errors`] (and
/// to the document, if a route can answer it).
fn considered(e: &ApiError) -> bool {
    match e {
        ApiError::Request(_)
        | ApiError::Invalid(_)
        | ApiError::NotAcceptable(_)
        | ApiError::TooLarge
        | ApiError::BodyTimeout
        | ApiError::Overloaded
        | ApiError::Internal(_) => true,
        ApiError::NotFound | ApiError::MethodNotAllowed => false,
    }
}

/// Checks `value` against `schema`, in the JSON Schema subset the documented error bodies use
/// (`$ref` into `doc`, `type`, `properties`, `required`, `items`, `const`, `minimum`,
/// `anyOf`), and
/// collects what fails. Any other keyword is a failure too, so nothing passes unchecked.
fn conform(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        errors.push(format!("{at}: schema is not an object"));
        return;
    };
    for (key, rule) in obj {
        match key.as_str() {
            "title" | "description" => {}
            "$ref" => {
                let name = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    .unwrap_or_default();
                conform(doc, schema_of(doc, name), value, at, errors);
            }
            "type" => {
                let ok = match rule.as_str() {
                    Some("object") => value.is_object(),
                    Some("array") => value.is_array(),
                    Some("string") => value.is_string(),
                    Some("integer") => value.is_i64() || value.is_u64(),
                    _ => false,
                };
                if !ok {
                    errors.push(format!("{at}: {value} is not of type {rule}"));
                }
            }
            "const" if rule != value => errors.push(format!("{at}: {value} is not {rule}")),
            "minimum" if value.as_f64() < rule.as_f64() => {
                errors.push(format!("{at}: {value} is below {rule}"));
            }
            "minimum" => {}
            "const" => {}
            "required" => {
                for name in rule.as_array().into_iter().flatten() {
                    if value.get(name.as_str().unwrap_or_default()).is_none() {
                        errors.push(format!("{at}: {name} is missing"));
                    }
                }
            }
            "properties" => {
                for (name, sub) in rule.as_object().into_iter().flatten() {
                    if let Some(v) = value.get(name) {
                        conform(doc, sub, v, &format!("{at}.{name}"), errors);
                    }
                }
            }
            "items" => {
                for (i, v) in value.as_array().into_iter().flatten().enumerate() {
                    conform(doc, rule, v, &format!("{at}[{i}]"), errors);
                }
            }
            "anyOf" => {
                let any = rule.as_array().into_iter().flatten().any(|option| {
                    let mut sub = Vec::new();
                    conform(doc, option, value, at, &mut sub);
                    sub.is_empty()
                });
                if !any {
                    errors.push(format!("{at}: {value} matches no anyOf option"));
                }
            }
            other => errors.push(format!("{at}: keyword {other} is not checked here")),
        }
    }
}

fn schema_of<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

fn status_codes(d: &Value, path: &str, method: &str) -> Vec<String> {
    d["paths"][path][method]["responses"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn operations_list_every_status_they_answer() {
    let d = doc(&rosenbrock(), &all_endpoints());
    for path in [
        "/apply",
        "/jacobian",
        "/jacobian_vector_product",
        "/vector_jacobian_product",
    ] {
        assert_eq!(
            status_codes(&d, path, "post"),
            ["200", "406", "408", "413", "422", "500", "503", "504"],
            "{path}"
        );
    }
    // abstract_eval ignores Accept: no 406.
    assert_eq!(
        status_codes(&d, "/abstract_eval", "post"),
        ["200", "408", "413", "422", "500", "503", "504"]
    );
    assert_eq!(status_codes(&d, "/health", "get"), ["200"]);
}

#[test]
fn upstream_responses_are_unchanged() {
    let d = doc(&rosenbrock(), &all_endpoints());
    let apply = &d["paths"]["/apply"]["post"]["responses"];
    assert_eq!(
        apply["422"],
        json!({ "description": "Validation Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/HTTPValidationError" } } } })
    );
    assert_eq!(
        apply["200"]["content"]["application/json"],
        json!({ "schema": { "$ref": "#/components/schemas/ApplyOutputSchema" } })
    );
    assert_eq!(
        d["paths"]["/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"],
        json!({ "additionalProperties": true, "type": "object", "title": "Response Health Health Get" })
    );
    // The error bodies are inline: the components are upstream's, name for name.
    assert!(schema(&d, "HTTPError").is_null());
}

#[test]
fn every_error_body_and_header_conforms_to_its_documented_response() {
    let d = doc(&rosenbrock(), &all_endpoints());
    for (endpoint, _) in all_endpoints() {
        let path = format!("/{}", endpoint.name());
        let responses = &d["paths"][&path]["post"]["responses"];
        for error in route_errors() {
            assert!(considered(&error));
            if endpoint == Endpoint::AbstractEval && matches!(error, ApiError::NotAcceptable(_)) {
                continue; // abstract_eval never negotiates
            }
            let status = error.status();
            let documented = &responses[status.as_str()];
            assert!(
                !documented.is_null(),
                "{path}: {status} ({error}) is not documented"
            );
            let mut errors = Vec::new();
            conform(
                &d,
                &documented["content"]["application/json"]["schema"],
                &error.body(),
                "body",
                &mut errors,
            );
            assert!(errors.is_empty(), "{path}: {status} ({error}): {errors:?}");
            let response = error.into_response();
            for (name, header) in documented["headers"].as_object().into_iter().flatten() {
                let sent = response.headers().get(name.as_str());
                assert_eq!(header["required"], true, "{path}: {status} {name}");
                let sent = sent.and_then(|v| v.to_str().ok()).map(|v| {
                    // Header text as schemathesis reads it: an integer schema parses it.
                    match header["schema"]["type"].as_str() {
                        Some("integer") => v.parse::<i64>().map_or(json!(v), |n| json!(n)),
                        _ => json!(v),
                    }
                });
                let Some(sent) = sent else {
                    panic!("{path}: {status} is sent without its {name} header");
                };
                let mut errors = Vec::new();
                conform(&d, &header["schema"], &sent, name, &mut errors);
                assert!(errors.is_empty(), "{path}: {status}: {errors:?}");
            }
        }
    }
}

#[test]
fn the_406_body_lists_what_the_server_offers() {
    let d = doc(&rosenbrock(), &all_endpoints());
    let detail = &d["paths"]["/apply"]["post"]["responses"]["406"]["content"]["application/json"]["schema"]
        ["properties"]["detail"]["properties"];
    assert_eq!(
        detail["available_formats"]["const"],
        json!(["json", "json+base64"])
    );
    let mut errors = Vec::new();
    let offered_more = ApiError::NotAcceptable(NotAcceptable {
        accept: "text/html".into(),
        formats: vec!["json", "json+base64", "json+binref"],
    });
    conform(
        &d,
        &d["paths"]["/apply"]["post"]["responses"]["406"]["content"]["application/json"]["schema"],
        &offered_more.body(),
        "body",
        &mut errors,
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
}
