//! Serves every endpoint of a loaded component, along the route the [`planner`] picks.
//!
//! Inputs here are already validated (see `schema`); this layer decides *how* to compute:
//! the component's own export, a batch looped over fresh instances in parallel, a jvp/vjp
//! contracted from the jacobian, a jacobian assembled from basis vectors, or abstract_eval
//! from apply on zeros. Every answer says which route served it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tesseract_model::path;
use tesseract_model::schema::FieldKind;
use tesseract_model::{
    AbstractLeaf, AbstractTree, DType, JacobianBlocks, Leaf, ShapeDType, Tensor, Tree, Vectors,
};

use crate::component::{LoweredTree, Tesseract};
use crate::derive::{self, ShapeError, Slot};
use crate::planner::{self, Capabilities, Direction, Endpoint, Route};
use crate::sandbox::CallError;

mod abstract_cache;
use abstract_cache::AbstractCache;

/// A result and the route that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Served<T> {
    pub value: T,
    pub route: Route,
}

/// How a [`Runtime`] chooses routes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuntimeOptions {
    /// Serve batches by looping the scalar export even when a batched export exists. For
    /// debugging a batched export and for benchmarks.
    pub ignore_batched_exports: bool,
}

/// A component plus the capabilities this runtime will use.
#[derive(Clone)]
pub struct Runtime {
    component: Arc<Tesseract>,
    capabilities: Capabilities,
    /// Shared by clones: every request's `Runtime` is a clone of the served one.
    abstract_cache: Arc<AbstractCache>,
}

impl From<ShapeError> for CallError {
    fn from(e: ShapeError) -> CallError {
        CallError::Contract(e.0)
    }
}

fn count_u32(count: usize) -> Result<u32, CallError> {
    u32::try_from(count)
        .map_err(|_| CallError::InvalidRequest(format!("batch of {count} is too large")))
}

/// Total elements of `slots`; a guest reporting shapes that overflow breaks its contract.
fn elements(slots: &[Slot]) -> Result<usize, CallError> {
    slots
        .iter()
        .try_fold(0usize, |acc, s| {
            crate::codec::checked_numel(&s.shape).and_then(|n| acc.checked_add(n))
        })
        .ok_or_else(|| CallError::Contract("array shapes too large to address".into()))
}

/// Adds a leading axis of length 1.
fn batch_of_one(v: &Vectors) -> Result<Vectors, CallError> {
    v.iter()
        .map(|(p, t)| {
            let mut shape = vec![1];
            shape.extend_from_slice(t.shape());
            Ok((
                p.clone(),
                t.clone()
                    .reshape(shape)
                    .map_err(|e| CallError::Contract(e.to_string()))?,
            ))
        })
        .collect()
}

/// Removes a leading axis of length 1.
fn unbatch_one(v: Vectors) -> Result<Vectors, CallError> {
    v.into_iter()
        .map(|(p, t)| match t.shape().split_first() {
            Some((1, rest)) => {
                let rest = rest.to_vec();
                Ok((
                    p,
                    t.reshape(rest)
                        .map_err(|e| CallError::Contract(e.to_string()))?,
                ))
            }
            _ => Err(CallError::Contract(format!(
                "batched result `{p}` lacks its batch axis of 1"
            ))),
        })
        .collect()
}

/// Checks every (co)tangent carries a leading batch axis of `count`.
fn leading_axis(v: &Vectors, count: usize) -> Result<(), CallError> {
    match v.iter().find(|(_, t)| t.shape().first() != Some(&count)) {
        Some((p, t)) => Err(CallError::InvalidRequest(format!(
            "`{p}` has shape {:?}, expected a leading batch axis of {count}",
            t.shape()
        ))),
        None => Ok(()),
    }
}

/// Splits K stacked (co)tangents into K maps.
fn unstack(v: &Vectors, count: usize) -> Result<Vec<Vectors>, CallError> {
    leading_axis(v, count)?;
    let mut out = vec![Vectors::new(); count];
    for (p, t) in v {
        for (k, part) in t
            .unstack()
            .map_err(|e| CallError::InvalidRequest(e.to_string()))?
            .into_iter()
            .enumerate()
        {
            out[k].insert(p.clone(), part);
        }
    }
    Ok(out)
}

/// Stacks K result maps, which must agree in keys and shapes.
fn stack(parts: Vec<Vectors>) -> Result<Vectors, CallError> {
    let Some(first) = parts.first() else {
        return Ok(Vectors::new());
    };
    let keys: Vec<String> = first.keys().cloned().collect();
    let mut out = Vectors::new();
    for key in keys {
        let column: Vec<Tensor> = parts
            .iter()
            .map(|p| {
                p.get(&key).cloned().ok_or_else(|| {
                    CallError::Contract(format!("a looped call did not return `{key}`"))
                })
            })
            .collect::<Result<_, _>>()?;
        out.insert(
            key.clone(),
            Tensor::stack(&column).map_err(|e| {
                CallError::Contract(format!("looped results for `{key}` disagree: {e}"))
            })?,
        );
    }
    if parts.iter().any(|p| p.len() != out.len()) {
        return Err(CallError::Contract(
            "looped calls returned different outputs".into(),
        ));
    }
    Ok(out)
}

impl Runtime {
    pub fn new(component: Arc<Tesseract>, options: RuntimeOptions) -> Runtime {
        let caps = component.capabilities();
        let capabilities = if options.ignore_batched_exports {
            caps.without_batched()
        } else {
            caps
        };
        Runtime {
            component,
            capabilities,
            abstract_cache: Arc::default(),
        }
    }

    pub fn component(&self) -> &Arc<Tesseract> {
        &self.component
    }

    /// The capabilities routes are planned from (batched exports hidden if so configured).
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// The route `endpoint` would take, or `None` if it cannot be served.
    pub fn route(&self, endpoint: Endpoint) -> Option<Route> {
        planner::plan(endpoint, self.capabilities)
    }

    fn plan(&self, endpoint: Endpoint) -> Result<Route, CallError> {
        self.route(endpoint)
            .ok_or_else(|| CallError::Unsupported(endpoint.name().to_owned()))
    }

    /// The declared dtype of a concrete path, on the input or output side.
    fn declared_dtype(&self, concrete: &str, output: bool) -> Option<DType> {
        let template = path::template(&path::parse(concrete).ok()?);
        let info = self.component.info();
        let field = if output {
            info.output(&template)
        } else {
            info.input(&template)
        }?;
        match &field.kind {
            FieldKind::Array(a) => Some(a.dtype),
            FieldKind::Plain { .. } => None,
        }
    }

    fn dtypes(&self, paths: &[String], output: bool) -> BTreeMap<String, DType> {
        paths
            .iter()
            .filter_map(|p| Some((p.clone(), self.declared_dtype(p, output)?)))
            .collect()
    }

    /// # Errors
    /// See [`CallError`].
    pub fn apply(&self, inputs: Tree) -> Result<Served<Tree>, CallError> {
        Ok(Served {
            value: self.component.call_apply(inputs)?,
            route: Route::Native,
        })
    }

    /// # Errors
    /// See [`CallError`].
    pub fn jacobian(
        &self,
        inputs: &Tree,
        jac_inputs: &[String],
        jac_outputs: &[String],
    ) -> Result<Served<JacobianBlocks>, CallError> {
        let route = self.plan(Endpoint::Jacobian)?;
        let value = match route {
            Route::Native => self
                .component
                .call_jacobian(inputs, jac_inputs, jac_outputs)?,
            _ => self.jacobian_from_basis(inputs, jac_inputs, jac_outputs)?,
        };
        Ok(Served { value, route })
    }

    fn input_slots(&self, inputs: &Tree, paths: &[String]) -> Result<Vec<Slot>, CallError> {
        paths
            .iter()
            .map(|p| match inputs.get(p) {
                Some(Leaf::Tensor(t)) => Ok(Slot {
                    path: p.clone(),
                    shape: t.shape().to_vec(),
                    dtype: t.dtype(),
                }),
                _ => Err(CallError::InvalidRequest(format!(
                    "`{p}` is not an array input"
                ))),
            })
            .collect()
    }

    /// Output shapes, from abstract_eval when exported, else from apply itself.
    fn output_slots(&self, inputs: &Tree, paths: &[String]) -> Result<Vec<Slot>, CallError> {
        let shapes: BTreeMap<String, ShapeDType> = if self.capabilities.abstract_eval {
            self.component
                .call_abstract_eval(&abstract_of(inputs))?
                .into_iter()
                .filter_map(|(p, l)| match l {
                    AbstractLeaf::Array(sd) => Some((p, sd)),
                    AbstractLeaf::Plain(_) => None,
                })
                .collect()
        } else {
            self.component
                .call_apply(inputs.clone())?
                .into_iter()
                .filter_map(|(p, l)| match l {
                    Leaf::Tensor(t) => Some((
                        p,
                        ShapeDType {
                            shape: t.shape().to_vec(),
                            dtype: t.dtype(),
                        },
                    )),
                    Leaf::Plain(_) => None,
                })
                .collect()
        };
        paths
            .iter()
            .map(|p| {
                let sd = shapes.get(p).ok_or_else(|| {
                    CallError::Contract(format!(
                        "output `{p}` is not an array the component returns"
                    ))
                })?;
                Ok(Slot {
                    path: p.clone(),
                    shape: sd.shape.clone(),
                    dtype: sd.dtype,
                })
            })
            .collect()
    }

    /// Basis vectors over `slots`, refused before allocating when the K×K stack could not fit
    /// in one guest's memory, or would be larger than a result may be (`--max-result-size`):
    /// the host holds the basis, its copy for the guest, the products and the assembled
    /// blocks, so a small request must not make it hold gigabytes. Also refused when there is
    /// nothing to differentiate.
    fn basis(&self, slots: &[Slot]) -> Result<(Vectors, usize), CallError> {
        let k = elements(slots)?;
        if k == 0 {
            return Err(CallError::InvalidRequest(
                "the jacobian is empty: the requested arrays have no elements".into(),
            ));
        }
        let bytes = (k as u64).saturating_mul(k as u64).saturating_mul(8);
        let limits = self.component.limits();
        if bytes > limits.max_memory_bytes {
            return Err(CallError::InvalidRequest(format!(
                "this component has no jacobian export, and assembling one from {k} basis vectors needs {bytes} bytes, more than the {}-byte guest memory cap (--max-memory); ask for fewer jac_inputs/jac_outputs",
                limits.max_memory_bytes
            )));
        }
        if bytes > limits.max_result_bytes {
            return Err(CallError::InvalidRequest(format!(
                "this component has no jacobian export, and assembling one from {k} basis vectors needs {bytes} bytes, more than the {}-byte result limit (--max-result-size); ask for fewer jac_inputs/jac_outputs",
                limits.max_result_bytes
            )));
        }
        Ok(derive::basis(slots)?)
    }

    /// A derived jacobian is a result like a native one: refused when its blocks would pass
    /// `--max-result-size`, before any basis vector is built when the output sizes are known
    /// (for a forward-only component, once the products are back and before assembly).
    fn check_jacobian_size(&self, n_in: usize, n_out: usize) -> Result<(), CallError> {
        let bytes = (n_in as u64).saturating_mul(n_out as u64).saturating_mul(8);
        let cap = self.component.limits().max_result_bytes;
        if bytes > cap {
            return Err(CallError::InvalidRequest(format!(
                "the jacobian of {n_out} output by {n_in} input elements would take {bytes} bytes, more than the {cap}-byte result limit (--max-result-size); ask for fewer jac_inputs/jac_outputs"
            )));
        }
        Ok(())
    }

    fn jacobian_from_basis(
        &self,
        inputs: &Tree,
        jac_inputs: &[String],
        jac_outputs: &[String],
    ) -> Result<JacobianBlocks, CallError> {
        let in_slots = self.input_slots(inputs, jac_inputs)?;
        let caps = self.capabilities;
        let forward_only = (caps.jvp || caps.batched_jvp) && !(caps.vjp || caps.batched_vjp);
        // Output shapes cost a call; they are needed to build reverse basis vectors or to
        // choose between two directions, never for a forward-only component.
        if !forward_only {
            let out_slots = self.output_slots(inputs, jac_outputs)?;
            let n_in = elements(&in_slots)?;
            let n_out = elements(&out_slots)?;
            self.check_jacobian_size(n_in, n_out)?;
            if planner::basis_direction(caps, n_in, n_out) == Some(Direction::Reverse) {
                let (cotangents, k) = self.basis(&out_slots)?;
                let products = self
                    .batched_vjp(inputs, jac_inputs, jac_outputs, &cotangents, k)?
                    .value;
                return Ok(derive::jacobian_from_reverse(
                    &out_slots, jac_inputs, &products,
                )?);
            }
        }
        let (tangents, k) = self.basis(&in_slots)?;
        let products = self
            .batched_jvp(inputs, jac_inputs, jac_outputs, &tangents, k)?
            .value;
        // A forward-only component's output sizes are known only now; the blocks are
        // assembled in float64, so they are held to the result limit before that.
        let n_out = products.values().map(Tensor::len).sum::<usize>() / k.max(1);
        self.check_jacobian_size(k, n_out)?;
        Ok(derive::jacobian_from_forward(
            &in_slots,
            jac_outputs,
            &products,
        )?)
    }

    /// One jacobian-vector product.
    ///
    /// # Errors
    /// See [`CallError`].
    pub fn jvp(
        &self,
        inputs: &Tree,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangent: &Vectors,
    ) -> Result<Served<Vectors>, CallError> {
        let route = self.plan(Endpoint::Jvp)?;
        let value = match route {
            Route::Native => self.component.call_jvp(
                &LoweredTree::new(inputs),
                jvp_inputs,
                jvp_outputs,
                tangent,
            )?,
            Route::BatchedExport => unbatch_one(self.component.call_batched_jvp(
                inputs,
                jvp_inputs,
                jvp_outputs,
                &batch_of_one(tangent)?,
                1,
            )?)?,
            _ => {
                let jac = self.jacobian(inputs, jvp_inputs, jvp_outputs)?.value;
                derive::jvp_from_jacobian(
                    &jac,
                    jvp_outputs,
                    tangent,
                    &self.dtypes(jvp_outputs, true),
                )?
            }
        };
        Ok(Served { value, route })
    }

    /// One vector-jacobian product.
    ///
    /// # Errors
    /// See [`CallError`].
    pub fn vjp(
        &self,
        inputs: &Tree,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangent: &Vectors,
    ) -> Result<Served<Vectors>, CallError> {
        let route = self.plan(Endpoint::Vjp)?;
        let value = match route {
            Route::Native => self.component.call_vjp(
                &LoweredTree::new(inputs),
                vjp_inputs,
                vjp_outputs,
                cotangent,
            )?,
            Route::BatchedExport => unbatch_one(self.component.call_batched_vjp(
                inputs,
                vjp_inputs,
                vjp_outputs,
                &batch_of_one(cotangent)?,
                1,
            )?)?,
            _ => {
                let jac = self.jacobian(inputs, vjp_inputs, vjp_outputs)?.value;
                derive::vjp_from_jacobian(
                    &jac,
                    vjp_inputs,
                    cotangent,
                    &self.dtypes(vjp_inputs, false),
                )?
            }
        };
        Ok(Served { value, route })
    }

    /// `count` jacobian-vector products at one primal; tangents and results carry a leading
    /// axis of length `count`.
    ///
    /// # Errors
    /// See [`CallError`].
    pub fn batched_jvp(
        &self,
        inputs: &Tree,
        jvp_inputs: &[String],
        jvp_outputs: &[String],
        tangents: &Vectors,
        count: usize,
    ) -> Result<Served<Vectors>, CallError> {
        let route = self.plan(Endpoint::BatchedJvp)?;
        leading_axis(tangents, count)?;
        let value = match route {
            Route::Native => self.component.call_batched_jvp(
                inputs,
                jvp_inputs,
                jvp_outputs,
                tangents,
                count_u32(count)?,
            )?,
            Route::Looped => {
                let lowered = LoweredTree::new(inputs);
                self.looped(&unstack(tangents, count)?, |t| {
                    self.component
                        .call_jvp(&lowered, jvp_inputs, jvp_outputs, t)
                })?
            }
            _ => {
                let jac = self.jacobian(inputs, jvp_inputs, jvp_outputs)?.value;
                let dtypes = self.dtypes(jvp_outputs, true);
                stack(
                    unstack(tangents, count)?
                        .iter()
                        .map(|t| derive::jvp_from_jacobian(&jac, jvp_outputs, t, &dtypes))
                        .collect::<Result<_, _>>()?,
                )?
            }
        };
        check_batch(&value, count)?;
        Ok(Served { value, route })
    }

    /// `count` vector-jacobian products at one primal; cotangents and results carry a
    /// leading axis of length `count`.
    ///
    /// # Errors
    /// See [`CallError`].
    pub fn batched_vjp(
        &self,
        inputs: &Tree,
        vjp_inputs: &[String],
        vjp_outputs: &[String],
        cotangents: &Vectors,
        count: usize,
    ) -> Result<Served<Vectors>, CallError> {
        let route = self.plan(Endpoint::BatchedVjp)?;
        leading_axis(cotangents, count)?;
        let value = match route {
            Route::Native => self.component.call_batched_vjp(
                inputs,
                vjp_inputs,
                vjp_outputs,
                cotangents,
                count_u32(count)?,
            )?,
            Route::Looped => {
                let lowered = LoweredTree::new(inputs);
                self.looped(&unstack(cotangents, count)?, |c| {
                    self.component
                        .call_vjp(&lowered, vjp_inputs, vjp_outputs, c)
                })?
            }
            _ => {
                let jac = self.jacobian(inputs, vjp_inputs, vjp_outputs)?.value;
                let dtypes = self.dtypes(vjp_inputs, false);
                stack(
                    unstack(cotangents, count)?
                        .iter()
                        .map(|c| derive::vjp_from_jacobian(&jac, vjp_inputs, c, &dtypes))
                        .collect::<Result<_, _>>()?,
                )?
            }
        };
        check_batch(&value, count)?;
        Ok(Served { value, route })
    }

    /// Runs `call` once per item on up to `loop_parallelism` threads, each call on its own
    /// fresh instance, and stacks the results in order. Stops early after the first failure.
    fn looped(
        &self,
        items: &[Vectors],
        call: impl Fn(&Vectors) -> Result<Vectors, CallError> + Sync,
    ) -> Result<Vectors, CallError> {
        let threads = self
            .component
            .limits()
            .loop_parallelism
            .min(items.len())
            .max(1);
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let mut results: Vec<Option<Result<Vectors, CallError>>> = vec![None; items.len()];
        // The threads run their calls on the caller's runtime, if any (its timers bound
        // guests' waits), rather than start wasmtime-wasi's own; waiting for them must not
        // stall a Tokio worker.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let chunks: Vec<Vec<(usize, Result<Vectors, CallError>)>> = crate::drive::blocking(|| {
            std::thread::scope(|scope| {
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        scope.spawn(|| {
                            let _runtime = runtime.as_ref().map(tokio::runtime::Handle::enter);
                            let mut done = Vec::new();
                            while !failed.load(Ordering::Relaxed) {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                let Some(item) = items.get(i) else { break };
                                let r = call(item);
                                if r.is_err() {
                                    failed.store(true, Ordering::Relaxed);
                                }
                                done.push((i, r));
                            }
                            done
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().unwrap_or_default())
                    .collect()
            })
        });
        for (i, r) in chunks.into_iter().flatten() {
            results[i] = Some(r);
        }
        // The first failure in item order is the one reported, so errors are reproducible.
        let mut ok = Vec::with_capacity(items.len());
        for r in results {
            match r {
                Some(Ok(v)) => ok.push(v),
                Some(Err(e)) => return Err(e),
                None => continue,
            }
        }
        if ok.len() != items.len() {
            return Err(CallError::Host("a looped call was abandoned".into()));
        }
        stack(ok)
    }

    /// # Errors
    /// See [`CallError`].
    ///
    /// Successful answers are cached by their exact abstract inputs (see [`abstract_cache`]):
    /// the vjp route asks for them on every request when an output has a free dimension.
    pub fn abstract_eval(&self, inputs: &AbstractTree) -> Result<Served<AbstractTree>, CallError> {
        let route = self.plan(Endpoint::AbstractEval)?;
        let (cached, key) = self.abstract_cache.get(inputs);
        if let Some(value) = cached {
            return Ok(Served { value, route });
        }
        let value = match route {
            Route::Native => self.component.call_abstract_eval(inputs)?,
            _ => {
                let zeros = zeros_of(inputs, self.component.limits().max_memory_bytes)?;
                abstract_outputs(self.component.call_apply(zeros)?)
            }
        };
        if let Some(key) = key {
            self.abstract_cache.insert(key, &value);
        }
        Ok(Served { value, route })
    }
}

fn check_batch(value: &Vectors, count: usize) -> Result<(), CallError> {
    for (p, t) in value {
        if t.shape().first() != Some(&count) {
            return Err(CallError::Contract(format!(
                "batched result `{p}` has shape {:?}, expected a leading axis of {count}",
                t.shape()
            )));
        }
    }
    Ok(())
}

/// The shapes and dtypes of a concrete tree.
pub fn abstract_of(inputs: &Tree) -> AbstractTree {
    inputs
        .iter()
        .map(|(p, l)| {
            let leaf = match l {
                Leaf::Tensor(t) => AbstractLeaf::Array(ShapeDType {
                    shape: t.shape().to_vec(),
                    dtype: t.dtype(),
                }),
                Leaf::Plain(v) => AbstractLeaf::Plain(v.clone()),
            };
            (p.clone(), leaf)
        })
        .collect()
}

fn abstract_outputs(outputs: Tree) -> AbstractTree {
    abstract_of(&outputs)
}

/// Zero-filled inputs of the given shapes. Refuses shapes whose data could not fit in one
/// guest's memory anyway, before allocating.
fn zeros_of(inputs: &AbstractTree, max_bytes: u64) -> Result<Tree, CallError> {
    let mut total: u64 = 0;
    inputs
        .iter()
        .map(|(p, l)| {
            let leaf = match l {
                AbstractLeaf::Array(sd) => {
                    let bytes = sd
                        .shape
                        .iter()
                        .try_fold(sd.dtype.size_bytes() as u64, |acc, &d| acc.checked_mul(d as u64))
                        .unwrap_or(u64::MAX);
                    total = total.saturating_add(bytes);
                    if total > max_bytes {
                        return Err(CallError::InvalidRequest(format!(
                            "abstract_eval needs apply on zeros here, and `{p}` with shape {:?} would not fit in the {max_bytes}-byte guest memory",
                            sd.shape
                        )));
                    }
                    Leaf::Tensor(Tensor::zeros(sd.dtype, sd.shape.clone()).map_err(|e| CallError::InvalidRequest(e.to_string()))?)
                }
                AbstractLeaf::Plain(v) => Leaf::Plain(v.clone()),
            };
            Ok((p.clone(), leaf))
        })
        .collect()
}
