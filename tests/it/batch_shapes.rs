//! The batch rule on random shapes, through `request::handle` on real components: a jvp or
//! vjp whose (co)tangents carry random leading batch axes (mixed with unbatched entries and
//! size-1 dimensions that broadcast) answers, at every index of the batch, what the single
//! request for that index answers. Shapes come from a fixed-seed generator, so a failure
//! names a reproducible case.

use serde_json::{Value, json};
use tesseract_model::{Data, Tensor};
use tesseract_wasm::codec::{Compression, DecodeOptions, OutputFormat, decode_array, encode_array};
use tesseract_wasm::planner::Endpoint;
use tesseract_wasm::request::{CodecOptions, handle};
use tesseract_wasm::runtime::Runtime;
use tesseract_wasm_tests::{EXAMPLE_ROSENBROCK, EXAMPLE_STEADY_STATE};

use crate::support::{rel_err, runtime};

/// xorshift64*: enough randomness for shapes, with no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> usize {
        usize::try_from(self.next() % n).expect("small")
    }

    fn values(&mut self, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| (self.next() % 2001) as f64 / 1000.0 - 1.0)
            .collect()
    }
}

fn array(shape: &[usize], values: Vec<f64>) -> Value {
    let t = Tensor::new(shape.to_vec(), Data::Float64(values)).expect("consistent");
    encode_array(&t, OutputFormat::JsonBase64, Compression::None)
}

fn decoded(v: &Value) -> Vec<f64> {
    decode_array(v, &DecodeOptions::default())
        .expect("a response array")
        .data()
        .to_f64()
}

/// Row `k` of a `[K, *rest]` buffer laid out flat.
fn row(values: &[f64], k: usize, len: usize) -> Vec<f64> {
    values[k * len..(k + 1) * len].to_vec()
}

/// One (co)tangent entry: its per-member shape, and whether it is batched, and whether its
/// trailing dimension is sent as 1 (broadcast).
struct Entry {
    key: &'static str,
    member: Vec<usize>,
    batched: bool,
    squeezed: bool,
}

/// A request without its (co)tangents: the runtime, the endpoint, the body, and the field
/// the (co)tangents go in.
struct Call<'a> {
    rt: &'a Runtime,
    endpoint: Endpoint,
    base: Value,
    field: &'static str,
}

/// Sends a batch with axes `batch` and each entry's random values, then each member alone,
/// and compares every output row.
fn check(call: &Call<'_>, entries: &[Entry], batch: &[usize], rng: &mut Rng, tol: f64) {
    let Call {
        rt,
        endpoint,
        base,
        field,
    } = call;
    let (rt, endpoint) = (*rt, *endpoint);
    let k: usize = batch.iter().product();
    // Per entry: the values as sent (squeezed shape) for every member.
    let mut sent = Vec::new();
    let mut vectors = serde_json::Map::new();
    for e in entries {
        let shape: Vec<usize> = if e.squeezed {
            e.member.iter().map(|_| 1).collect()
        } else {
            e.member.clone()
        };
        let n: usize = shape.iter().product();
        let copies = if e.batched { k } else { 1 };
        let values = rng.values(n * copies);
        let full_shape = if e.batched {
            [batch.to_vec(), shape.clone()].concat()
        } else {
            shape.clone()
        };
        vectors.insert(e.key.into(), array(&full_shape, values.clone()));
        sent.push((shape, n, values));
    }
    let mut body = base.clone();
    body[*field] = Value::Object(vectors);
    let response = handle(rt, endpoint, &body, &CodecOptions::default())
        .unwrap_or_else(|e| panic!("batch {batch:?}: {}", e.body()));
    assert_eq!(response.batch_size, (!batch.is_empty()).then_some(k));
    for m in 0..k {
        let mut single = serde_json::Map::new();
        for (e, (shape, n, values)) in entries.iter().zip(&sent) {
            let v = if e.batched {
                row(values, m, *n)
            } else {
                values.clone()
            };
            single.insert(e.key.into(), array(shape, v));
        }
        let mut body = base.clone();
        body[*field] = Value::Object(single);
        let alone = handle(rt, endpoint, &body, &CodecOptions::default())
            .unwrap_or_else(|e| panic!("member {m}: {}", e.body()));
        for (out, v) in response.body.as_object().expect("an object") {
            let got = decoded(v);
            let want = decoded(&alone.body[out]);
            let shape = v["shape"].as_array().expect("a shape");
            assert_eq!(
                shape.len(),
                batch.len() + alone.body[out]["shape"].as_array().map_or(0, Vec::len),
                "`{out}` keeps the batch axes {batch:?}"
            );
            let got = if batch.is_empty() {
                got
            } else {
                row(&got, m, want.len())
            };
            assert!(
                rel_err(&got, &want) <= tol,
                "batch {batch:?}, member {m}, `{out}`: {got:?} vs {want:?}"
            );
        }
    }
}

fn random_batch(rng: &mut Rng) -> Vec<usize> {
    let rank = 1 + rng.below(3);
    (0..rank).map(|_| 1 + rng.below(3)).collect()
}

#[test]
fn random_batches_equal_their_members_sent_alone() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let rosenbrock = runtime(EXAMPLE_ROSENBROCK);
    let steady = runtime(EXAMPLE_STEADY_STATE);
    for case in 0..12 {
        let batch = random_batch(&mut rng);
        // Rosenbrock (looped route): scalar primals, one entry may be unbatched.
        let jvp = json!({"inputs": {"x": 0.3, "y": -0.7}, "jvp_inputs": ["x", "y"], "jvp_outputs": ["result"]});
        let entries = [
            Entry {
                key: "x",
                member: vec![],
                batched: true,
                squeezed: false,
            },
            Entry {
                key: "y",
                member: vec![],
                batched: case % 2 == 0,
                squeezed: false,
            },
        ];
        check(
            &Call {
                rt: &rosenbrock,
                endpoint: Endpoint::Jvp,
                base: jvp.clone(),
                field: "tangent_vector",
            },
            &entries,
            &batch,
            &mut rng,
            0.0,
        );
        let vjp = json!({"inputs": {"x": 0.3, "y": -0.7}, "vjp_inputs": ["x", "y"], "vjp_outputs": ["result"]});
        let entries = [Entry {
            key: "result",
            member: vec![],
            batched: true,
            squeezed: false,
        }];
        check(
            &Call {
                rt: &rosenbrock,
                endpoint: Endpoint::Vjp,
                base: vjp.clone(),
                field: "cotangent_vector",
            },
            &entries,
            &batch,
            &mut rng,
            0.0,
        );

        // Steady-state (batched exports): an array primal whose tangent may be sent with a
        // size-1 trailing dimension, which broadcasts.
        let n = 2 + rng.below(4);
        let f: Vec<f64> = rng.values(n);
        let jvp = json!({"inputs": {"f": f, "coupling": 0.5}, "jvp_inputs": ["f", "coupling"], "jvp_outputs": ["u"]});
        let entries = [
            Entry {
                key: "f",
                member: vec![n],
                batched: true,
                squeezed: case % 3 == 0,
            },
            Entry {
                key: "coupling",
                member: vec![],
                batched: case % 2 == 1,
                squeezed: false,
            },
        ];
        check(
            &Call {
                rt: &steady,
                endpoint: Endpoint::Jvp,
                base: jvp.clone(),
                field: "tangent_vector",
            },
            &entries,
            &batch,
            &mut rng,
            1e-12,
        );
        let vjp = json!({"inputs": {"f": f, "coupling": 0.5}, "vjp_inputs": ["f", "coupling"], "vjp_outputs": ["u"]});
        let entries = [Entry {
            key: "u",
            member: vec![n],
            batched: true,
            squeezed: false,
        }];
        check(
            &Call {
                rt: &steady,
                endpoint: Endpoint::Vjp,
                base: vjp.clone(),
                field: "cotangent_vector",
            },
            &entries,
            &batch,
            &mut rng,
            1e-12,
        );
    }
}
