//! What `tesseract-wasm-bench`'s binary and its criterion benches (`benches/micro.rs`) share.
//!
//! The binary keeps its own modules; only code both need lives here.

pub mod lu;
