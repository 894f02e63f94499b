//! Micro-benchmarks of the request path's fixed costs, each one a suspect from the profile of
//! `tesseract-wasm-bench all`:
//!
//! - `codec/*`: decoding a request's arrays (base64 and nested JSON lists) and encoding an
//!   answer's, through the host's own codec;
//! - `validate/*`: tesseract-core's input validation of a whole steady-state request body;
//! - `instantiate/*`: a fresh store and instance per call, which every call pays;
//! - `lu/*`: the LU of steady-state's Jacobian (n = 64, 256), natively through criterion's own
//!   clock, and inside the wasm sandbox on the server's engine settings. A host-side clock
//!   around a guest call would add instantiation and the call boundary, so the wasm variant
//!   uses `iter_custom` and reports the time the guest measured around the kernel (median per
//!   factorisation over the batch, times the batch; a median, where the native variant's
//!   criterion sample is a mean, so outliers weigh less on the wasm side). `tesseract-wasm-bench lu` shows the same
//!   kernel under relaxed engine settings.
//!
//! `cargo bench -p tesseract-wasm-bench --bench micro`

use std::hint::black_box;
use std::path::Path;

use base64::Engine as _;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use tesseract_model::{Data, Tensor};
use tesseract_wasm::codec::{self, Compression, DecodeOptions, OutputFormat};

fn b64_array(dtype: &str, shape: &[usize], bytes: &[u8]) -> Value {
    json!({"shape": shape, "dtype": dtype, "data": {
        "buffer": base64::engine::general_purpose::STANDARD.encode(bytes), "encoding": "base64"}})
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    let len = 1_000_000;
    let f32s: Vec<u8> = (0..len)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let b64 = b64_array("float32", &[len], &f32s);
    g.throughput(Throughput::Elements(len as u64));
    g.bench_function("decode base64 float32 1e6", |b| {
        b.iter(|| codec::decode_array(black_box(&b64), &DecodeOptions::default()))
    });
    let n = 16_384;
    let list: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
    let json_arr =
        json!({"shape": [n], "dtype": "float64", "data": {"buffer": list, "encoding": "json"}});
    let text = json_arr.to_string();
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("parse + decode json float64 16384", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_str(black_box(&text))?;
            codec::decode_array(&v, &DecodeOptions::default()).map_err(|e| anyhow::anyhow!("{e}"))
        })
    });
    let out = Tensor::new(
        vec![len],
        Data::Float64((0..len).map(|i| i as f64 * 0.25).collect()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    g.throughput(Throughput::Elements(len as u64));
    g.bench_function("encode + serialize base64 float64 1e6", |b| {
        b.iter(|| {
            serde_json::to_vec(&codec::encode_array(
                black_box(&out),
                OutputFormat::JsonBase64,
                Compression::None,
            ))
        })
    });
    g.bench_function("encode + serialize json float64 1e6", |b| {
        b.iter(|| {
            serde_json::to_vec(&codec::encode_array(
                black_box(&out),
                OutputFormat::Json,
                Compression::None,
            ))
        })
    });
    // What the server sends: the array written straight from the tensor's slice.
    for (name, format) in [
        ("json", OutputFormat::Json),
        ("base64", OutputFormat::JsonBase64),
    ] {
        g.bench_function(format!("direct serialize {name} float64 1e6"), |b| {
            b.iter(|| {
                serde_json::to_vec(&codec::EncodedArray {
                    tensor: black_box(&out),
                    format,
                    compression: Compression::None,
                })
            })
        });
    }
    g.finish();
}

fn validate(c: &mut Criterion) {
    use example_steady_state::SteadyState;
    let info = tesseract_guest::dispatch::metadata::<SteadyState>();
    let mut g = c.benchmark_group("validate");
    for n in [64usize, 4096] {
        let f: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        let bytes: Vec<u8> = f.iter().flat_map(|x| x.to_le_bytes()).collect();
        let bodies = [
            ("json", json!({"f": f, "coupling": 0.5})),
            (
                "base64",
                json!({"f": b64_array("float64", &[n], &bytes), "coupling": 0.5}),
            ),
        ];
        for (enc, body) in bodies {
            g.bench_function(format!("steady-state inputs n={n} {enc}"), |b| {
                b.iter(|| {
                    tesseract_wasm::schema::validate_inputs(
                        &info,
                        black_box(&body),
                        &DecodeOptions::default(),
                        &[],
                    )
                })
            });
        }
    }
    g.finish();
}

fn instantiate(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = tesseract_wasm_build::Build::new(&root).and_then(|mut b| {
        b.packages(["example-rosenbrock", "example-steady-state"])
            .target_dir(root.join("target").join("guests"))
            .run()
    });
    let artifacts = built.unwrap_or_else(|e| panic!("building the examples: {e}"));
    let engine = tesseract_wasm::engine::Engine::new(tesseract_wasm::engine::EngineOptions {
        cache_dir: Some(root.join("target").join("bench-cache")),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("instantiate");
    for a in &artifacts {
        let component = tesseract_wasm::component::Tesseract::load(&engine, &a.path)
            .unwrap_or_else(|e| panic!("{e}"));
        g.bench_function(format!("fresh store + instance, {}", a.package), |b| {
            b.iter(|| component.instantiate().map(drop))
        });
    }
    g.finish();
}

fn lu(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let kernel = tesseract_wasm_bench::lu::build_kernel(&root)
        .and_then(|wasm| tesseract_wasm_bench::lu::WasmKernel::server(&wasm))
        .unwrap_or_else(|e| panic!("the lu_kernel guest: {e:#}"));
    let mut g = c.benchmark_group("lu");
    for n in [64usize, 256] {
        // 2n³/3 flops per factorisation: criterion's throughput then reads as GFLOP/s (×1e9).
        g.throughput(Throughput::Elements((2 * n * n * n / 3) as u64));
        let native = example_steady_state::LuKernel::new(n);
        g.bench_function(format!("native n={n}"), |b| {
            b.iter(|| black_box(&native).factor())
        });
        g.bench_function(format!("wasm n={n}"), |b| {
            b.iter_custom(|iters| {
                let reps = usize::try_from(iters).unwrap_or(usize::MAX);
                let secs = kernel
                    .seconds(n, reps)
                    .unwrap_or_else(|e| panic!("lu_kernel in wasm: {e:#}"));
                std::time::Duration::from_secs_f64(secs * iters as f64)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, codec, validate, instantiate, lu);
criterion_main!(benches);
