//! `sandbox-probe`: a test guest that misbehaves on request, so the integration tests can
//! check the host's sandbox (deadline, memory cap, traps, stack, WASI capabilities, stdio).
//!
//! Input `mode` picks the behaviour, `n` parameterises it; output `report` says what happened
//! (as `key=value` entries separated by `;`), `x` carries a number, `v` (declared `[4]`) and
//! `count` (declared int64) are zeros unless a mode breaks the output contract on purpose.

use std::hint::black_box;
use std::io::Write;
use std::mem::ManuallyDrop;

use ndarray::Array1;
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

/// Spins for `ms` milliseconds of wall time: slow, but legal.
fn spin(ms: usize) -> u64 {
    let start = std::time::Instant::now();
    let budget = std::time::Duration::from_millis(ms as u64);
    let mut i: u64 = 0;
    while start.elapsed() < budget {
        i = black_box(i.wrapping_add(1));
    }
    i
}

/// The normal outputs around `report` and `x`.
fn outputs(report: String, x: f64) -> Outputs {
    Outputs::new()
        .with_plain("report", Plain::Text(report))
        .with_scalar("x", x)
        .with_array("v", Array1::<f64>::zeros(4))
        .with_scalar("count", 0i64)
}

/// Lists in the result that alias one buffer: `alias` and `alias_text`.
const ALIASES: usize = 64;
/// The aliased buffer's size in MiB when `n` is 0: fits a 48 MiB guest.
const ALIAS_MIB: usize = 16;

/// `mode=alias`: [`ALIASES`] array outputs `alias.[i]` whose buffers are all the same `n` MiB
/// of float64s. Each `Vec` is rebuilt from the one buffer's raw parts; none is ever dropped,
/// and the SDK and wit-bindgen move them without copying (length equals capacity, so
/// `into_boxed_slice` does not reallocate), so every entry of the result carries the same
/// (pointer, length). Lifting them would copy the buffer once per entry. The paths are
/// undeclared: a host must refuse the result before it gets as far as the schema.
fn aliased_arrays(mib: usize) -> Outputs {
    let len = (mib << 20) / size_of::<f64>();
    let mut buffer = ManuallyDrop::new(vec![0.5f64; len]);
    let (ptr, cap) = (buffer.as_mut_ptr(), buffer.capacity());
    (0..ALIASES).fold(outputs("mode=alias".into(), 0.0), |out, i| {
        // SAFETY: none of these `Vec`s is dropped or grown before the result leaves the
        // guest. A host that refuses the result skips the post-return that would free them;
        // one that accepted it would have the post-return free the buffer 64 times, undefined
        // behaviour confined to this instance's memory, which is discarded after the call.
        let alias = unsafe { Vec::from_raw_parts(ptr, len, cap) };
        out.with_array(format!("alias.[{i}]"), Array1::from(alias))
    })
}

/// `mode=alias_text`: as [`aliased_arrays`], with [`ALIASES`] text outputs `text.[i]` that
/// are all the same `n` MiB of ASCII.
fn aliased_texts(mib: usize) -> Outputs {
    let mut buffer = ManuallyDrop::new(vec![b'a'; mib << 20]);
    let (ptr, len, cap) = (buffer.as_mut_ptr(), buffer.len(), buffer.capacity());
    (0..ALIASES).fold(outputs("mode=alias_text".into(), 0.0), |out, i| {
        // SAFETY: as in `aliased_arrays`; the bytes are ASCII, so valid UTF-8.
        let alias = unsafe { String::from_raw_parts(ptr, len, cap) };
        out.with_plain(format!("text.[{i}]"), Plain::Text(alias))
    })
}

/// Modes that return something their declared outputs do not allow (or, for `nonfinite`,
/// values that are legal but awkward). `None` for the other modes.
fn contract_mode(mode: &str, n: usize) -> Option<Outputs> {
    let base = || outputs(format!("mode={mode}"), 0.0);
    Some(match mode {
        "nonfinite" => Outputs::new()
            .with_plain("report", Plain::Text("mode=nonfinite".into()))
            .with_scalar("x", f64::NAN)
            .with_array(
                "v",
                Array1::from(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.5]),
            )
            .with_scalar("count", 0i64),
        // int64 declared; NumPy's same_kind rule does not cast a float down to it.
        "wrong_dtype" => base().with_scalar("count", 0.5f64),
        "wrong_shape" => base().with_array("v", Array1::<f64>::zeros(3)),
        "wrong_path" => base().with_scalar("undeclared", 1.0f64),
        // `n` elements where 4 are declared.
        "big_output" => base().with_array("v", Array1::<f64>::from_elem(n, 1.0)),
        "alias" => aliased_arrays(if n == 0 { ALIAS_MIB } else { n }),
        "alias_text" => aliased_texts(if n == 0 { ALIAS_MIB } else { n }),
        _ => return None,
    })
}

fn run(mode: &str, n: usize) -> Result<(String, f64), Error> {
    match mode {
        "ok" => Ok(("mode=ok".to_owned(), n as f64)),
        "slow" => Ok((format!("spun={}", spin(n).min(1)), n as f64)),
        "sleep" => {
            // A host call that waits: epoch interruption cannot reach into it.
            std::thread::sleep(std::time::Duration::from_millis(n as u64));
            Ok((format!("slept={n}"), n as f64))
        }
        "sleep_then_loop" => {
            std::thread::sleep(std::time::Duration::from_millis(n as u64));
            let mut i: u64 = 0;
            loop {
                i = black_box(i.wrapping_add(1));
            }
        }
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
            .input(Field::string("mode").description(
                "ok, slow, sleep, sleep_then_loop, loop, alloc, try_alloc, panic, fs, net, env, stdout, recurse, \
                     nonfinite, wrong_dtype, wrong_shape, wrong_path, big_output, alias or \
                     alias_text.",
            ))
            .input(Field::integer("n").default(0).description(
                "Bytes for alloc, try_alloc and stdout; milliseconds for slow, sleep and sleep_then_loop; \
                         elements for big_output; MiB of the aliased buffer for alias and \
                         alias_text (0: 16).",
            ))
            .output(
                Field::string("report")
                    .description("What happened, as `key=value` entries separated by `;`."),
            )
            .output(Field::scalar("x", DType::Float64).description("A number the mode produced."))
            .output(
                Field::array("v", DType::Float64, [Some(4)])
                    .description("Four numbers: zeros, or what a contract mode returns."),
            )
            .output(
                Field::scalar("count", DType::Int64)
                    .description("Zero, or what a contract mode returns."),
            )
    }

    fn apply(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        let mode = inputs.string("mode")?;
        let n = usize::try_from(inputs.integer("n")?)
            .map_err(|_| Error::invalid_input("`n` must be a non-negative size"))?;
        if let Some(out) = contract_mode(mode, n) {
            return Ok(out);
        }
        let (report, x) = run(mode, n)?;
        Ok(outputs(report, x))
    }
}

tesseract_guest::export!(SandboxProbe);
