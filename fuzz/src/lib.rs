//! What the fuzz targets share: the fixed schema request decoding is validated against.

use tesseract_model::DType;
use tesseract_model::schema::{ArraySpec, Dim, Field, FieldKind, Info, ShapeSpec};

fn array(path: &str, dtype: DType, shape: ShapeSpec, default: Option<&str>) -> Field {
    Field {
        path: path.into(),
        kind: FieldKind::Array(ArraySpec {
            dtype,
            shape,
            differentiable: true,
        }),
        description: String::new(),
        default: default.map(str::to_owned),
    }
}

/// vectoradd's inputs plus the nested forms tesseract-core allows (nested models, lists and
/// dicts of arrays, any-rank arrays) and a plain field.
pub fn example_schema() -> Info {
    let any = |n: usize| ShapeSpec::Ranked(vec![Dim::Any; n]);
    Info {
        name: "fuzz".into(),
        version: "0".into(),
        description: String::new(),
        inputs: vec![
            array("a", DType::Float32, any(1), None),
            array("b", DType::Float64, any(1), Some("[1.0]")),
            array("s", DType::Float32, ShapeSpec::scalar(), Some("1.0")),
            array(
                "m.k",
                DType::Int32,
                ShapeSpec::Ranked(vec![Dim::Fixed(2), Dim::Any]),
                None,
            ),
            array("m.any", DType::Float64, ShapeSpec::AnyRank, Some("0.0")),
            array(
                "items.[]",
                DType::Int64,
                ShapeSpec::Ranked(vec![Dim::Fixed(3)]),
                Some("[]"),
            ),
            array("named.{}", DType::Bool, any(2), Some("{}")),
            Field {
                path: "normalize".into(),
                kind: FieldKind::Plain {
                    json_schema: r#"{"type":"boolean"}"#.into(),
                },
                description: String::new(),
                default: Some("false".into()),
            },
        ],
        outputs: Vec::new(),
    }
}
