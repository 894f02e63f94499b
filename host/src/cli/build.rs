//! `tesseract-wasm build`: compile a guest crate to a component and check it is a Tesseract.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::EngineArgs;

/// Compile a guest crate to a Tesseract component (.wasm)
///
/// Runs `cargo build --target wasm32-wasip2 --release`, loads the result to check that it
/// implements the Tesseract world, and prints its capabilities. The path of the .wasm is the
/// last line of the output, so scripts can take it with `tail -n1`. Given a workspace root,
/// builds its guest crates (those with `crate-type = ["cdylib"]`).
///
/// Guests get fixed flags so they are fast and built alike: `+simd128`, and fat LTO with one
/// codegen unit in release (over the crate's own profile). RUSTFLAGS and RUSTC_WRAPPER are not
/// passed to this build.
#[derive(Debug, clap::Args)]
pub struct Build {
    /// Directory of the guest crate (containing Cargo.toml)
    #[arg(value_name = "CRATE_DIR", default_value = ".")]
    dir: PathBuf,

    /// Build with the debug profile (much slower guests)
    #[arg(long)]
    debug: bool,

    /// Cargo's target directory [default: cargo's choice]
    #[arg(long, value_name = "DIR", env = "CARGO_TARGET_DIR")]
    target_dir: Option<PathBuf>,

    #[command(flatten)]
    engine: EngineArgs,
}

impl Build {
    pub fn execute(self, out: &mut dyn Write, _err: &mut dyn Write) -> anyhow::Result<i32> {
        let mut build = tesseract_wasm_build::Build::new(&self.dir)?;
        build.release(!self.debug);
        if let Some(dir) = &self.target_dir {
            build.target_dir(dir);
        }
        let artifacts = build.run()?;
        let engine = self.engine.engine()?;
        let mut last = None;
        for a in &artifacts {
            let runtime = self
                .engine
                .runtime(&engine, &a.path)
                .with_context(|| format!("{} built, but is not a usable Tesseract", a.package))?;
            let info = runtime.component().info();
            writeln!(out, "{} {} ({})", info.name, info.version, a.package)?;
            super::inspect::write_endpoints(&runtime, out)?;
            last = Some(&a.path);
        }
        if let Some(path) = last {
            writeln!(out, "{}", path.display())?;
        }
        Ok(0)
    }
}
