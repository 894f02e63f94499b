//! Inputs generated from a schema, and the flat `f64` views of (co)tangents the numerical
//! checks work in.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};
use tesseract_model::path::TemplateSegment;
use tesseract_model::schema::{ArraySpec, Dim, FieldKind, Info, ShapeSpec};
use tesseract_model::{DType, Data, Leaf, Tensor, Tree, Vectors};
use tesseract_wire::codec::DecodeOptions;
use tesseract_wire::schema;

/// The size generated for every `None` dimension. One size for all, so that inputs a
/// component expects to agree in length (`a` and `b` of vectoradd) do.
pub const ANY_DIM: usize = 3;

/// The seeded generator every random value of a run comes from.
pub struct Random(Xoshiro256PlusPlus);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f64 {
        self.0.random_range(-1.0..1.0)
    }

    /// `n` values uniform in [-1, 1).
    pub fn vector(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.unit()).collect()
    }

    fn below(&mut self, n: i64) -> i64 {
        self.0.random_range(0..n)
    }
}

fn shape_of(spec: &ShapeSpec) -> Vec<usize> {
    match spec {
        ShapeSpec::AnyRank => vec![ANY_DIM],
        ShapeSpec::Ranked(dims) => dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Any => ANY_DIM,
            })
            .collect(),
    }
}

/// Nested JSON lists of `shape` filled by `leaf`.
fn nested(shape: &[usize], leaf: &mut dyn FnMut() -> Value) -> Value {
    match shape.split_first() {
        None => leaf(),
        Some((&n, rest)) => Value::Array((0..n).map(|_| nested(rest, leaf)).collect()),
    }
}

fn random_array(spec: &ArraySpec, default: Option<&Value>, rng: &mut Random) -> Value {
    let shape = shape_of(&spec.shape);
    // A scalar default is a point the author chose: stay near it.
    let centre = default.and_then(Value::as_f64);
    let mut leaf = || match spec.dtype {
        DType::Float32 | DType::Float64 => match centre {
            Some(c) => json!(c + 0.1 * c.abs().max(1.0) * rng.unit()),
            None => json!(rng.unit()),
        },
        DType::Int32 | DType::Int64 => json!(1 + rng.below(4)),
        DType::Bool => json!(rng.below(2) == 1),
    };
    nested(&shape, &mut leaf)
}

fn plain_value(json_schema: &str) -> Option<Value> {
    let schema: Value = serde_json::from_str(json_schema).ok()?;
    match schema.get("type")?.as_str()? {
        "integer" => Some(json!(1)),
        "number" => Some(json!(0.5)),
        "boolean" => Some(json!(false)),
        "string" => Some(json!("a")),
        _ => None,
    }
}

/// Inserts `value` at `template` into `root`, with one element per list and dict level.
fn insert(root: &mut Value, template: &[TemplateSegment], value: Value) {
    let Some((first, rest)) = template.split_first() else {
        *root = value;
        return;
    };
    let child = match first {
        TemplateSegment::Field(name) => {
            if !root.is_object() {
                *root = Value::Object(Map::new());
            }
            match root {
                Value::Object(m) => m.entry(name.clone()).or_insert(Value::Null),
                _ => return,
            }
        }
        TemplateSegment::AnyKey => {
            if !root.is_object() {
                *root = Value::Object(Map::new());
            }
            match root {
                Value::Object(m) => m.entry("a").or_insert(Value::Null),
                _ => return,
            }
        }
        TemplateSegment::AnyIndex => {
            if !root.is_array() {
                *root = json!([null]);
            }
            match root {
                Value::Array(items) => &mut items[0],
                _ => return,
            }
        }
    };
    insert(child, rest, value);
}

/// A base point from the schema: random values of each differentiable array's dtype and shape
/// (`None` dimensions [`ANY_DIM`] long, scalars with a default near it), random values for
/// arrays without a default, defaults for everything else; all through the same validation a
/// request's inputs go through.
///
/// # Errors
/// A required plain field whose JSON Schema gives no simple type, or a generated value the
/// schema refuses; either way `--inputs` must give a base point.
pub fn generate(info: &Info, rng: &mut Random) -> Result<Tree, String> {
    let mut root = Value::Object(Map::new());
    for field in &info.inputs {
        let default: Option<Value> = field
            .default
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok());
        let value = match &field.kind {
            // Settings (tolerances, iteration caps) keep the author's default; only what is
            // differentiated moves.
            FieldKind::Array(spec) if !spec.differentiable && default.is_some() => continue,
            FieldKind::Array(spec) => random_array(spec, default.as_ref(), rng),
            FieldKind::Plain { .. } if default.is_some() => continue,
            FieldKind::Plain { json_schema } => plain_value(json_schema).ok_or_else(|| {
                format!(
                    "cannot generate a value for `{}` from its schema",
                    field.path
                )
            })?,
        };
        insert(
            &mut root,
            &tesseract_model::path::parse_template(&field.path),
            value,
        );
    }
    schema::validate_inputs(info, &root, &DecodeOptions::default(), &[]).map_err(|e| {
        format!(
            "generated inputs are invalid: {}",
            e.0.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

/// An array slot of a flat vector: a path, its shape and dtype.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub path: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
}

impl Slot {
    pub fn of(path: &str, t: &Tensor) -> Slot {
        Slot {
            path: path.to_owned(),
            shape: t.shape().to_vec(),
            dtype: t.dtype(),
        }
    }

    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Total elements of `slots`.
pub fn total(slots: &[Slot]) -> usize {
    slots.iter().map(Slot::elements).sum()
}

/// The paths of `slots`.
pub fn paths(slots: &[Slot]) -> Vec<String> {
    slots.iter().map(|s| s.path.clone()).collect()
}

/// The elements of `v` over `slots`, in order, widened to `f64`.
///
/// # Errors
/// A slot missing from `v`, or of another shape (after `batch` leading axes).
pub fn flatten(v: &Vectors, slots: &[Slot], batch: &[usize]) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    for s in slots {
        let t = v
            .get(&s.path)
            .ok_or_else(|| format!("no `{}` in the result", s.path))?;
        if t.shape() != [batch, &s.shape].concat() {
            return Err(format!(
                "`{}` has shape {:?}, expected {:?}",
                s.path,
                t.shape(),
                [batch, &s.shape].concat()
            ));
        }
        out.extend(t.data().to_f64());
    }
    Ok(out)
}

/// The array leaves of `tree` over `slots`, widened to `f64`.
///
/// # Errors
/// A slot missing from `tree` or of another shape.
pub fn flatten_tree(tree: &Tree, slots: &[Slot]) -> Result<Vec<f64>, String> {
    let v: Vectors = slots
        .iter()
        .filter_map(|s| match tree.get(&s.path) {
            Some(Leaf::Tensor(t)) => Some((s.path.clone(), t.clone())),
            _ => None,
        })
        .collect();
    flatten(&v, slots, &[])
}

/// `flat` (`count` vectors of [`total`] elements, one after another when `batch` is set) as
/// (co)tangents keyed by slot path, each of its slot's dtype, with a leading axis of `count`
/// when `batched`.
pub fn unflatten(flat: &[f64], slots: &[Slot], count: usize, batched: bool) -> Vectors {
    let n = total(slots);
    let mut out = Vectors::new();
    let mut offset = 0;
    for s in slots {
        let len = s.elements();
        let mut values = Vec::with_capacity(len * count);
        for k in 0..count {
            let start = k * n + offset;
            values.extend_from_slice(&flat[start..start + len]);
        }
        let shape = if batched {
            [&[count][..], &s.shape].concat()
        } else {
            s.shape.clone()
        };
        if let Ok(t) = Tensor::new(shape, Data::from_f64(s.dtype, &values)) {
            out.insert(s.path.clone(), t);
        }
        offset += len;
    }
    out
}

/// `flat` stacked per vector: `[K, n]` in `[k][slot elements]` order, from a batched result.
///
/// # Errors
/// As [`flatten`].
pub fn flatten_batch(v: &Vectors, slots: &[Slot], count: usize) -> Result<Vec<Vec<f64>>, String> {
    let mut rows = vec![Vec::new(); count];
    for s in slots {
        let t = v
            .get(&s.path)
            .ok_or_else(|| format!("no `{}` in the result", s.path))?;
        let want = [&[count][..], &s.shape].concat();
        if t.shape() != want {
            return Err(format!(
                "`{}` has shape {:?}, expected {want:?}",
                s.path,
                t.shape()
            ));
        }
        let data = t.data().to_f64();
        let len = s.elements();
        for (k, row) in rows.iter_mut().enumerate() {
            row.extend_from_slice(&data[k * len..(k + 1) * len]);
        }
    }
    Ok(rows)
}

/// `inputs` moved by `step · direction` over `slots`, in each slot's dtype.
pub fn perturb(inputs: &Tree, slots: &[Slot], direction: &[f64], step: f64) -> Tree {
    let mut out = inputs.clone();
    let mut offset = 0;
    for s in slots {
        let len = s.elements();
        if let Some(Leaf::Tensor(t)) = inputs.get(&s.path) {
            let moved: Vec<f64> = t
                .data()
                .to_f64()
                .iter()
                .zip(&direction[offset..offset + len])
                .map(|(x, d)| x + step * d)
                .collect();
            if let Ok(t) = Tensor::new(s.shape.clone(), Data::from_f64(s.dtype, &moved)) {
                out.insert(s.path.clone(), Leaf::Tensor(t));
            }
        }
        offset += len;
    }
    out
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// `‖a − b‖ / max(‖a‖, ‖b‖, floor)`: 0 for equal vectors, 2 for opposite ones; `floor` keeps
/// two vectors that are both noise around zero from looking far apart.
pub fn relative_error(a: &[f64], b: &[f64], floor: f64) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let err = norm(&diff) / norm(a).max(norm(b)).max(floor);
    if err.is_nan() { f64::INFINITY } else { err }
}

#[cfg(test)]
mod tests {
    use tesseract_model::schema::Field;

    use super::*;

    fn field(path: &str, kind: FieldKind, default: Option<&str>) -> Field {
        Field {
            path: path.into(),
            kind,
            description: String::new(),
            default: default.map(str::to_owned),
        }
    }

    fn array(dtype: DType, dims: Vec<Dim>) -> FieldKind {
        FieldKind::Array(ArraySpec {
            dtype,
            shape: ShapeSpec::Ranked(dims),
            differentiable: true,
        })
    }

    #[test]
    fn generates_declared_shapes_dtypes_and_defaults() {
        let info = Info {
            name: "t".into(),
            version: "0".into(),
            description: String::new(),
            inputs: vec![
                field(
                    "a",
                    array(DType::Float32, vec![Dim::Any, Dim::Fixed(2)]),
                    None,
                ),
                field("c", array(DType::Float64, vec![]), Some("0.5")),
                field(
                    "n",
                    FieldKind::Plain {
                        json_schema: r#"{"type":"integer"}"#.into(),
                    },
                    Some("7"),
                ),
            ],
            outputs: vec![],
        };
        let tree = generate(&info, &mut Random::new(1)).expect("generated");
        let Some(Leaf::Tensor(a)) = tree.get("a") else {
            panic!("no a in {tree:?}")
        };
        assert_eq!((a.shape(), a.dtype()), (&[ANY_DIM, 2][..], DType::Float32));
        let Some(Leaf::Tensor(c)) = tree.get("c") else {
            panic!("no c")
        };
        let c = c.data().to_f64()[0];
        assert!(
            (c - 0.5).abs() <= 0.1 && c != 0.5,
            "{c} should be near its default"
        );
        assert_eq!(
            tree.get("n"),
            Some(&Leaf::Plain(tesseract_model::Plain::Int(7)))
        );
        assert_eq!(
            generate(&info, &mut Random::new(1)),
            Ok(tree),
            "a seed reproduces a point"
        );
    }

    #[test]
    fn flat_round_trip_and_errors() {
        let slots = vec![
            Slot {
                path: "x".into(),
                shape: vec![2],
                dtype: DType::Float64,
            },
            Slot {
                path: "w".into(),
                shape: vec![],
                dtype: DType::Float32,
            },
        ];
        let flat = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let batched = unflatten(&flat, &slots, 2, true);
        assert_eq!(batched["x"].shape(), &[2, 2]);
        assert_eq!(
            flatten_batch(&batched, &slots, 2),
            Ok(vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]])
        );
        let single = unflatten(&flat[..3], &slots, 1, false);
        assert_eq!(flatten(&single, &slots, &[]), Ok(vec![1.0, 2.0, 3.0]));
        assert_eq!(relative_error(&[1.0, 0.0], &[-1.0, 0.0], 1e-9), 2.0);
        assert_eq!(relative_error(&[0.0], &[0.0], 1e-9), 0.0);
    }
}
