//! `tesseract-wasm inspect`: what a component is and how each endpoint would be served.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Value, json};
use tesseract_model::schema::{Dim, Field, FieldKind, ShapeSpec};

use super::EngineArgs;
use crate::planner::Endpoint;
use crate::runtime::Runtime;

/// Show a component's metadata, schemas and how every endpoint is served
///
/// Each endpoint is served natively (the component exports it), derived (computed from
/// other exports, e.g. a jvp contracted from the jacobian), looped (a batch run as parallel
/// scalar calls), or is unavailable.
#[derive(Debug, clap::Args)]
pub struct Inspect {
    /// The component (.wasm)
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Print JSON instead of text
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    engine: EngineArgs,
}

fn shape_text(shape: &ShapeSpec) -> String {
    match shape {
        ShapeSpec::AnyRank => "[...]".into(),
        ShapeSpec::Ranked(dims) if dims.is_empty() => "scalar".into(),
        ShapeSpec::Ranked(dims) => {
            let dims: Vec<String> = dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => n.to_string(),
                    Dim::Any => "None".into(),
                })
                .collect();
            format!("[{}]", dims.join(", "))
        }
    }
}

fn field_json(f: &Field) -> Value {
    let default: Value = f
        .default
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    match &f.kind {
        FieldKind::Array(a) => json!({
            "path": f.path, "kind": "array", "dtype": a.dtype.name(),
            "shape": match &a.shape {
                ShapeSpec::AnyRank => Value::Null,
                ShapeSpec::Ranked(dims) => dims.iter().map(|d| match d { Dim::Fixed(n) => json!(n), Dim::Any => Value::Null }).collect(),
            },
            "differentiable": a.differentiable, "description": f.description, "default": default,
        }),
        FieldKind::Plain { json_schema } => json!({
            "path": f.path, "kind": "plain",
            "json_schema": serde_json::from_str::<Value>(json_schema).unwrap_or(Value::Null),
            "description": f.description, "default": default,
        }),
    }
}

fn field_line(f: &Field) -> String {
    let kind = match &f.kind {
        FieldKind::Array(a) => {
            let diff = if a.differentiable {
                ", differentiable"
            } else {
                ""
            };
            format!("{} {}{diff}", a.dtype, shape_text(&a.shape))
        }
        FieldKind::Plain { json_schema } => format!("plain {json_schema}"),
    };
    let default = f
        .default
        .as_deref()
        .map(|d| format!(" = {d}"))
        .unwrap_or_default();
    let description = if f.description.is_empty() {
        String::new()
    } else {
        format!("  {}", f.description)
    };
    format!("  {:<14} {kind}{default}{description}", f.path)
}

/// The inspect report as JSON, shared by `--json` and tests.
pub fn report(runtime: &Runtime) -> Value {
    let c = runtime.component();
    let info = c.info();
    let caps = c.capabilities();
    let endpoints: serde_json::Map<String, Value> = Endpoint::ALL
        .iter()
        .map(|&e| {
            let route = runtime.route(e);
            (e.name().to_owned(), json!({ "route": route.map(|r| r.name()), "description": route.map_or("unavailable".to_owned(), |r| r.to_string()) }))
        })
        .collect();
    json!({
        "name": info.name, "version": info.version, "description": info.description,
        "file": c.path().display().to_string(),
        "exports": {
            "jacobian": caps.jacobian, "jvp": caps.jvp, "vjp": caps.vjp, "abstract_eval": caps.abstract_eval,
            "batched_jvp": caps.batched_jvp, "batched_vjp": caps.batched_vjp,
        },
        "inputs": info.inputs.iter().map(field_json).collect::<Vec<_>>(),
        "outputs": info.outputs.iter().map(field_json).collect::<Vec<_>>(),
        "endpoints": endpoints,
    })
}

/// Writes the capability table as text.
pub fn write_endpoints(runtime: &Runtime, out: &mut dyn Write) -> std::io::Result<()> {
    for e in Endpoint::ALL {
        let route = runtime
            .route(e)
            .map_or("unavailable".to_owned(), |r| r.to_string());
        writeln!(out, "  {:<34} {route}", e.name())?;
    }
    Ok(())
}

impl Inspect {
    pub fn execute(self, out: &mut dyn Write) -> anyhow::Result<i32> {
        let engine = self.engine.engine()?;
        let runtime = self.engine.runtime(&engine, &self.file)?;
        if self.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&report(&runtime))?)?;
            return Ok(0);
        }
        let info = runtime.component().info();
        writeln!(out, "{} {}", info.name, info.version)?;
        if !info.description.is_empty() {
            writeln!(out, "{}", info.description)?;
        }
        writeln!(out, "\ninputs:")?;
        for f in &info.inputs {
            writeln!(out, "{}", field_line(f))?;
        }
        writeln!(out, "\noutputs:")?;
        for f in &info.outputs {
            writeln!(out, "{}", field_line(f))?;
        }
        writeln!(out, "\nendpoints:")?;
        write_endpoints(&runtime, out)?;
        Ok(0)
    }
}
