//! Unit tests of the OpenAPI generator, on metadata built by hand. Expected values are the
//! ones captured from tesseract-core 1.15 (reference §4.2) where clients read them.

use serde_json::{Value, json};
use tesseract_model::DType;
use tesseract_model::schema::{ArraySpec, Dim, Field, FieldKind, Info, ShapeSpec};

use super::{Served, document};
use crate::planner::{Endpoint, Route};

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
