//! Paths of the `.wasm` components the integration tests run, compiled by `build.rs`.
//!
//! One constant per package (`EXAMPLE_ROSENBROCK`, `SANDBOX_PROBE`, ...), plus
//! [`TEST_GUESTS`] and [`EXAMPLES`] listing them, and the shipped server: [`server_binary`],
//! [`ServeProcess`]. The tests themselves are in `it/` and `isolated/`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod serve_process;
pub use serve_process::ServeProcess;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The shipped `tesseract-wasm` binary of this test build's profile, built once per process.
///
/// The binary belongs to another package, so cargo neither builds it for this test crate nor
/// sets `CARGO_BIN_EXE_*`; cargo test has released the target directory's lock by the time
/// tests run, so building it here is the usual `cargo build` (a no-op when it is current).
/// Tests that measure the server process use this rather than this test binary: the binary
/// has its own global allocator (mimalloc), which decides its RSS.
pub fn server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // <target>/<profile>/deps/<test binary>-<hash>
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary is in <target>/<profile>/deps");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(other) => other,
            None => panic!("no profile directory above {}", exe.display()),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ lives in the workspace");
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "tesseract-wasm", "--profile"])
            .arg(profile)
            .current_dir(workspace)
            .status()
            .expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p tesseract-wasm failed: {status}"
        );
        let binary = profile_dir.join("tesseract-wasm");
        assert!(
            binary.is_file(),
            "cargo built no {} (tests built with --target put it elsewhere)",
            binary.display()
        );
        binary
    })
}
