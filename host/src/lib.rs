//! tesseract-wasm: serve differentiable Tesseract components compiled to WebAssembly.
//!
//! - [`engine::Engine`]: one wasmtime engine per process, its limits and precompiled cache.
//! - [`component::Tesseract`]: a loaded component, its [`planner::Capabilities`] and metadata.
//! - [`runtime::Runtime`]: serves every endpoint, natively or derived, as [`planner`] decides.
//! - [`schema`] and [`codec`] (from `tesseract-wire`): tesseract-core's request validation and
//!   array encodings.

pub mod alloc_trim;
pub mod bindings;
pub mod cache;
pub mod check;
pub mod cli;
pub mod component;
pub mod derive;
pub mod drive;
pub mod engine;
pub mod http;
pub mod planner;
pub mod request;
pub mod runtime;
pub mod sandbox;

pub use tesseract_wire::{codec, schema};
