//! tesseract-wasm: serve differentiable Tesseract components compiled to WebAssembly.

pub mod codec;
pub mod planner;
pub mod schema;
