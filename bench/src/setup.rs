//! What the harness needs before it measures anything: the components, the server binary,
//! tesseract-core's venv and the numpy twins, and the facts about this machine that a result
//! table must carry.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The workspace this crate lives in.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The three example components, built for wasm32-wasip2 exactly as `tesseract-wasm build` does.
pub struct Components {
    pub vectoradd: PathBuf,
    pub rosenbrock: PathBuf,
    pub steady_state: PathBuf,
}

/// # Errors
/// When the guest build fails.
pub fn build_components(root: &Path) -> anyhow::Result<Components> {
    let artifacts = tesseract_wasm_build::Build::new(root)?
        .packages([
            "example-vectoradd",
            "example-rosenbrock",
            "example-steady-state",
        ])
        .target_dir(root.join("target").join("guests"))
        .run()?;
    let find = |name: &str| {
        artifacts
            .iter()
            .find(|a| a.package == name)
            .map(|a| a.path.clone())
            .with_context(|| format!("{name} was not built"))
    };
    Ok(Components {
        vectoradd: find("example-vectoradd")?,
        rosenbrock: find("example-rosenbrock")?,
        steady_state: find("example-steady-state")?,
    })
}

/// Builds `target/release/tesseract-wasm` (a no-op when it is up to date) and returns its path.
///
/// # Errors
/// When cargo fails.
pub fn build_server(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "tesseract-wasm",
            "--bin",
            "tesseract-wasm",
        ])
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building tesseract-wasm failed ({status})");
    }
    let bin = root.join("target").join("release").join("tesseract-wasm");
    if !bin.is_file() {
        bail!("cargo built no {}", bin.display());
    }
    Ok(bin)
}

/// tesseract-core's server and the numpy twins it runs: contender (a), which every headline
/// ratio needs, so its absence is an error, never a silently shorter table.
pub struct Upstream {
    pub runtime: PathBuf,
    pub python: PathBuf,
    pub vectoradd: PathBuf,
    pub rosenbrock: PathBuf,
    pub steady_state: PathBuf,
}

/// # Errors
/// When the venv or a twin is missing, with the command that makes it.
pub fn find_upstream(root: &Path) -> anyhow::Result<Upstream> {
    let venv = std::env::var_os("TESSERACT_BENCH_VENV")
        .map_or_else(|| root.join("target").join("python-venv"), PathBuf::from);
    let runtime = venv.join("bin").join("tesseract-runtime");
    let python = venv.join("bin").join("python");
    if !runtime.is_file() || !python.is_file() {
        bail!(
            "\n\n  ERROR: tesseract-core's server is missing: no {}.\n  \
             Contender (a), tesseract-core 1.15's own server, is part of every headline target,\n  \
             so the benchmark does not run without it. Create the venv with\n\n      \
             tests/python/run --collect-only -q\n\n  \
             (it builds target/python-venv with the pinned tesseract-core[runtime]), or point\n  \
             TESSERACT_BENCH_VENV at a venv that has tesseract-core[runtime]==1.15.0.\n",
            runtime.display()
        );
    }
    let twins = root.join("tests").join("python").join("twins");
    let twin = |name: &str| -> anyhow::Result<PathBuf> {
        let p = twins.join(name).join("tesseract_api.py");
        if !p.is_file() {
            bail!(
                "\n\n  ERROR: the numpy twin {} is missing.\n  \
                 Contender (a) runs the same maths as the Rust example in numpy; without the twin\n  \
                 there is nothing to compare against.\n",
                p.display()
            );
        }
        Ok(p)
    };
    Ok(Upstream {
        vectoradd: twin("vectoradd")?,
        rosenbrock: twin("rosenbrock")?,
        steady_state: twin("steady_state")?,
        runtime,
        python,
    })
}

/// Date, machine and versions: what makes a table of ratios reproducible.
pub struct Facts {
    pub date: String,
    pub cpu: String,
    pub cores: usize,
    pub memory: String,
    pub os: String,
    pub rustc: String,
    pub wasmtime: String,
    pub python: String,
    pub load_before: String,
}

fn first_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn proc_field(file: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(file).ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    })
}

/// The 1-, 5- and 15-minute load averages: other work on the machine shows here.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

pub fn facts(upstream: Option<&Upstream>) -> Facts {
    let python = upstream.map_or_else(
        || "not used".to_owned(),
        |u| {
            first_line(Command::new(&u.python).args([
                "-c",
                "import sys, tesseract_core, numpy, scipy; \
                 print(f'Python {sys.version.split()[0]}, tesseract-core {tesseract_core.__version__}, \
                 numpy {numpy.__version__}, scipy {scipy.__version__}')",
            ]))
        },
    );
    Facts {
        date: first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        cpu: proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
        cores: std::thread::available_parallelism().map_or(1, |p| p.get()),
        memory: proc_field("/proc/meminfo", "MemTotal").unwrap_or_else(|| "unknown".into()),
        os: first_line(Command::new("uname").args(["-sr"])),
        rustc: first_line(Command::new("rustc").arg("-V")),
        // From Cargo.lock, by build.rs.
        wasmtime: env!("BENCH_WASMTIME_VERSION").to_owned(),
        python,
        load_before: load_average(),
    }
}
