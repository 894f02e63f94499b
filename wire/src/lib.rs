//! tesseract-core's wire protocol, without wasm or HTTP: what a request's JSON means and how a
//! response's JSON is written.
//!
//! - [`batch`]: the batch rule for (co)tangents stacked on leading axes.
//! - [`codec`]: array encodings (`json`, `base64`, lz4, `binref`), casts and broadcasting.
//! - [`schema`]: validating request inputs against a component's declared schema, with
//!   tesseract-core's pydantic-style errors.
//! - [`json_limits`]: parsing a JSON body within nesting, size and key-length limits.
//! - [`negotiate`]: the `Accept` header, as tesseract-core chooses an output format.
//!
//! It is its own crate so the parsers can be fuzzed and reused (by `tesseract-wasm check`) without
//! building wasmtime.

pub mod batch;
pub mod codec;
pub mod contract;
pub mod json_limits;
pub mod negotiate;
pub mod schema;
