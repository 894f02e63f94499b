//! Compiles guest crates to WebAssembly components.
//!
//! `wasm32-wasip2` makes rustc emit a component directly (through `wasm-component-ld`, which
//! ships with the toolchain), so no extra tool is needed. Guests are built with `simd128`, which
//! their linear algebra needs to be fast. The CLI's `build` command and the test suite's build
//! script both go through [`Build::run`], so users and tests get the same flags.
//!
//! The nested `cargo` is scrubbed of the variables an outer cargo sets for build scripts
//! (rustflags, wrappers such as clippy-driver), so building guests from a `build.rs` behaves
//! like building them by hand.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The target guests are compiled for.
pub const TARGET: &str = "wasm32-wasip2";

/// Rust flags for guests: SIMD is what makes dense kernels competitive with native code.
pub const RUSTFLAGS: &str = "-C target-feature=+simd128";

/// Release-profile settings for guests, as cargo's `CARGO_PROFILE_RELEASE_*` variables: one
/// codegen unit and fat LTO let LLVM inline the linear-algebra kernels across crates into the
/// guest's hot loops. Build scripts and proc macros keep their own (`build-override`) profile.
pub fn profile_env() -> [(&'static str, &'static str); 2] {
    [
        ("CARGO_PROFILE_RELEASE_LTO", "fat"),
        ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
    ]
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the {TARGET} target is not installed; install it with `rustup target add {TARGET}`")]
    MissingTarget,
    #[error("no Cargo.toml in {}: pass the directory of a guest crate", .0.display())]
    NoManifest(PathBuf),
    #[error("no such directory: {}", .0.display())]
    NoDirectory(PathBuf),
    #[error("cannot run cargo")]
    Spawn(#[source] std::io::Error),
    #[error("cargo build failed ({status}); see the compiler output above")]
    Failed { status: std::process::ExitStatus },
    #[error("cargo built no .wasm for {0}: is it a library with `crate-type = [\"cdylib\"]`?")]
    NoArtifact(String),
    #[error("{} is a workspace with no guest crate (a library with `crate-type = [\"cdylib\"]`): pass the directory of a guest crate", .0.display())]
    NoGuestCrate(PathBuf),
    #[error("cannot read the crate's manifest with `cargo metadata`: {0}")]
    Metadata(String),
}

/// A compiled component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The Cargo package name.
    pub package: String,
    /// The `.wasm` component.
    pub path: PathBuf,
}

/// One `cargo build --target wasm32-wasip2` invocation.
#[derive(Debug, Clone)]
pub struct Build {
    manifest_path: PathBuf,
    packages: Vec<String>,
    release: bool,
    target_dir: Option<PathBuf>,
}

impl Build {
    /// Builds the crate (or workspace) whose `Cargo.toml` is in `dir`; `dir` may also be that
    /// `Cargo.toml` itself.
    ///
    /// # Errors
    /// [`BuildError::NoDirectory`] when `dir` does not exist, [`BuildError::NoManifest`] when it
    /// has no `Cargo.toml`.
    pub fn new(dir: &Path) -> Result<Build, BuildError> {
        if dir.file_name().is_some_and(|n| n == "Cargo.toml") && dir.is_file() {
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            return Build::new(parent.unwrap_or(Path::new(".")));
        }
        if !dir.exists() {
            return Err(BuildError::NoDirectory(dir.to_path_buf()));
        }
        let manifest_path = dir.join("Cargo.toml");
        if !manifest_path.is_file() {
            return Err(BuildError::NoManifest(dir.to_path_buf()));
        }
        Ok(Build {
            manifest_path,
            packages: Vec::new(),
            release: true,
            target_dir: None,
        })
    }

    /// Restricts the build to these packages of the workspace (`-p`). By default the crate in
    /// the directory is built.
    pub fn packages(
        &mut self,
        packages: impl IntoIterator<Item = impl Into<String>>,
    ) -> &mut Build {
        self.packages.extend(packages.into_iter().map(Into::into));
        self
    }

    /// Release (the default) or debug profile. Debug guests are many times slower.
    pub fn release(&mut self, release: bool) -> &mut Build {
        self.release = release;
        self
    }

    /// Where cargo puts its output. By default, cargo's own choice for the workspace.
    pub fn target_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Build {
        self.target_dir = Some(dir.into());
        self
    }

    /// Runs cargo; compiler diagnostics go to this process's stderr.
    ///
    /// # Errors
    /// When the target is missing, cargo fails, or a requested package produced no `.wasm`.
    pub fn run(&self) -> Result<Vec<Artifact>, BuildError> {
        check_target_installed()?;
        // A virtual workspace would build every member for wasm, host crates included, and
        // fail minutes later; its guest crates are known before anything is compiled.
        let guests = if self.packages.is_empty() {
            self.workspace_guests()?
        } else {
            Vec::new()
        };
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.arg("build")
            .arg("--manifest-path")
            .arg(&self.manifest_path)
            .args([
                "--target",
                TARGET,
                "--message-format=json-render-diagnostics",
            ]);
        if self.release {
            cmd.arg("--release");
        }
        for p in self.packages.iter().chain(&guests) {
            cmd.args(["-p", p]);
        }
        if let Some(dir) = &self.target_dir {
            cmd.arg("--target-dir").arg(dir);
        }
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS", RUSTFLAGS);
        if self.release {
            cmd.envs(profile_env());
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());

        let mut child = cmd.spawn().map_err(BuildError::Spawn)?;
        let mut artifacts = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = parse_artifact(&line) {
                    artifacts.push(a);
                }
            }
        }
        let status = child.wait().map_err(BuildError::Spawn)?;
        if !status.success() {
            return Err(BuildError::Failed { status });
        }
        for p in &self.packages {
            if !artifacts.iter().any(|a| &a.package == p) {
                return Err(BuildError::NoArtifact(p.clone()));
            }
        }
        if artifacts.is_empty() {
            return Err(BuildError::NoArtifact(
                self.manifest_path.display().to_string(),
            ));
        }
        Ok(artifacts)
    }
}

impl Build {
    /// For a virtual workspace, its members that are guest crates (error if none); for a
    /// package, nothing: cargo builds just that package.
    fn workspace_guests(&self) -> Result<Vec<String>, BuildError> {
        // Decided from the manifest itself: a path compare against cargo's idea of it fails
        // through symlinks, and a package needs no `cargo metadata` at all.
        let manifest = std::fs::read_to_string(&self.manifest_path)
            .map_err(|e| BuildError::Metadata(e.to_string()))?;
        if has_package(&manifest) {
            return Ok(Vec::new());
        }
        let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--manifest-path",
            ])
            .arg(&self.manifest_path)
            .stderr(Stdio::piped())
            .output()
            .map_err(BuildError::Spawn)?;
        if !out.status.success() {
            return Err(BuildError::Metadata(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        let metadata: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| BuildError::Metadata(e.to_string()))?;
        let guests = cdylib_members(&metadata);
        if guests.is_empty() {
            return Err(BuildError::NoGuestCrate(
                self.manifest_path
                    .parent()
                    .unwrap_or(Path::new("."))
                    .to_path_buf(),
            ));
        }
        Ok(guests)
    }
}

/// Whether a `Cargo.toml` declares a package (else it is a virtual workspace's).
fn has_package(manifest: &str) -> bool {
    manifest
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .any(|l| l == "[package]" || l == "[project]")
}

/// From `cargo metadata --no-deps`: the workspace members with a cdylib target.
fn cdylib_members(metadata: &serde_json::Value) -> Vec<String> {
    let is_cdylib = |t: &serde_json::Value| {
        t.get("crate_types")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|kinds| kinds.iter().any(|k| k.as_str() == Some("cdylib")))
    };
    let packages = metadata
        .get("packages")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    packages
        .iter()
        .filter(|p| {
            p.get("targets")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|ts| ts.iter().any(is_cdylib))
        })
        .filter_map(|p| p.get("name")?.as_str().map(str::to_owned))
        .collect()
}

/// Reads one line of cargo's JSON messages; returns the `.wasm` of a cdylib artifact.
fn parse_artifact(line: &str) -> Option<Artifact> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let target = msg.get("target")?;
    let is_cdylib = target
        .get("kind")?
        .as_array()?
        .iter()
        .any(|k| k.as_str() == Some("cdylib"));
    if !is_cdylib {
        return None;
    }
    let path = msg
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))?;
    // Package ids look like `path+file:///dir/crate#name@0.1.0`, or `path+file:///dir/name#0.1.0`
    // when the directory is named after the package.
    let id = msg.get("package_id")?.as_str()?;
    let (url, tail) = id.rsplit_once('#')?;
    let package = match tail.split_once('@') {
        Some((name, _version)) => name.to_owned(),
        None => url.rsplit('/').next()?.to_owned(),
    };
    Some(Artifact {
        package,
        path: PathBuf::from(path),
    })
}

/// Fails early with the install command, rather than with rustc's "can't find crate for core".
fn check_target_installed() -> Result<(), BuildError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(BuildError::Spawn)?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .is_dir()
    {
        Ok(())
    } else {
        Err(BuildError::MissingTarget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtual_workspace_builds_its_guest_crates_only() {
        let metadata = serde_json::json!({"packages": [
            {"name": "host", "targets": [{"crate_types": ["lib"]}, {"crate_types": ["bin"]}]},
            {"name": "guest", "targets": [{"crate_types": ["cdylib", "rlib"]}]},
        ]});
        assert_eq!(cdylib_members(&metadata), vec!["guest".to_owned()]);
        assert!(has_package("[package] # the crate\nname = \"g\"\n"));
        assert!(!has_package(
            "[workspace]\nmembers = [\"a\"] # not [package]\n"
        ));
        assert!(!has_package("[workspace.package]\nversion = \"0.1.0\"\n"));
    }

    #[test]
    fn parses_a_cdylib_artifact() {
        let line = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/guest-example/rosenbrock#example-rosenbrock@0.1.0","target":{"kind":["cdylib","rlib"],"name":"example_rosenbrock"},"filenames":["/t/example_rosenbrock.wasm","/t/libexample_rosenbrock.rlib"]}"#;
        assert_eq!(
            parse_artifact(line),
            Some(Artifact {
                package: "example-rosenbrock".into(),
                path: "/t/example_rosenbrock.wasm".into()
            })
        );
    }

    #[test]
    fn parses_a_package_named_after_its_directory() {
        let line = r#"{"reason":"compiler-artifact","package_id":"path+file:///w/tests/guests/batched-only#0.1.0","target":{"kind":["cdylib","rlib"],"name":"batched_only"},"filenames":["/t/batched_only.wasm"]}"#;
        assert_eq!(
            parse_artifact(line).map(|a| a.package),
            Some("batched-only".into())
        );
    }

    #[test]
    fn ignores_other_messages() {
        assert_eq!(
            parse_artifact(r#"{"reason":"build-finished","success":true}"#),
            None
        );
        let rlib = r#"{"reason":"compiler-artifact","package_id":"x#y@1","target":{"kind":["lib"],"name":"y"},"filenames":["/t/liby.rlib"]}"#;
        assert_eq!(parse_artifact(rlib), None);
    }

    #[test]
    fn a_crate_is_named_by_its_directory_or_its_manifest() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let by_dir = Build::new(root).expect("this crate's directory");
        let by_manifest = Build::new(&root.join("Cargo.toml")).expect("its Cargo.toml");
        assert_eq!(by_dir.manifest_path, by_manifest.manifest_path);
        assert!(matches!(
            Build::new(&root.join("no-such-dir")),
            Err(BuildError::NoDirectory(_))
        ));
        assert!(matches!(
            Build::new(&root.join("src")),
            Err(BuildError::NoManifest(_))
        ));
    }
}
