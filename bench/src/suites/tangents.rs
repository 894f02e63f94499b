//! Benchmark 1, many tangents: steady-state jvp and vjp with K (co)tangents, five ways.
//!
//! (a) tesseract-core's server, K requests; (b) tesseract-wasm, K requests; (c) tesseract-wasm,
//! one batched request served by the looped fallback; (d) the same served by the batched
//! export; (e) the native build of the crate, called in-process through the same batched API.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use example_steady_state::SteadyState;
use serde_json::{Value, json};
use tesseract_guest::dispatch;
use tesseract_model::{Data, Tensor, Tree, Vectors};

use super::Ctx;
use crate::client::{Client, Reply};
use crate::stats::{Contender, interleaved, ms};
use crate::wire;

const ACCEPT: &str = "application/json+base64";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Jvp,
    Vjp,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Jvp => "jvp",
            Mode::Vjp => "vjp",
        }
    }

    fn route(self) -> &'static str {
        match self {
            Mode::Jvp => "jacobian_vector_product",
            Mode::Vjp => "vector_jacobian_product",
        }
    }
}

/// Medians of one (mode, n, K) cell; index with [`A`]..[`E`].
#[derive(Debug, Clone)]
pub struct Row {
    pub mode: Mode,
    pub n: usize,
    pub k: usize,
    pub times: [Duration; 5],
    /// Largest relative difference of (a)–(d) from (e).
    pub agreement: [f64; 4],
}

pub const A: usize = 0;
pub const B: usize = 1;
pub const C: usize = 2;
pub const D: usize = 3;
pub const E: usize = 4;
pub const LABELS: [&str; 5] = [
    "(a) tesseract-core, K requests",
    "(b) tesseract-wasm, K requests",
    "(c) one request, looped fallback",
    "(d) one request, batched export",
    "(e) native, in-process",
];

/// The request body for K (co)tangents stacked on a leading axis, or one unstacked when
/// `batch` is `None` (then `rows` must hold one).
fn request(mode: Mode, f: &[f64], rows: &[f64], dc: &[f64], batch: Option<usize>) -> Bytes {
    let n = f.len();
    let lead: Vec<usize> = batch.into_iter().collect();
    let vec_shape: Vec<usize> = lead.iter().copied().chain([n]).collect();
    let inputs = json!({"f": wire::b64_f64(&[n], f), "coupling": 0.5});
    let v = match mode {
        Mode::Jvp => {
            let coupling = match batch {
                Some(k) => wire::b64_f64(&[k], dc),
                None => json!(dc[0]),
            };
            json!({
                "inputs": inputs,
                "jvp_inputs": ["f", "coupling"],
                "jvp_outputs": ["u"],
                "tangent_vector": {"f": wire::b64_f64(&vec_shape, rows), "coupling": coupling},
            })
        }
        Mode::Vjp => json!({
            "inputs": inputs,
            "vjp_inputs": ["f", "coupling"],
            "vjp_outputs": ["u"],
            "cotangent_vector": {"u": wire::b64_f64(&vec_shape, rows)},
        }),
    };
    wire::body(&v)
}

/// The answer's arrays, in a fixed key order, flattened: what agreement is checked on.
fn answer(mode: Mode, v: &Value) -> anyhow::Result<Vec<f64>> {
    let keys: &[&str] = match mode {
        Mode::Jvp => &["u"],
        Mode::Vjp => &["f", "coupling"],
    };
    let mut out = Vec::new();
    for k in keys {
        let arr = v
            .get(*k)
            .with_context(|| format!("answer has no `{k}`: {v}"))?;
        out.extend(wire::read_array(arr)?.1);
    }
    Ok(out)
}

/// K answers to single requests, regrouped key by key like one batched answer.
fn regroup(mode: Mode, answers: &[Value]) -> anyhow::Result<Vec<f64>> {
    let keys: &[&str] = match mode {
        Mode::Jvp => &["u"],
        Mode::Vjp => &["f", "coupling"],
    };
    let mut out = Vec::new();
    for k in keys {
        for v in answers {
            let arr = v
                .get(*k)
                .with_context(|| format!("answer has no `{k}`: {v}"))?;
            out.extend(wire::read_array(arr)?.1);
        }
    }
    Ok(out)
}

fn native(mode: Mode, tree: &Tree, dirs: &Vectors, k: usize) -> anyhow::Result<Vectors> {
    let both = ["f".to_owned(), "coupling".to_owned()];
    let u = ["u".to_owned()];
    let r = match mode {
        Mode::Jvp => dispatch::batched_jvp::<SteadyState>(tree.clone(), &both, &u, dirs.clone(), k),
        Mode::Vjp => dispatch::batched_vjp::<SteadyState>(tree.clone(), &both, &u, dirs.clone(), k),
    };
    r.map_err(|e| anyhow::anyhow!("native {}: {e}", mode.name()))
}

fn flatten_native(mode: Mode, v: &Vectors) -> anyhow::Result<Vec<f64>> {
    let keys: &[&str] = match mode {
        Mode::Jvp => &["u"],
        Mode::Vjp => &["f", "coupling"],
    };
    let mut out = Vec::new();
    for k in keys {
        out.extend(
            v.get(*k)
                .context("native answer lacks a key")?
                .data()
                .to_f64(),
        );
    }
    Ok(out)
}

// The timed closures send a request and read the whole body, nothing more, as a client that
// hands the bytes on would; parsing the answers belongs to the agreement check, which runs
// once before timing. JSON parsing on the client would add the same cost to every HTTP
// contender and none to (e), flattening the ratios.

fn sequential(client: &Client, url: &str, bodies: &[Bytes]) -> anyhow::Result<Vec<Reply>> {
    bodies.iter().map(|b| client.post(url, b, ACCEPT)).collect()
}

fn batched(client: &Client, url: &str, body: &Bytes, route: &str) -> anyhow::Result<Reply> {
    let reply = client.post(url, body, ACCEPT)?;
    // Measure what the label says: the batched export, or the looped fallback. A header
    // compare, cheap enough to stay in the timed path.
    if reply.route.as_deref() != Some(route) {
        bail!(
            "{url} served the batch by route {:?}, expected {route:?}",
            reply.route
        );
    }
    Ok(reply)
}

fn parse_all(replies: &[Reply]) -> anyhow::Result<Vec<Value>> {
    replies.iter().map(Reply::json).collect()
}

/// Runs every (mode, n, K) cell of the plan.
///
/// # Errors
/// When a server fails, or any contender's answer disagrees with the native build.
pub fn run(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let steady = &ctx.components.steady_state;
    let wasm = ctx
        .wasm_spec("wasm-steady-state", steady, &[])
        .start(&ctx.client, &ctx.log_dir)?;
    let looped = ctx
        .wasm_spec(
            "wasm-steady-state-looped",
            steady,
            &["--ignore-batched-exports"],
        )
        .start(&ctx.client, &ctx.log_dir)?;
    let upstream = ctx
        .upstream_spec("upstream-steady-state", &ctx.upstream.steady_state)
        .start(&ctx.client, &ctx.log_dir)?;
    let info = dispatch::metadata::<SteadyState>();
    let mut rows = Vec::new();
    for mode in [Mode::Jvp, Mode::Vjp] {
        let route = mode.route();
        let (ua, ub) = (upstream.url(route), wasm.url(route));
        let (uc, ud) = (looped.url(route), wasm.url(route));
        for &n in &ctx.plan.ns {
            let f = wire::steady_f(n);
            let tree = tesseract_wasm::schema::validate_inputs(
                &info,
                &json!({"f": f, "coupling": 0.5}),
                &Default::default(),
                &[],
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            for &k in &ctx.plan.ks {
                let dirs = wire::directions(n, k);
                let dc = wire::coupling_tangents(k);
                let singles: Vec<Bytes> = (0..k)
                    .map(|i| request(mode, &f, &dirs[i * n..(i + 1) * n], &dc[i..=i], None))
                    .collect();
                let one = request(mode, &f, &dirs, &dc, Some(k));
                let mut native_dirs = Vectors::new();
                match mode {
                    Mode::Jvp => {
                        native_dirs.insert(
                            "f".into(),
                            Tensor::new(vec![k, n], Data::Float64(dirs.clone()))?,
                        );
                        native_dirs.insert(
                            "coupling".into(),
                            Tensor::new(vec![k], Data::Float64(dc.clone()))?,
                        );
                    }
                    Mode::Vjp => {
                        native_dirs.insert(
                            "u".into(),
                            Tensor::new(vec![k, n], Data::Float64(dirs.clone()))?,
                        );
                    }
                }

                // Agreement first: a fast wrong answer is worth nothing.
                let reference = flatten_native(mode, &native(mode, &tree, &native_dirs, k)?)?;
                let got = [
                    regroup(mode, &parse_all(&sequential(&ctx.client, &ua, &singles)?)?)?,
                    regroup(mode, &parse_all(&sequential(&ctx.client, &ub, &singles)?)?)?,
                    answer(mode, &batched(&ctx.client, &uc, &one, "looped")?.json()?)?,
                    answer(mode, &batched(&ctx.client, &ud, &one, "native")?.json()?)?,
                ];
                let agreement = got.map(|g| wire::max_rel_diff(&g, &reference));
                for (i, d) in agreement.iter().enumerate() {
                    if d.is_nan() || *d > 1e-8 {
                        bail!(
                            "{} n={n} K={k}: {} disagrees with the native build (max relative difference {d:e})",
                            mode.name(),
                            LABELS[i]
                        );
                    }
                }

                let client = &ctx.client;
                let mut a = || sequential(client, &ua, &singles).map(drop);
                let mut b = || sequential(client, &ub, &singles).map(drop);
                let mut c = || batched(client, &uc, &one, "looped").map(drop);
                let mut d = || batched(client, &ud, &one, "native").map(drop);
                let mut e = || native(mode, &tree, &native_dirs, k).map(drop);
                let mut contenders: [Contender<'_>; 5] = [
                    (LABELS[A], &mut a),
                    (LABELS[B], &mut b),
                    (LABELS[C], &mut c),
                    (LABELS[D], &mut d),
                    (LABELS[E], &mut e),
                ];
                let m = interleaved(ctx.plan.rounds, ctx.plan.min_sample, &mut contenders)?;
                let times: [Duration; 5] = [m[0], m[1], m[2], m[3], m[4]];
                println!(
                    "  {} n={n:>3} K={k:>2}: (a) {:>9.3} (b) {:>9.3} (c) {:>9.3} (d) {:>8.3} (e) {:>8.3} ms",
                    mode.name(),
                    ms(times[A]),
                    ms(times[B]),
                    ms(times[C]),
                    ms(times[D]),
                    ms(times[E])
                );
                rows.push(Row {
                    mode,
                    n,
                    k,
                    times,
                    agreement,
                });
            }
        }
    }
    drop((wasm, looped, upstream));
    Ok(rows)
}
