//! The shipped server in a child process, for tests that measure the process itself.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::server_binary;

/// util-linux's `setpriv`, which sets a parent-death signal and then execs the server (same
/// pid), so no server outlives a test process that is killed rather than unwound.
const SETPRIV: &str = "/usr/bin/setpriv";

/// `tesseract-wasm serve` of one component on a free loopback port, killed on drop if still
/// running.
pub struct ServeProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServeProcess {
    /// Serves `wasm` with `flags` and extra environment variables `env`, precompiled into
    /// `cache_dir`, and waits until it prints the address it listens on.
    pub fn start(
        wasm: &str,
        cache_dir: &Path,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> ServeProcess {
        let mut command = if Path::new(SETPRIV).is_file() {
            let mut c = Command::new(SETPRIV);
            c.args(["--pdeathsig", "KILL", "--"]).arg(server_binary());
            c
        } else {
            Command::new(server_binary())
        };
        let mut child = command
            .arg("serve")
            .arg(wasm)
            .args(["--port", "0", "--cache-dir"])
            .arg(cache_dir)
            .args(flags)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the server prints its address")
            .parse()
            .expect("a socket address");
        ServeProcess { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size now (`VmRSS`), in bytes.
    pub fn rss(&self) -> u64 {
        self.status_bytes("VmRSS")
    }

    /// Peak resident set size (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        self.status_bytes("VmHWM")
    }

    /// Sets the peak back to the current RSS (proc(5), `clear_refs`).
    pub fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")
            .expect("reset the server's peak RSS");
    }

    /// A `/proc/<pid>/status` field given in kB, in bytes.
    fn status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{field} in kB"))
            * 1024
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for the server")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
