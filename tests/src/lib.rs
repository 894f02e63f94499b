//! Paths of the `.wasm` components the integration tests run, compiled by `build.rs`.
//!
//! One constant per package (`EXAMPLE_ROSENBROCK`, `SANDBOX_PROBE`, ...), plus
//! [`TEST_GUESTS`] and [`EXAMPLES`] listing them. The tests themselves are in `it/`.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
