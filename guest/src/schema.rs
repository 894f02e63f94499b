//! Declaring a Tesseract's name, inputs and outputs in Rust.

use tesseract_model::DType;
use tesseract_model::schema::{ArraySpec, Dim, FieldKind, Info, ShapeSpec};

/// A Tesseract's self-description: name, version, description and its input and output
/// fields. Returned by [`crate::Tesseract::schema`]; the host validates requests against it.
///
/// ```
/// use tesseract_guest::{DType, Field, Schema};
/// let schema = Schema::new("scale", "0.1.0")
///     .description("Multiplies a vector by a scalar.")
///     .input(Field::array("x", DType::Float64, [None]).differentiable())
///     .input(Field::scalar("k", DType::Float64).default(2.0))
///     .output(Field::array("y", DType::Float64, [None]).differentiable());
/// assert_eq!(schema.info().inputs.len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Schema {
    info: Info,
}

impl Schema {
    /// Starts a schema with no fields.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Schema {
        Schema {
            info: Info {
                name: name.into(),
                version: version.into(),
                description: String::new(),
                inputs: Vec::new(),
                outputs: Vec::new(),
            },
        }
    }

    /// Sets the human-readable description (shown in `inspect` and the OpenAPI document).
    pub fn description(mut self, text: impl Into<String>) -> Schema {
        self.info.description = text.into();
        self
    }

    /// Declares an input field.
    pub fn input(mut self, field: Field) -> Schema {
        self.info.inputs.push(field.0);
        self
    }

    /// Declares an output field.
    pub fn output(mut self, field: Field) -> Schema {
        self.info.outputs.push(field.0);
        self
    }

    /// The schema as data, as it crosses the WIT boundary.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// Consumes the builder.
    pub fn into_info(self) -> Info {
        self.info
    }
}

/// One declared field, built from a constructor and refined with chained calls.
#[derive(Debug, Clone)]
pub struct Field(tesseract_model::schema::Field);

impl Field {
    fn new(path: impl Into<String>, kind: FieldKind) -> Field {
        Field(tesseract_model::schema::Field {
            path: path.into(),
            kind,
            description: String::new(),
            default: None,
        })
    }

    /// An array with fixed (`Some(n)`) and free (`None`) dimensions, e.g. `[None]` for a
    /// vector of any length or `[Some(3), Some(3)]` for a 3×3 matrix.
    pub fn array(
        path: impl Into<String>,
        dtype: DType,
        dims: impl IntoIterator<Item = Option<usize>>,
    ) -> Field {
        let dims = dims
            .into_iter()
            .map(|d| d.map_or(Dim::Any, Dim::Fixed))
            .collect();
        Field::new(
            path,
            FieldKind::Array(ArraySpec {
                dtype,
                shape: ShapeSpec::Ranked(dims),
                differentiable: false,
            }),
        )
    }

    /// An array of any rank (`Array[..., dtype]` in tesseract-core).
    pub fn any_rank(path: impl Into<String>, dtype: DType) -> Field {
        Field::new(
            path,
            FieldKind::Array(ArraySpec {
                dtype,
                shape: ShapeSpec::AnyRank,
                differentiable: false,
            }),
        )
    }

    /// A scalar array (`Float64` in tesseract-core): shape `[]`.
    pub fn scalar(path: impl Into<String>, dtype: DType) -> Field {
        Field::array(path, dtype, [])
    }

    /// A plain JSON boolean.
    pub fn boolean(path: impl Into<String>) -> Field {
        Field::plain(path, r#"{"type":"boolean"}"#)
    }

    /// A plain JSON integer.
    pub fn integer(path: impl Into<String>) -> Field {
        Field::plain(path, r#"{"type":"integer"}"#)
    }

    /// A plain JSON number.
    pub fn number(path: impl Into<String>) -> Field {
        Field::plain(path, r#"{"type":"number"}"#)
    }

    /// A plain JSON string.
    pub fn string(path: impl Into<String>) -> Field {
        Field::plain(path, r#"{"type":"string"}"#)
    }

    /// A plain value described by an arbitrary JSON Schema (JSON text). It reaches the
    /// component as JSON text unless the schema is one of the primitive types above.
    pub fn plain(path: impl Into<String>, json_schema: impl Into<String>) -> Field {
        Field::new(
            path,
            FieldKind::Plain {
                json_schema: json_schema.into(),
            },
        )
    }

    /// Marks an array as differentiable: it may appear in `jac_inputs`, `jvp_inputs`, ...
    /// Has no effect on plain fields.
    pub fn differentiable(mut self) -> Field {
        if let FieldKind::Array(spec) = &mut self.0.kind {
            spec.differentiable = true;
        }
        self
    }

    /// Sets the human-readable description.
    pub fn description(mut self, text: impl Into<String>) -> Field {
        self.0.description = text.into();
        self
    }

    /// Makes the field optional with this default.
    pub fn default(mut self, value: impl DefaultValue) -> Field {
        self.0.default = Some(value.to_json());
        self
    }
}

/// A value usable as a field default; it is stored as JSON text.
pub trait DefaultValue {
    /// The value as JSON text.
    fn to_json(&self) -> String;
}

macro_rules! number_default {
    ($($t:ty),*) => {$(
        impl DefaultValue for $t {
            fn to_json(&self) -> String {
                // Debug keeps a decimal point or exponent (`1.0`, `1e-12`), both valid JSON.
                format!("{self:?}")
            }
        }
    )*};
}
number_default!(f32, f64, i32, i64, u32, bool);

impl DefaultValue for &str {
    fn to_json(&self) -> String {
        let mut out = String::from('"');
        for c in self.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}
