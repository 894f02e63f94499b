//! Request decoding: arbitrary bytes as a JSON body (parsed within the JSON limits, as the
//! server does), every array encoding (json, base64, lz4, binref without an input path),
//! validated against a fixed schema. Must never panic, and must respect the decode limits: a
//! validated tree never holds more elements than allowed.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tesseract_model::Leaf;
use tesseract_model::schema::Info;
use tesseract_wire::codec::{DecodeLimits, DecodeOptions};
use tesseract_wire::json_limits;
use tesseract_wire::schema::{Loc, validate_inputs};

fuzz_target!(|data: &[u8]| {
    static SCHEMA: OnceLock<Info> = OnceLock::new();
    let info = SCHEMA.get_or_init(tesseract_wasm_fuzz::example_schema);
    let limits = DecodeLimits {
        max_array_bytes: 1 << 20,
        max_request_elements: 1 << 18,
        ..DecodeLimits::default()
    };
    let Ok(body) = json_limits::parse(data, &limits) else {
        return;
    };
    let opts = DecodeOptions {
        limits,
        ..DecodeOptions::default()
    };
    let inputs = body.get("inputs").unwrap_or(&body);
    let loc = [Loc::Key("body".into()), Loc::Key("inputs".into())];
    match validate_inputs(info, inputs, &opts, &loc) {
        Ok(tree) => {
            // Broadcasting to declared fixed sizes may add a little; nothing more.
            let elements: usize = tree
                .values()
                .map(|l| match l {
                    Leaf::Tensor(t) => t.len(),
                    Leaf::Plain(_) => 0,
                })
                .sum();
            assert!(elements <= (1 << 18) * 3 + 16, "{elements} elements");
        }
        Err(errors) => {
            // Every refusal serializes as a FastAPI detail list.
            let detail = errors.to_detail();
            assert!(detail["detail"].as_array().is_some_and(|d| !d.is_empty()));
        }
    }
});
