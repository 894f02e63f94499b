//! `sandbox-probe`: a test guest that misbehaves on request, so the integration tests can
//! check the host's sandbox (deadline, memory cap, traps, stack, WASI capabilities, stdio).
//!
//! Input `mode` picks the behaviour, `n` parameterises it; output `report` says what happened
//! (as `key=value` entries separated by `;`) and `x` carries a number.

use std::hint::black_box;
use std::io::Write;

use tesseract_guest::{DType, Error, Field, Inputs, Outputs, Plain, Schema, Tesseract};

/// The probe. Apply-only.
#[derive(Debug, Default)]
pub struct SandboxProbe;

/// `denied: <error>` or `ALLOWED`, for one attempted capability.
fn outcome<T, E: std::fmt::Display>(r: Result<T, E>) -> String {
    match r {
        Ok(_) => "ALLOWED".to_owned(),
        Err(e) => format!("denied: {e}"),
    }
}

/// Recursion whose frames stay on the wasm stack (nothing address-taken, so no shadow-stack
/// frames) and whose result goes through `black_box`, so it cannot become a loop.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    black_box(recurse(depth + 1)) ^ depth
}

fn run(mode: &str, n: usize) -> Result<(String, f64), Error> {
    match mode {
        "ok" => Ok(("mode=ok".to_owned(), n as f64)),
        "loop" => {
            let mut i: u64 = 0;
            loop {
                i = black_box(i.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut v = vec![1u8; n];
            let last = v.len().saturating_sub(1);
            if let Some(x) = v.get_mut(last) {
                *x = black_box(2);
            }
            let v = black_box(v);
            Ok((
                format!("allocated={}", v.len()),
                f64::from(v.iter().step_by(4096).map(|&b| u32::from(b)).sum::<u32>()),
            ))
        }
        "try_alloc" => {
            let mut v: Vec<u8> = Vec::new();
            v.try_reserve_exact(n)
                .map_err(|e| Error::failed(format!("cannot reserve {n} bytes: {e}")))?;
            v.resize(n, 1);
            let v = black_box(v);
            Ok((format!("reserved={}", v.len()), v.len() as f64))
        }
        "panic" => panic!("deliberate guest panic"),
        "fs" => {
            let read = outcome(std::fs::read("/etc/passwd"));
            let list = outcome(std::fs::read_dir("/"));
            let create = outcome(std::fs::File::create("/tmp/x"));
            Ok((format!("read={read};read_dir={list};create={create}"), 0.0))
        }
        "net" => {
            let tcp = outcome(std::net::TcpStream::connect("127.0.0.1:1"));
            let udp = outcome(std::net::UdpSocket::bind("127.0.0.1:0"));
            Ok((format!("tcp_connect={tcp};udp_bind={udp}"), 0.0))
        }
        "env" => {
            let vars = std::env::vars_os().count();
            let args = std::env::args_os().count();
            Ok((format!("vars={vars};args={args}"), (vars + args) as f64))
        }
        "stdout" => {
            let chunk = vec![b'x'; 64 << 10];
            let mut written = 0;
            while written < n {
                let len = chunk.len().min(n - written);
                let out = std::io::stdout().write_all(&chunk[..len]);
                let err = std::io::stderr().write_all(&chunk[..len]);
                if let Err(e) = out.and(err) {
                    return Err(Error::failed(format!(
                        "write failed after {written} bytes: {e}"
                    )));
                }
                written += len;
            }
            Ok((format!("written={written}"), written as f64))
        }
        "recurse" => Ok(("recursed=true".to_owned(), recurse(0) as f64)),
        other => Err(Error::invalid_input(format!("unknown mode `{other}`"))),
    }
}

impl Tesseract for SandboxProbe {
    fn schema() -> Schema {
        Schema::new("sandbox-probe", "0.1.0")
            .description("Misbehaves on request, to test the host's sandbox.")
            .input(
                Field::string("mode").description(
                    "ok, loop, alloc, try_alloc, panic, fs, net, env, stdout or recurse.",
                ),
            )
            .input(
                Field::integer("n")
                    .default(0)
                    .description("Bytes for alloc, try_alloc and stdout."),
            )
            .output(
                Field::string("report")
                    .description("What happened, as `key=value` entries separated by `;`."),
            )
            .output(Field::scalar("x", DType::Float64).description("A number the mode produced."))
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        let mode = inputs.string("mode")?;
        let n = usize::try_from(inputs.integer("n")?)
            .map_err(|_| Error::invalid_input("`n` must be a non-negative size"))?;
        let (report, x) = run(mode, n)?;
        Ok(Outputs::new()
            .with_plain("report", Plain::Text(report))
            .with_scalar("x", x))
    }
}

tesseract_guest::export!(SandboxProbe);
