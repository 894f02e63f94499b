//! Loading a component: compile (or fetch from the cache), check it is a Tesseract, read its
//! exports into [`Capabilities`] and its metadata into an [`Info`], and keep an
//! [`InstancePre`] so each call instantiates in microseconds.
//!
//! The typed `call_*` methods each run on a fresh instance in a fresh store (see `sandbox`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tesseract_model::schema::Info;
use tesseract_model::{AbstractTree, JacobianBlocks, Tree, Vectors};
use wasmtime::Store;
use wasmtime::component::{Component, Instance, InstancePre};

use crate::bindings::{
    self, abstract_eval, batched_jvp, batched_vjp, jacobian, jvp, required, vjp,
};
use crate::cache::CacheOutcome;
use crate::engine::{Engine, Limits};
use crate::planner::Capabilities;
use crate::sandbox::{self, CallError, HostState};

/// The package this host speaks.
pub const PACKAGE: &str = "tesseract:component";
/// The package version this host speaks.
pub const VERSION: &str = "0.1.0";

/// Why a file could not be loaded as a Tesseract.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read component {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a WebAssembly file", .path.display())]
    NotWasm { path: PathBuf },
    #[error("{} is a core wasm module, not a component: build it for wasm32-wasip2 (`tesseract-wasm build <crate-dir>`)", .path.display())]
    CoreModule { path: PathBuf },
    #[error("cannot compile {}: {message}", .path.display())]
    Compile { path: PathBuf, message: String },
    #[error("{} is not a Tesseract: it does not export `{PACKAGE}/tesseract@{VERSION}` (its exports: {exports})", .path.display())]
    NotATesseract { path: PathBuf, exports: String },
    #[error("{} was built against {found}, but this host speaks {PACKAGE}@{VERSION}: rebuild it with a matching tesseract-guest", .path.display())]
    WrongVersion { path: PathBuf, found: String },
    #[error("{} needs imports this host does not provide (only WASI 0.2 is available): {message}", .path.display())]
    Link { path: PathBuf, message: String },
    #[error("{} exports `{interface}` with the wrong signature: {message}", .path.display())]
    BadExport {
        path: PathBuf,
        interface: String,
        message: String,
    },
    #[error("{} failed while reporting its metadata", .path.display())]
    Metadata {
        path: PathBuf,
        #[source]
        source: CallError,
    },
    #[error("{} declares an invalid schema: {message}", .path.display())]
    InvalidSchema { path: PathBuf, message: String },
}

struct Indices {
    tesseract: required::GuestIndices,
    jacobian: Option<jacobian::GuestIndices>,
    jvp: Option<jvp::GuestIndices>,
    vjp: Option<vjp::GuestIndices>,
    abstract_eval: Option<abstract_eval::GuestIndices>,
    batched_jvp: Option<batched_jvp::GuestIndices>,
    batched_vjp: Option<batched_vjp::GuestIndices>,
}

/// A loaded Tesseract component. Cheap to share across threads (`Arc`).
pub struct Tesseract {
    engine: wasmtime::Engine,
    pre: InstancePre<HostState>,
    indices: Indices,
    capabilities: Capabilities,
    info: Info,
    limits: Limits,
    cache: CacheOutcome,
    path: PathBuf,
}

fn interface_name(name: &str) -> String {
    format!("{PACKAGE}/{name}@{VERSION}")
}

/// Resolves an optional interface: absent is `None`, present but malformed is an error.
fn optional<T>(
    component: &Component,
    path: &Path,
    name: &str,
    new: impl FnOnce() -> wasmtime::Result<T>,
) -> Result<Option<T>, LoadError> {
    if component
        .get_export_index(None, interface_name(name))
        .is_none()
    {
        return Ok(None);
    }
    new().map(Some).map_err(|e| LoadError::BadExport {
        path: path.into(),
        interface: name.into(),
        message: format!("{e:#}"),
    })
}

impl Tesseract {
    /// Loads a `.wasm` component with `engine`.
    ///
    /// # Errors
    /// See [`LoadError`]: unreadable, not a component, not a Tesseract, the wrong contract
    /// version, unsatisfiable imports, or metadata that fails or is invalid.
    pub fn load(engine: &Engine, path: &Path) -> Result<Arc<Tesseract>, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.into(),
            source,
        })?;
        match bytes.get(..8) {
            Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => {}
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => {
                return Err(LoadError::CoreModule { path: path.into() });
            }
            _ => return Err(LoadError::NotWasm { path: path.into() }),
        }
        let compile_error = |e: wasmtime::Error| {
            let mut message = format!("{e:#}");
            // The pooling allocator's wording; its slots are --max-memory large.
            if message.contains("minimum byte size") && message.contains("exceeds the limit") {
                message.push_str(
                    " (the component's initial linear memory is larger than --max-memory allows)",
                );
            }
            LoadError::Compile {
                path: path.into(),
                message,
            }
        };
        let (component, cache) = match engine.cache() {
            Some(cache) => cache
                .load(engine.wasmtime(), &bytes)
                .map_err(compile_error)?,
            None => (
                Component::new(engine.wasmtime(), &bytes).map_err(compile_error)?,
                CacheOutcome::Disabled,
            ),
        };
        Self::from_component(engine, path, component, cache)
    }

    fn from_component(
        engine: &Engine,
        path: &Path,
        component: Component,
        cache: CacheOutcome,
    ) -> Result<Arc<Tesseract>, LoadError> {
        check_world(engine, path, &component)?;
        let pre = engine
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link {
                path: path.into(),
                message: format!("{e:#}"),
            })?;
        let bad = |interface: &str| {
            let interface = interface.to_owned();
            move |e: wasmtime::Error| LoadError::BadExport {
                path: path.into(),
                interface,
                message: format!("{e:#}"),
            }
        };
        let indices = Indices {
            tesseract: required::GuestIndices::new(&pre).map_err(bad("tesseract"))?,
            jacobian: optional(&component, path, "jacobian", || {
                jacobian::GuestIndices::new(&pre)
            })?,
            jvp: optional(&component, path, "jvp", || jvp::GuestIndices::new(&pre))?,
            vjp: optional(&component, path, "vjp", || vjp::GuestIndices::new(&pre))?,
            abstract_eval: optional(&component, path, "abstract-eval", || {
                abstract_eval::GuestIndices::new(&pre)
            })?,
            batched_jvp: optional(&component, path, "batched-jvp", || {
                batched_jvp::GuestIndices::new(&pre)
            })?,
            batched_vjp: optional(&component, path, "batched-vjp", || {
                batched_vjp::GuestIndices::new(&pre)
            })?,
        };
        let capabilities = Capabilities {
            jacobian: indices.jacobian.is_some(),
            jvp: indices.jvp.is_some(),
            vjp: indices.vjp.is_some(),
            abstract_eval: indices.abstract_eval.is_some(),
            batched_jvp: indices.batched_jvp.is_some(),
            batched_vjp: indices.batched_vjp.is_some(),
        };
        let mut loaded = Tesseract {
            engine: engine.wasmtime().clone(),
            pre,
            indices,
            capabilities,
            info: Info {
                name: String::new(),
                version: String::new(),
                description: String::new(),
                inputs: vec![],
                outputs: vec![],
            },
            limits: engine.limits().clone(),
            cache,
            path: path.into(),
        };
        // One instantiation at load time checks every export's signature (GuestIndices::new
        // only checks names) and reads the metadata, so requests never meet a bad export.
        let info = loaded
            .run("metadata", async |store, instance, ix| {
                if let Some(x) = &ix.jacobian {
                    x.load(&mut *store, instance)?;
                }
                if let Some(x) = &ix.jvp {
                    x.load(&mut *store, instance)?;
                }
                if let Some(x) = &ix.vjp {
                    x.load(&mut *store, instance)?;
                }
                if let Some(x) = &ix.abstract_eval {
                    x.load(&mut *store, instance)?;
                }
                if let Some(x) = &ix.batched_jvp {
                    x.load(&mut *store, instance)?;
                }
                if let Some(x) = &ix.batched_vjp {
                    x.load(&mut *store, instance)?;
                }
                let t = ix.tesseract.load(&mut *store, instance)?;
                t.call_metadata(&mut *store).await
            })
            .map_err(|source| match source {
                CallError::Host(message) => LoadError::BadExport {
                    path: path.into(),
                    interface: "tesseract".into(),
                    message,
                },
                source => LoadError::Metadata {
                    path: path.into(),
                    source,
                },
            })?;
        let info = bindings::info_in(info).map_err(|e| LoadError::InvalidSchema {
            path: path.into(),
            message: e.0,
        })?;
        check_info(&info).map_err(|message| LoadError::InvalidSchema {
            path: path.into(),
            message,
        })?;
        loaded.info = info;
        Ok(Arc::new(loaded))
    }

    pub fn info(&self) -> &Info {
        &self.info
    }

    /// What the component exports, read from the component itself.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Whether this load compiled the component or found it in the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Runs `f` on a fresh instance in a fresh store, and maps every failure to a [`CallError`].
    fn run<R: Send>(
        &self,
        what: &'static str,
        f: impl AsyncFnOnce(&mut Store<HostState>, &Instance, &Indices) -> wasmtime::Result<R> + Send,
    ) -> Result<R, CallError> {
        crate::drive::where_calls_may_block(|| {
            let mut store = sandbox::new_store(&self.engine, &self.limits);
            let result = crate::drive::drive(async {
                let instance = self.pre.instantiate_async(&mut store).await?;
                f(&mut store, &instance, &self.indices).await
            });
            let stderr = sandbox::drain_output(&store, &what);
            result.map_err(|e| sandbox::classify(&e, &store, &stderr, &self.limits))
        })
    }

    fn unsupported(what: &str) -> CallError {
        CallError::Unsupported(format!("the `{what}` export"))
    }

    /// Instantiates the component in a fresh store and drops it: what every call pays before
    /// the guest runs. For benchmarks and health checks.
    ///
    /// # Errors
    /// When instantiation fails (e.g. no free instance slot).
    pub fn instantiate(&self) -> Result<(), CallError> {
        self.run("instantiate", async |_, _, _| Ok(()))
    }

    /// `tesseract.apply` on a fresh instance. Takes the inputs so that their buffers move into
    /// the call instead of being copied (a 10⁶-element array is megabytes).
    ///
    /// # Errors
    /// A [`CallError`] for guest errors, traps, limits and contract violations.
    pub fn call_apply(&self, inputs: Tree) -> Result<Tree, CallError> {
        let arg = bindings::tree_into(inputs);
        let out = self.run("apply", async |s, i, ix| {
            ix.tesseract
                .load(&mut *s, i)?
                .call_apply(&mut *s, &arg)
                .await
        })?;
        Ok(bindings::tree_in(
            out.map_err(|e| CallError::Guest(bindings::error_in(e)))?,
        )?)
    }

    /// `jacobian.jacobian` on a fresh instance.
    ///
    /// # Errors
    /// As [`Tesseract::call_apply`], or [`CallError::Unsupported`] without the export.
    pub fn call_jacobian(
        &self,
        inputs: &Tree,
        jac_inputs: &[String],
        jac_outputs: &[String],
    ) -> Result<JacobianBlocks, CallError> {
        let ix = self
            .indices
            .jacobian
            .as_ref()
            .ok_or_else(|| Self::unsupported("jacobian"))?;
        let arg = bindings::tree_out(inputs);
        let out = self.run("jacobian", async |s, i, _| {
            ix.load(&mut *s, i)?
                .call_jacobian(&mut *s, &arg, jac_inputs, jac_outputs)
                .await
        })?;
        Ok(bindings::blocks_in(
            out.map_err(|e| CallError::Guest(bindings::error_in(e)))?,
        )?)
    }

    /// `jvp.jacobian-vector-product` on a fresh instance. `inputs` is already lowered so a
    /// looped batch lowers the primal once.
    ///
    /// # Errors
    /// As [`Tesseract::call_jacobian`].
    pub fn call_jvp(
        &self,
        inputs: &LoweredTree,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangent: &Vectors,
    ) -> Result<Vectors, CallError> {
        let ix = self
            .indices
            .jvp
            .as_ref()
            .ok_or_else(|| Self::unsupported("jvp"))?;
        let t = bindings::vectors_out(tangent);
        let out = self.run("jvp", async |s, i, _| {
            ix.load(&mut *s, i)?
                .call_jacobian_vector_product(&mut *s, &inputs.0, jvp_inputs, jvp_outputs, &t)
                .await
        })?;
        Ok(bindings::vectors_in(
            out.map_err(|e| CallError::Guest(bindings::error_in(e)))?,
        )?)
    }

    /// `vjp.vector-jacobian-product` on a fresh instance.
    ///
    /// # Errors
    /// As [`Tesseract::call_jacobian`].
    pub fn call_vjp(
        &self,
        inputs: &LoweredTree,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangent: &Vectors,
    ) -> Result<Vectors, CallError> {
        let ix = self
            .indices
            .vjp
            .as_ref()
            .ok_or_else(|| Self::unsupported("vjp"))?;
        let c = bindings::vectors_out(cotangent);
        let out = self.run("vjp", async |s, i, _| {
            ix.load(&mut *s, i)?
                .call_vector_jacobian_product(&mut *s, &inputs.0, vjp_inputs, vjp_outputs, &c)
                .await
        })?;
        Ok(bindings::vectors_in(
            out.map_err(|e| CallError::Guest(bindings::error_in(e)))?,
        )?)
    }

    /// `batched-jvp` on a fresh instance: `count` tangents stacked on a leading axis.
    ///
    /// # Errors
    /// As [`Tesseract::call_jacobian`].
    pub fn call_batched_jvp(
        &self,
        inputs: &Tree,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangents: &Vectors,
        count: u32,
    ) -> Result<Vectors, CallError> {
        let ix = self
            .indices
            .batched_jvp
            .as_ref()
            .ok_or_else(|| Self::unsupported("batched-jvp"))?;
        let arg = bindings::tree_out(inputs);
        let t = bindings::vectors_out(tangents);
        let out = self.run("batched-jvp", async |s, i, _| {
            ix.load(&mut *s, i)?
                .call_batched_jacobian_vector_product(
                    &mut *s,
                    &arg,
                    jvp_inputs,
                    jvp_outputs,
                    &t,
                    count,
                )
                .await
        })?;
        Ok(bindings::vectors_in(
            out.map_err(|e| CallError::Guest(bindings::error_in(e)))?,
        )?)
    }

    /// `batched-vjp` on a fresh instance: `count` cotangents stacked on a leading axis.
    ///
    /// # Errors
    /// As [`Tesseract::call_jacobian`].
    pub fn call_batched_vjp(
        &self,
        inputs: &Tree,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangents: &Vectors,
        count: u32,
    ) -> Result<Vectors, CallError> {
        let ix = self
            .indices
            .batched_vjp
            .as_ref()
            .ok_or_else(|| Self::unsupported("batched-vjp"))?;
        let arg = bindings::tree_out(inputs);
        let c = bindings::vectors_out(cotangents);
        let out = self.run("batched-vjp", async |s, i, _| {
            ix.load(&mut *s, i)?
                .call_batched_vector_jacobian_product(
                    &mut *s,
                    &arg,
                    vjp_inputs,
                    vjp_outputs,
                    &c,
                    count,
                )
                .await
        })?;
        Ok(bindings::vectors_in(
            out.map_err(|e| CallError::Guest(bindings::error_in(e)))?,
        )?)
    }

    /// `abstract-eval` on a fresh instance.
    ///
    /// # Errors
    /// As [`Tesseract::call_jacobian`].
    pub fn call_abstract_eval(&self, inputs: &AbstractTree) -> Result<AbstractTree, CallError> {
        let ix = self
            .indices
            .abstract_eval
            .as_ref()
            .ok_or_else(|| Self::unsupported("abstract-eval"))?;
        let arg = bindings::abstract_out(inputs);
        let out = self.run("abstract-eval", async |s, i, _| {
            ix.load(&mut *s, i)?.call_abstract_eval(&mut *s, &arg).await
        })?;
        Ok(bindings::abstract_in(
            out.map_err(|e| CallError::Guest(bindings::error_in(e)))?,
        )?)
    }
}

/// A tree already converted to the guest's representation, for calls that reuse one primal.
pub struct LoweredTree(Vec<(String, bindings::w::Leaf)>);

impl LoweredTree {
    pub fn new(tree: &Tree) -> LoweredTree {
        LoweredTree(bindings::tree_out(tree))
    }
}

/// Fails clearly when the component is not a Tesseract or speaks another contract version.
fn check_world(engine: &Engine, path: &Path, component: &Component) -> Result<(), LoadError> {
    if component
        .get_export_index(None, interface_name("tesseract"))
        .is_some()
    {
        return Ok(());
    }
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine.wasmtime())
        .map(|(name, _)| name.to_owned())
        .collect();
    let prefix = format!("{PACKAGE}/tesseract@");
    if let Some(found) = exports.iter().find(|n| n.starts_with(&prefix)) {
        let version = found.trim_start_matches(&prefix);
        return Err(LoadError::WrongVersion {
            path: path.into(),
            found: format!("{PACKAGE}@{version}"),
        });
    }
    let exports = if exports.is_empty() {
        "none".to_owned()
    } else {
        exports.join(", ")
    };
    Err(LoadError::NotATesseract {
        path: path.into(),
        exports,
    })
}

/// Rejects metadata the host could not enforce: bad path templates, duplicate fields, defaults
/// or JSON Schemas that are not JSON, and array defaults that do not fit their own field (every
/// request leaving the field out would be refused, blaming a value the client never sent).
fn check_info(info: &Info) -> Result<(), String> {
    use tesseract_model::path::TemplateSegment;
    use tesseract_model::schema::FieldKind;
    for (side, fields) in [("input", &info.inputs), ("output", &info.outputs)] {
        let mut seen = std::collections::BTreeSet::new();
        for f in fields {
            let segments = tesseract_model::path::parse_template(&f.path);
            if segments.iter().any(|s| matches!(s, TemplateSegment::Field(n) if n.is_empty() || n.contains(['[', ']', '{', '}']))) {
                return Err(format!("{side} field `{}` is not a valid path template", f.path));
            }
            if !seen.insert(f.path.as_str()) {
                return Err(format!("{side} field `{}` is declared twice", f.path));
            }
            if let Some(d) = &f.default {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(d) else {
                    return Err(format!(
                        "the default of {side} field `{}` is not JSON: {d}",
                        f.path
                    ));
                };
                if side == "input" {
                    check_default(f, &value)?;
                }
            }
            if let FieldKind::Plain { json_schema } = &f.kind
                && serde_json::from_str::<serde_json::Value>(json_schema).is_err()
            {
                return Err(format!(
                    "the JSON Schema of {side} field `{}` is not JSON",
                    f.path
                ));
            }
        }
    }
    Ok(())
}

/// Validates an input field's default as a request's missing field is filled from it: an array
/// default goes through the same decoding, shape check and cast (`null` is `Optional[Array]`'s
/// absent leaf). Plain defaults pass through unvalidated on the request path, as pydantic does
/// not validate defaults, so they are not judged here either.
fn check_default(
    field: &tesseract_model::schema::Field,
    value: &serde_json::Value,
) -> Result<(), String> {
    use tesseract_model::schema::FieldKind;
    let FieldKind::Array(spec) = &field.kind else {
        return Ok(());
    };
    if value.is_null() {
        return Ok(());
    }
    // Defaults never name files: no binref root, as for abstract_eval's defaults.
    crate::schema::decode_for_spec(value, spec, &crate::codec::DecodeOptions::default())
        .map(drop)
        .map_err(|e| {
            format!(
                "the default of input field `{}` ({value}) is not {}: {e}",
                field.path,
                describe(spec)
            )
        })
}

/// `a float64 scalar`, `a float64 array of shape (None, 3)`, `a float64 array`.
fn describe(spec: &tesseract_model::schema::ArraySpec) -> String {
    use tesseract_model::schema::{Dim, ShapeSpec};
    let dtype = spec.dtype.name();
    let a = if dtype.starts_with("int") { "an" } else { "a" };
    match &spec.shape {
        ShapeSpec::AnyRank => format!("{a} {dtype} array"),
        ShapeSpec::Ranked(dims) if dims.is_empty() => format!("{a} {dtype} scalar"),
        ShapeSpec::Ranked(dims) => {
            let dims: Vec<String> = dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => n.to_string(),
                    Dim::Any => "None".to_owned(),
                })
                .collect();
            let shape = match dims.as_slice() {
                [one] => format!("({one},)"),
                _ => format!("({})", dims.join(", ")),
            };
            format!("{a} {dtype} array of shape {shape}")
        }
    }
}

#[cfg(test)]
mod tests {
    use tesseract_model::DType;
    use tesseract_model::schema::{ArraySpec, Dim, Field, FieldKind, Info, ShapeSpec};

    use super::check_info;

    fn array(path: &str, dtype: DType, dims: Vec<Dim>, default: &str) -> Field {
        Field {
            path: path.into(),
            kind: FieldKind::Array(ArraySpec {
                dtype,
                shape: ShapeSpec::Ranked(dims),
                differentiable: false,
            }),
            description: String::new(),
            default: Some(default.into()),
        }
    }

    fn info(inputs: Vec<Field>, outputs: Vec<Field>) -> Info {
        Info {
            name: "t".into(),
            version: "0.1.0".into(),
            description: String::new(),
            inputs,
            outputs,
        }
    }

    fn inputs(fields: Vec<Field>) -> Result<(), String> {
        check_info(&info(fields, Vec::new()))
    }

    #[test]
    fn a_default_that_is_not_its_fields_dtype_is_refused_naming_field_value_and_type() {
        let err = inputs(vec![array("k", DType::Float64, vec![], r#""abc""#)])
            .expect_err("a string is not a float64 scalar");
        assert!(
            err.starts_with(r#"the default of input field `k` ("abc") is not a float64 scalar: "#),
            "{err}"
        );
        // The reason is the request path's own message.
        assert!(
            err.ends_with("Could not parse value as a numeric array (contains non-numeric data)"),
            "{err}"
        );
    }

    #[test]
    fn a_default_of_the_wrong_shape_or_an_uncastable_dtype_is_refused() {
        let shape = inputs(vec![array(
            "v",
            DType::Float64,
            vec![Dim::Fixed(3)],
            "[1.0, 2.0]",
        )])
        .expect_err("two elements where three are declared");
        assert!(
            shape.ends_with(
                "`v` ([1.0,2.0]) is not a float64 array of shape (3,): \
                 Array shape (2,) is incompatible with expected shape (3,)"
            ),
            "{shape}"
        );
        let cast =
            inputs(vec![array("n", DType::Int32, vec![], "1.5")]).expect_err("1.5 is not an int32");
        assert!(cast.contains("(1.5) is not an int32 scalar: "), "{cast}");
        // Nested templates are checked per leaf too.
        let nested = inputs(vec![array(
            "items.[].m",
            DType::Float64,
            vec![Dim::Any, Dim::Any],
            "[1.0]",
        )])
        .expect_err("rank 1 where rank 2 is declared");
        assert_eq!(
            nested,
            "the default of input field `items.[].m` ([1.0]) is not a float64 array of shape \
             (None, None): Array has wrong number of dimensions: got 1D, expected 2D"
        );
    }

    #[test]
    fn defaults_the_request_path_accepts_load() {
        inputs(vec![
            array("a", DType::Float64, vec![], "1.5"),
            array("b", DType::Float32, vec![Dim::Any], "[1, 2, 3]"),
            // Size 1 broadcasts to a fixed size, as in a request.
            array("c", DType::Float64, vec![Dim::Fixed(3)], "[0.5]"),
            // `Optional[Array] = None`.
            array("d", DType::Float64, vec![Dim::Any], "null"),
            Field {
                path: "e".into(),
                kind: FieldKind::Array(ArraySpec {
                    dtype: DType::Int64,
                    shape: ShapeSpec::AnyRank,
                    differentiable: false,
                }),
                description: String::new(),
                default: Some("[[1, 2], [3, 4]]".into()),
            },
            // pydantic does not validate plain defaults; neither does the request path.
            Field {
                path: "f".into(),
                kind: FieldKind::Plain {
                    json_schema: r#"{"type":"integer"}"#.into(),
                },
                description: String::new(),
                default: Some(r#""abc""#.into()),
            },
        ])
        .expect("every default fits its field");
        // Output defaults never fill anything: only JSON is asked of them.
        check_info(&info(
            Vec::new(),
            vec![array("y", DType::Float64, vec![], r#""abc""#)],
        ))
        .expect("an output's default is not used");
    }

    #[test]
    fn a_default_that_is_not_json_is_still_refused_as_such() {
        let err =
            inputs(vec![array("k", DType::Float64, vec![], "abc")]).expect_err("abc is not JSON");
        assert_eq!(err, "the default of input field `k` is not JSON: abc");
    }
}
