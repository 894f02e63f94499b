//! Integration tests of tesseract-wasm: real `.wasm` components (the three examples and the
//! test guests in `tests/guests`, compiled by `build.rs`) served by the host library.
//!
//! One binary, one module per topic; `tests/README.md` maps guests to tests.

mod support;

mod aliasing;
mod batch_shapes;
mod batching;
mod cache;
mod check;
mod check_untested;
mod cli;
mod derived;
mod examples;
mod guests;
mod hostile;
mod http;
mod loading;
mod native;
mod requests;
mod sandbox;
