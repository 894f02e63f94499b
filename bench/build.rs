//! Reads the wasmtime version the workspace is locked to, so BENCHMARKS.md reports the engine
//! that was measured instead of a copy that could go stale.

use std::path::Path;

fn main() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let version = locked_version(&text, "wasmtime").unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=BENCH_WASMTIME_VERSION={version}");
}

/// The `version` of the `[[package]]` named `name`; several versions are listed joined by ", ".
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    let mut found = Vec::new();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
                .map(|v| v.trim_matches('"').to_owned());
            found.extend(version);
        }
    }
    (!found.is_empty()).then(|| found.join(", "))
}
