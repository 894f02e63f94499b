//! Servers on loopback: `tesseract-wasm serve` (the built binary) and tesseract-core's own
//! `tesseract-runtime serve` from the test venv. Each is killed when its handle drops.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::client::Client;

/// How long a server may take to answer `/health` before the harness gives up.
const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// A server process on loopback, killed on drop.
pub struct Server {
    pub name: String,
    pub base: String,
    child: Child,
    log: PathBuf,
}

impl Server {
    /// `base` + `route`, e.g. `http://127.0.0.1:4321/apply`.
    pub fn url(&self, route: &str) -> String {
        format!("{}/{route}", self.base)
    }

    /// Polls `/health` until it answers 200; returns the time since `started`.
    ///
    /// # Errors
    /// When the process exits or does not answer within [`STARTUP_LIMIT`].
    pub fn wait_healthy(&mut self, client: &Client) -> anyhow::Result<()> {
        let start = Instant::now();
        let url = self.url("health");
        while start.elapsed() < STARTUP_LIMIT {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before answering; its log is {}",
                    self.name,
                    self.log.display()
                );
            }
            if client.get(&url).is_ok_and(|r| r.status.is_success()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        bail!(
            "{} did not answer /health within {STARTUP_LIMIT:?}; its log is {}",
            self.name,
            self.log.display()
        )
    }

    /// Whether the process is still running (the caller checks this before blaming the
    /// server's answers).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); its log is {}",
                self.name,
                self.log.display()
            );
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port the OS says is free right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How to start one server.
pub struct Spec {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Spec {
    /// `tesseract-wasm serve <wasm> [extra…]` with its precompiled cache in `cache_dir`.
    pub fn wasm(name: &str, bin: &Path, wasm: &Path, cache_dir: &Path, extra: &[&str]) -> Spec {
        let mut args = vec![
            "serve".to_owned(),
            wasm.display().to_string(),
            "--cache-dir".to_owned(),
            cache_dir.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Spec {
            name: name.to_owned(),
            program: bin.to_path_buf(),
            args,
            env: vec![("RUST_LOG".into(), "warn".into())],
        }
    }

    /// tesseract-core's `tesseract-runtime serve` (one worker, its default) on `api`, writing
    /// its per-request run directories under `output_dir`.
    pub fn upstream(name: &str, runtime: &Path, api: &Path, output_dir: &Path) -> Spec {
        Spec {
            name: name.to_owned(),
            program: runtime.to_path_buf(),
            args: vec!["serve".to_owned()],
            env: vec![
                ("TESSERACT_API_PATH".into(), api.display().to_string()),
                (
                    "TESSERACT_OUTPUT_PATH".into(),
                    output_dir.display().to_string(),
                ),
            ],
        }
    }

    /// Starts the process on a fresh port; does not wait for it.
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn spawn(&self, log_dir: &Path) -> anyhow::Result<Server> {
        let port = free_port()?;
        std::fs::create_dir_all(log_dir)?;
        let log = log_dir.join(format!("{}.log", self.name));
        let out = File::create(&log)?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.program.display()))?;
        Ok(Server {
            name: self.name.clone(),
            base: format!("http://127.0.0.1:{port}"),
            child,
            log,
        })
    }

    /// Starts the process and waits until `/health` answers.
    ///
    /// # Errors
    /// When it cannot start or never becomes healthy.
    pub fn start(&self, client: &Client, log_dir: &Path) -> anyhow::Result<Server> {
        let mut server = self.spawn(log_dir)?;
        server.wait_healthy(client)?;
        Ok(server)
    }
}
