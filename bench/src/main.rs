//! `tesseract-wasm-bench`: tesseract-wasm measured side by side with tesseract-core's own server
//! and with the native build of the same guest crates, in one run on one machine.
//!
//! - `all`: the six benchmarks of the performance issue. Starts every server on loopback
//!   (`tesseract-wasm serve`, and `tesseract-runtime serve` from `target/python-venv` on the numpy
//!   twins in `tests/python/twins/`), warms them up, runs the contenders in interleaved rounds,
//!   prints medians, ratios and each target's verdict, and writes `BENCHMARKS.md` and
//!   `bench/results/jvp-vs-k.png`.
//! - `smoke`: the same code paths at tiny sizes in seconds, writing into a temporary directory;
//!   for CI, so the harness cannot rot. It judges nothing.
//! - `core`: the in-process numbers only (no HTTP, no Python).
//!
//! These machines are noisy, so only ratios within one run mean anything.

mod client;
mod core;
mod plot;
mod report;
mod servers;
mod setup;
mod stats;
mod suites;
mod wire;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;

use crate::report::Results;
use crate::suites::{Ctx, Plan};

/// Measure tesseract-wasm against tesseract-core's server and native code
#[derive(Debug, Parser)]
enum Cli {
    /// Every benchmark and target of the performance issue; writes BENCHMARKS.md and the plot
    All {
        /// Where to write the table
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        /// Where to write the PNG plot
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
        /// Interleaved rounds for the timed benchmarks
        #[arg(long, default_value_t = 7)]
        rounds: usize,
    },
    /// One benchmark of `all`, printed only (no files): for rerunning a noisy subset or profiling
    Only {
        /// tangents, overhead, large, cold, compute or looped
        suite: String,
        /// Use the smoke run's tiny sizes
        #[arg(long)]
        smoke: bool,
    },
    /// Tiny sizes, every code path, a few seconds; writes into a temporary directory
    Smoke {
        /// Write the markdown and the plot here instead (kept)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// The LU kernel in wasm under several engine settings, and natively: where wasm's time goes
    Lu {
        #[arg(long, default_value_t = 256)]
        n: usize,
        #[arg(long, default_value_t = 21)]
        reps: usize,
        /// Only the server's engine settings (one engine, so a profiler's symbol map is exact)
        #[arg(long)]
        server_only: bool,
    },
    /// In-process only: batched vs looped vs native (steady-state), wasm vs native apply,
    /// instantiation
    Core {
        /// Length of steady-state's vector
        #[arg(long, default_value_t = 256)]
        n: usize,
        /// Number of (co)tangents in one batch
        #[arg(long, default_value_t = 64)]
        k: usize,
        /// Interleaved rounds; each contender's median over them is reported
        #[arg(long, default_value_t = 9)]
        rounds: usize,
    },
}

fn git_rev(root: &Path) -> String {
    Command::new("git")
        .current_dir(root)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
}

/// How the markdown links the plot: relative to the markdown's directory when it is below it.
fn link(markdown: &Path, plot: &Path) -> String {
    markdown
        .parent()
        .and_then(|dir| plot.strip_prefix(dir).ok())
        .unwrap_or(plot)
        .display()
        .to_string()
}

fn measure(plan: Plan, smoke: bool, markdown: &Path, plot_path: &Path) -> anyhow::Result<()> {
    let root = setup::workspace_root();
    // Contender (a) is in every headline target: without it, stop before anything else.
    let upstream = setup::find_upstream(&root)?;
    let facts = setup::facts(Some(&upstream));
    let command = format!(
        "cargo run --release -p tesseract-wasm-bench -- {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    println!(
        "{command}\n{}, {} cores; {}\n{}",
        facts.cpu, facts.cores, facts.rustc, facts.python
    );
    println!("load average before: {}", facts.load_before);

    let components = setup::build_components(&root)?;
    let bin = setup::build_server(&root)?;
    let scratch = tempfile::tempdir()?;
    let ctx = Ctx {
        client: client::Client::new()?,
        plan: plan.clone(),
        components,
        bin,
        upstream,
        log_dir: root.join("target").join("bench-logs"),
        cache_dir: root.join("target").join("bench-cache"),
        scratch: scratch.path().to_path_buf(),
    };
    println!("server logs: {}", ctx.log_dir.display());

    println!(
        "\n1. many tangents (steady-state), medians of {} rounds",
        plan.rounds
    );
    let tangents = suites::tangents::run(&ctx)?;
    println!("\n2. per-request overhead (rosenbrock apply)");
    let overhead = suites::overhead::run(&ctx)?;
    println!("\n3. large arrays (vectoradd apply)");
    let large = suites::large_arrays::run(&ctx)?;
    println!("\n4. cold start");
    let cold = suites::cold_start::run(&ctx)?;
    println!("\n5. wasm vs native compute");
    let compute = suites::compute::run(&root, &ctx.components.steady_state, &ctx.cache_dir, &plan)?;
    println!("\n6. looped fallback scaling");
    let looped = suites::looped::run(&ctx)?;

    let results = Results {
        tangents,
        overhead,
        large,
        cold,
        compute,
        looped,
    };
    let mut verdicts = report::verdicts(&results);
    if smoke {
        // Tiny sizes on a busy machine: nothing is judged, only the harness is exercised.
        verdicts.iter_mut().for_each(|v| v.met = None);
    }
    report::print(&verdicts);
    let meta = report::Meta {
        facts: &facts,
        load_after: setup::load_average(),
        command,
        git: git_rev(&root),
        smoke,
        min_sample: plan.min_sample,
        plot_link: link(markdown, plot_path),
    };
    println!("load average after: {}", meta.load_after);
    report::write(markdown, &report::markdown(&results, &verdicts, &meta))?;
    plot::jvp_vs_k(&results.tangents, plot_path)?;
    println!("\nwrote {} and {}", markdown.display(), plot_path.display());
    Ok(())
}

fn only(suite: &str, plan: Plan) -> anyhow::Result<()> {
    let root = setup::workspace_root();
    let upstream = setup::find_upstream(&root)?;
    let components = setup::build_components(&root)?;
    let bin = setup::build_server(&root)?;
    let scratch = tempfile::tempdir()?;
    let ctx = Ctx {
        client: client::Client::new()?,
        plan,
        components,
        bin,
        upstream,
        log_dir: root.join("target").join("bench-logs"),
        cache_dir: root.join("target").join("bench-cache"),
        scratch: scratch.path().to_path_buf(),
    };
    match suite {
        "tangents" => suites::tangents::run(&ctx).map(drop),
        "overhead" => suites::overhead::run(&ctx).map(drop),
        "large" => suites::large_arrays::run(&ctx).map(drop),
        "cold" => suites::cold_start::run(&ctx).map(drop),
        "compute" => suites::compute::run(
            &root,
            &ctx.components.steady_state,
            &ctx.cache_dir,
            &ctx.plan,
        )
        .map(drop),
        "looped" => suites::looped::run(&ctx).map(drop),
        other => anyhow::bail!(
            "no benchmark {other:?}: expected tangents, overhead, large, cold, compute or looped"
        ),
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::All {
            markdown,
            plot,
            rounds,
        } => {
            let root = setup::workspace_root();
            let markdown = markdown.unwrap_or_else(|| root.join("BENCHMARKS.md"));
            let plot =
                plot.unwrap_or_else(|| root.join("bench").join("results").join("jvp-vs-k.png"));
            let plan = Plan {
                rounds,
                ..Plan::full()
            };
            measure(plan, false, &markdown, &plot)
        }
        Cli::Smoke { out } => {
            let temp = tempfile::tempdir()?;
            let dir = out.unwrap_or_else(|| temp.path().to_path_buf());
            measure(
                Plan::smoke(),
                true,
                &dir.join("BENCHMARKS.md"),
                &dir.join("jvp-vs-k.png"),
            )?;
            // The smoke run checks that both files exist and are not empty, nothing more.
            for f in ["BENCHMARKS.md", "jvp-vs-k.png"] {
                let len = std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
                anyhow::ensure!(len > 0, "smoke run wrote no {f}");
            }
            Ok(())
        }
        Cli::Only { suite, smoke } => {
            only(&suite, if smoke { Plan::smoke() } else { Plan::full() })
        }
        Cli::Core { n, k, rounds } => core::run(n, k, rounds),
        Cli::Lu {
            n,
            reps,
            server_only,
        } => suites::compute::lu_settings(n, reps, server_only),
    }
}
