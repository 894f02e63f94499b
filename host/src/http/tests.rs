//! Unit tests of the HTTP layer that need no component: `Accept` negotiation, body parsing
//! and where blocking work runs. Routes are tested against real components in `tests/it/http.rs`.

use serde_json::{Value, json};

use super::body;
use super::negotiate::{Negotiated, Offer, WireFormat, negotiate};
use crate::codec::Compression;

/// No compression.
const PLAIN: Compression = Compression::None;

fn offer(formats: &[WireFormat], default_compression: Compression) -> Offer {
    Offer {
        formats: formats.to_vec(),
        default_format: WireFormat::Json,
        default_compression,
    }
}

fn all() -> Offer {
    offer(&WireFormat::ALL, Compression::None)
}

/// Negotiates `accept` against `offer` and expects `format` with `compression`.
fn check(accept: Option<&str>, offer: &Offer, format: WireFormat, compression: Compression) {
    assert_eq!(
        negotiate(accept, offer),
        Ok(Negotiated {
            format,
            compression
        }),
        "Accept: {accept:?}"
    );
}

fn check_406(accept: &str, offer: &Offer) {
    assert!(
        negotiate(Some(accept), offer).is_err(),
        "Accept: {accept:?}"
    );
}

#[test]
fn no_header_or_wildcards_mean_the_server_default() {
    let o = all();
    check(None, &o, WireFormat::Json, PLAIN);
    check(Some(""), &o, WireFormat::Json, PLAIN);
    check(Some("*/*"), &o, WireFormat::Json, PLAIN);
    check(
        Some("application/*; gpu_transport=none"),
        &o,
        WireFormat::Json,
        PLAIN,
    );
    let base64_default = Offer {
        default_format: WireFormat::JsonBase64,
        ..all()
    };
    check(Some("*/*"), &base64_default, WireFormat::JsonBase64, PLAIN);
    check(None, &base64_default, WireFormat::JsonBase64, PLAIN);
}

#[test]
fn names_a_format_after_the_slash() {
    let o = all();
    check(
        Some("application/json+base64; gpu_transport=none"),
        &o,
        WireFormat::JsonBase64,
        PLAIN,
    );
    check(Some("application/json"), &o, WireFormat::Json, PLAIN);
    check(
        Some("application/json+binref"),
        &o,
        WireFormat::JsonBinref,
        PLAIN,
    );
    check(
        Some("Application/JSON+Base64"),
        &o,
        WireFormat::JsonBase64,
        PLAIN,
    );
}

#[test]
fn q_values_order_ranges_and_ties_keep_header_order() {
    let o = all();
    check(
        Some("application/json;q=0.5, application/json+base64"),
        &o,
        WireFormat::JsonBase64,
        PLAIN,
    );
    check(
        Some("application/json+base64;q=0.1, application/json;q=0.9"),
        &o,
        WireFormat::Json,
        PLAIN,
    );
    check(
        Some("application/json+base64, application/json"),
        &o,
        WireFormat::JsonBase64,
        PLAIN,
    );
    // q=0 means "not acceptable".
    check(
        Some("application/json+base64;q=0, */*"),
        &o,
        WireFormat::Json,
        PLAIN,
    );
    // A malformed q ranks below every valid one but stays acceptable, as upstream.
    check(
        Some("application/json+base64;q=abc, application/json;q=0.1"),
        &o,
        WireFormat::Json,
        PLAIN,
    );
    check(
        Some("application/json+base64;q=abc"),
        &o,
        WireFormat::JsonBase64,
        PLAIN,
    );
}

#[test]
fn compression_parameter_overrides_the_server_default() {
    let o = all();
    check(
        Some("application/json+base64; compression=lz4"),
        &o,
        WireFormat::JsonBase64,
        Compression::Lz4,
    );
    let lz4 = offer(&WireFormat::ALL, Compression::Lz4);
    check(
        Some("application/json+base64"),
        &lz4,
        WireFormat::JsonBase64,
        Compression::Lz4,
    );
    check(
        Some("application/json+base64; compression=none"),
        &lz4,
        WireFormat::JsonBase64,
        Compression::None,
    );
    check(
        Some("application/json+base64; compression=\"lz4\""),
        &o,
        WireFormat::JsonBase64,
        Compression::Lz4,
    );
}

#[test]
fn unavailable_ranges_are_skipped_and_nothing_left_is_406() {
    let no_binref = offer(
        &[WireFormat::Json, WireFormat::JsonBase64],
        Compression::None,
    );
    check_406("application/json+binref", &no_binref);
    check(
        Some("application/json+binref, application/json;q=0.5"),
        &no_binref,
        WireFormat::Json,
        Compression::None,
    );
    check_406("application/msgpack", &all());
    check_406("*/*; gpu_transport=cuda_ipc", &all());
    check_406("application/json+base64; compression=zstd", &all());
    check_406("text/html", &all());
}

#[test]
fn the_406_body_is_upstreams() {
    let Err(e) = negotiate(Some("application/msgpack"), &all()) else {
        panic!("msgpack is not a format");
    };
    assert_eq!(
        e.body(),
        json!({"detail": {
            "message": "Cannot produce any encoding accepted by 'application/msgpack'",
            "available_formats": ["json", "json+base64", "json+binref"],
            "available_gpu_transports": ["none"],
            "available_compressions": ["none", "lz4"],
        }})
    );
}

/// Parses `text` as a JSON body and expects a `json_invalid` 422 at `position` saying `error`.
fn check_invalid(text: &str, position: usize, error: &str) {
    let Err(e) = body::parse(
        Some("application/json"),
        text.as_bytes(),
        &Default::default(),
    ) else {
        panic!("{text:?} is not JSON");
    };
    assert_eq!(e.status().as_u16(), 422);
    assert_eq!(
        e.body(),
        json!({"detail": [{
            "type": "json_invalid", "loc": ["body", position], "msg": "JSON decode error",
            "input": {}, "ctx": {"error": error},
        }]}),
        "{text:?}"
    );
}

#[test]
fn invalid_json_reads_like_pythons_decoder() {
    check_invalid(
        "{bad",
        1,
        "Expecting property name enclosed in double quotes",
    );
    check_invalid(r#"{"a": }"#, 6, "Expecting value");
    check_invalid(r#"{"a": 1"#, 7, "Expecting ',' delimiter");
    check_invalid(r#"{"a": 1} x"#, 9, "Extra data");
    check_invalid("{\n\"a\" 1}", 6, "Expecting ':' delimiter");
}

#[test]
fn bodies_follow_the_content_type() {
    let parsed =
        |ct: Option<&str>, text: &str| body::parse(ct, text.as_bytes(), &Default::default()).ok();
    let obj = json!({"inputs": {}});
    assert_eq!(
        parsed(Some("application/json"), r#"{"inputs":{}}"#),
        Some(obj.clone())
    );
    assert_eq!(
        parsed(Some("application/json; charset=utf-8"), r#"{"inputs":{}}"#),
        Some(obj.clone())
    );
    assert_eq!(
        parsed(Some("application/vnd.x+json"), r#"{"inputs":{}}"#),
        Some(obj)
    );
    // No content type: FastAPI (strict_content_type) hands the bytes on, not JSON.
    assert_eq!(
        parsed(None, r#"{"inputs":{}}"#),
        Some(Value::String(r#"{"inputs":{}}"#.into()))
    );
    assert_eq!(parsed(Some("application/json"), " null "), None);
    // Not JSON: handed on as text, so validation reports `model_attributes_type`.
    assert_eq!(
        parsed(Some("text/plain"), r#"{"inputs":{}}"#),
        Some(Value::String(r#"{"inputs":{}}"#.into()))
    );
    let Err(e) = body::parse(Some("application/json"), b"", &Default::default()) else {
        panic!("an empty body is an error");
    };
    assert_eq!(
        e.body(),
        json!({"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]})
    );
}

/// Runs `off_the_workers` from a task on `rt`'s workers with work that blocks until another
/// task, spawned just before, has run; true when it did (so the work did not hold the only
/// worker).
fn other_tasks_run_during_blocking_work(rt: &tokio::runtime::Runtime) -> bool {
    rt.block_on(async {
        let task = tokio::spawn(async {
            let (tx, rx) = std::sync::mpsc::channel();
            tokio::spawn(async move { tx.send(()) });
            super::handlers::off_the_workers(move || {
                rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok()
            })
            .await
        });
        matches!(task.await, Ok(Ok(true)))
    })
}

#[test]
fn blocking_work_leaves_the_only_worker_free() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    assert!(other_tasks_run_during_blocking_work(&rt));
}

#[test]
fn blocking_work_leaves_a_current_thread_runtime_free() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    assert!(other_tasks_run_during_blocking_work(&rt));
}

#[test]
fn a_panic_in_blocking_work_is_an_error_on_either_runtime() {
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("a tokio runtime");
    let single = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    for rt in [multi, single] {
        let result = rt.block_on(async {
            tokio::spawn(super::handlers::off_the_workers(|| -> u8 {
                panic!("guest host bug")
            }))
            .await
        });
        let Ok(Err(message)) = result else {
            panic!("expected the panic as an error, got {result:?}");
        };
        assert!(message.contains("guest host bug"), "{message}");
    }
}

#[test]
fn a_panic_in_a_computation_run_on_its_worker_is_an_error() {
    let Err(message) = super::handlers::caught(|| -> u8 { panic!("guest host bug") }) else {
        panic!("a panic is an error");
    };
    assert!(message.contains("guest host bug"), "{message}");
}

#[test]
fn bodies_naming_lz4_or_binref_anywhere_are_not_computed_on_the_worker() {
    use super::handlers::expands;
    let array =
        |data: Value| json!({"inputs": {"x": {"shape": [4], "dtype": "float64", "data": data}}});
    assert!(!expands(&array(
        json!({"buffer": "AAAA", "encoding": "base64"})
    )));
    assert!(!expands(&array(json!([1, 2, 3, 4]))));
    assert!(expands(&array(
        json!({"buffer": "AAAA", "encoding": "base64", "compression": "lz4"})
    )));
    assert!(expands(&array(
        json!({"buffer": "x.bin:0", "encoding": "binref"})
    )));
    // Nested deep in a list, as a batched tangent's would be.
    assert!(expands(
        &json!({"tangent_vector": [[{"compression": "lz4"}]]})
    ));
}
