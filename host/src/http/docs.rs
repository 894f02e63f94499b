//! `/docs`: a self-contained HTML page for people (no scripts, no network): the component,
//! its endpoints and how each is served, its fields, and a pointer to `/openapi.json`.

use std::fmt::Write;

use tesseract_model::schema::{Dim, Field, FieldKind, Info, ShapeSpec};

use crate::planner::{Endpoint, Route};

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn kind(field: &Field) -> String {
    match &field.kind {
        FieldKind::Array(a) => {
            let shape = match &a.shape {
                ShapeSpec::AnyRank => "any shape".to_owned(),
                ShapeSpec::Ranked(dims) if dims.is_empty() => "scalar".to_owned(),
                ShapeSpec::Ranked(dims) => {
                    let dims: Vec<String> = dims
                        .iter()
                        .map(|d| match d {
                            Dim::Fixed(n) => n.to_string(),
                            Dim::Any => "None".to_owned(),
                        })
                        .collect();
                    format!("({})", dims.join(", "))
                }
            };
            let diff = if a.differentiable {
                ", differentiable"
            } else {
                ""
            };
            format!("{} {shape}{diff}", a.dtype.name())
        }
        FieldKind::Plain { json_schema } => json_schema.clone(),
    }
}

/// A table of fields; inputs get a default column (outputs have no defaults).
fn fields_table(out: &mut String, heading: &str, fields: &[Field], defaults: bool) {
    let default_th = if defaults { "<th>default</th>" } else { "" };
    let _ = write!(
        out,
        "<h2>{heading}</h2>\n<table><tr><th>path</th><th>type</th>{default_th}<th>description</th></tr>\n"
    );
    for f in fields {
        let default_td = if defaults {
            let d = f.default.as_deref().map_or("required".to_owned(), |d| {
                format!("<code>{}</code>", escape(d))
            });
            format!("<td>{d}</td>")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td>{default_td}<td>{}</td></tr>",
            escape(&f.path),
            escape(&kind(f)),
            escape(&f.description),
        );
    }
    out.push_str("</table>\n");
}

/// The page for `info`, served as `served` says, writing `formats`.
pub fn page(info: &Info, served: &[(Endpoint, Route)], formats: &[&str]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{name} {version}</title>\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}</style>\
         </head><body>\n<h1>{name} <small>{version}</small></h1>\n<p>{description}</p>\n\
         <p>Served by tesseract-wasm with tesseract-core's HTTP API. The machine-readable \
         description is <a href=\"openapi.json\">/openapi.json</a>.</p>\n",
        name = escape(&info.name),
        version = escape(&info.version),
        description = escape(&info.description),
    );
    out.push_str("<h2>Endpoints</h2>\n<table><tr><th>route</th><th>served</th></tr>\n");
    for (endpoint, route) in served {
        let _ = writeln!(
            out,
            "<tr><td><code>POST /{}</code></td><td>{}</td></tr>",
            endpoint.name(),
            escape(&route.to_string())
        );
    }
    out.push_str(
        "<tr><td><code>GET /health</code></td><td>always</td></tr>\n\
         <tr><td><code>GET /openapi.json</code></td><td>always</td></tr>\n\
         <tr><td><code>GET /docs</code></td><td>always (this page)</td></tr>\n</table>\n\
         <p>Response encodings (<code>Accept: application/&lt;format&gt;</code>, optional \
         <code>; compression=lz4</code>): ",
    );
    out.push_str(&escape(&formats.join(", ")));
    out.push_str(
        ".</p>\n<p>jvp and vjp take many (co)tangents in one request: extra leading axes on \
         <code>tangent_vector</code> / <code>cotangent_vector</code> entries form a batch, and \
         the results carry the same leading axes. See the operation descriptions in \
         /openapi.json.</p>\n",
    );
    fields_table(&mut out, "Inputs", &info.inputs, true);
    fields_table(&mut out, "Outputs", &info.outputs, false);
    out.push_str("</body></html>\n");
    out
}
