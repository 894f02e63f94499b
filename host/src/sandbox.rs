//! One store per call: the memory cap, the deadline, captured stdio, and typed failures.
//!
//! Every call gets a fresh [`Store`] and a fresh instance, so nothing leaks between calls. The
//! guest sees WASI with no preopened directories, no network, no environment and no
//! arguments; its stdout and stderr go to the host log, truncated past a cap. A trap, a
//! deadline overrun and memory exhaustion come back as distinct [`CallError`]s, with the
//! guest's panic message when there is one.

pub(crate) mod bounded_waits;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::ContractViolation;
use crate::engine::Limits;

/// Why a guest call did not produce a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The component answered with an error: `invalid-input` or `failed`.
    #[error("the component returned {0}")]
    Guest(tesseract_model::GuestError),
    /// The guest trapped: a panic, an abort or a wasm fault.
    #[error("the component trapped: {}", .message.as_deref().unwrap_or(.trap))]
    Trap {
        trap: String,
        message: Option<String>,
    },
    /// The call ran past its deadline and was interrupted.
    #[error("the component ran past its {}s deadline and was stopped", .limit.as_secs_f64())]
    Timeout { limit: Duration },
    /// The guest tried to grow its memory past the cap.
    #[error("the component tried to use more than {limit_bytes} bytes of memory")]
    MemoryLimit { limit_bytes: u64 },
    /// The guest recursed past its stack.
    #[error("the component overflowed its stack")]
    StackOverflow,
    /// Every instance slot is in use.
    #[error("too many concurrent calls: no free instance slot")]
    Busy,
    /// The component returned something the contract does not allow.
    #[error("the component broke its contract: {0}")]
    Contract(String),
    /// The endpoint cannot be served by this component.
    #[error("this component does not support {0}")]
    Unsupported(String),
    /// The request itself is inconsistent (e.g. (co)tangent batch sizes disagree).
    #[error("{0}")]
    InvalidRequest(String),
    /// Anything else wasmtime reported.
    #[error("host error: {0}")]
    Host(String),
}

impl From<ContractViolation> for CallError {
    fn from(e: ContractViolation) -> CallError {
        CallError::Contract(e.0)
    }
}

/// A guest output stream that keeps the first `cap` bytes and silently drops the rest, so a
/// chatty guest can neither fill host memory nor fail because its writes were refused.
#[derive(Clone)]
pub struct CappedPipe {
    inner: Arc<Mutex<Captured>>,
}

/// What a [`CappedPipe`] kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub dropped: u64,
    cap: usize,
}

impl CappedPipe {
    pub fn new(cap: usize) -> CappedPipe {
        CappedPipe {
            inner: Arc::new(Mutex::new(Captured {
                cap,
                ..Captured::default()
            })),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let room = c.cap.saturating_sub(c.bytes.len()).min(bytes.len());
        c.bytes.extend_from_slice(&bytes[..room]);
        c.dropped += (bytes.len() - room) as u64;
    }

    /// Takes what was captured so far.
    pub fn take(&self) -> Captured {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let cap = c.cap;
        std::mem::replace(
            &mut *c,
            Captured {
                cap,
                ..Captured::default()
            },
        )
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always writable: a full buffer drops bytes rather than blocking or closing.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Caps linear memory and remembers that the cap was hit, because a Rust guest that fails to
/// allocate aborts with the same trap as a panic: the flag is what tells them apart.
struct MemoryLimiter {
    max_bytes: usize,
    hit: bool,
}

/// Table growth is not a resource a Tesseract needs much of; this bounds it anyway.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The most random bytes one WASI call may ask for: plenty for seeding, cheap to produce.
const MAX_RANDOM_BYTES: u64 = 64 << 10;

/// The data of one call's store.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    stdout: CappedPipe,
    stderr: CappedPipe,
    /// When the call's time is up (`None`: past the clock's range): what bounds the guest's
    /// waits in WASI host calls.
    deadline: Option<Instant>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Makes a store for one call, deadline armed.
pub fn new_store(engine: &wasmtime::Engine, limits: &Limits) -> Store<HostState> {
    let stdout = CappedPipe::new(limits.max_output_bytes);
    let stderr = CappedPipe::new(limits.max_output_bytes);
    // The builder's defaults already deny everything: no preopens, env, args or sockets.
    let wasi = WasiCtxBuilder::new()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        // One `get-random-bytes` call is a synchronous host call no epoch check interrupts;
        // wasmtime-wasi's default cap (64 MiB) would let it hold a thread for a long while.
        .max_random_size(MAX_RANDOM_BYTES)
        .build();
    let state = HostState {
        wasi,
        table: ResourceTable::new(),
        limiter: MemoryLimiter {
            max_bytes: usize::try_from(limits.max_memory_bytes).unwrap_or(usize::MAX),
            hit: false,
        },
        stdout,
        stderr,
        deadline: Instant::now().checked_add(limits.timeout),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    // Wasmtime charges every list (`len × size_of::<T>()`) and string (its bytes) it lifts
    // from the guest against this "hostcall fuel" before allocating it, afresh for each lift:
    // for an export, the lift of its result. This is what bounds a result whose lists alias
    // the same guest bytes. Its default (128 MiB) is wasmtime's choice, not the operator's.
    store.set_hostcall_fuel(usize::try_from(limits.max_result_bytes).unwrap_or(usize::MAX));
    // Must precede instantiation: the deadline starts at 0 and would interrupt it. The first
    // tick yields once, which tells `drive::drive` the call is long enough to move off the
    // Tokio worker. Each callback measures what is left from the wall-clock deadline, not
    // from the tick count: a guest that waited in a host call (where no epoch check runs)
    // must not get a fresh timeout when it comes back.
    store.set_epoch_deadline(1);
    let mut yielded = false;
    store.epoch_deadline_callback(move |store| {
        let ticks = match store.data().deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => crate::engine::ticks_in(left),
                _ => return Ok(UpdateDeadline::Interrupt),
            },
            None => UNBOUNDED_TICKS,
        };
        Ok(if std::mem::replace(&mut yielded, true) {
            UpdateDeadline::Continue(ticks)
        } else {
            UpdateDeadline::Yield(ticks)
        })
    });
    store
}

/// The epoch deadline of a call whose timeout is past the clock's range (centuries of ticks,
/// far from overflowing the epoch counter).
const UNBOUNDED_TICKS: u64 = 1 << 40;

/// Sends what the guest printed to the log, and returns its stderr text for error messages.
pub fn drain_output(store: &Store<HostState>, what: &dyn fmt::Display) -> String {
    let out = store.data().stdout.take();
    let err = store.data().stderr.take();
    for (name, c) in [("stdout", &out), ("stderr", &err)] {
        if !c.bytes.is_empty() || c.dropped > 0 {
            tracing::info!(
                target: "guest",
                stream = name,
                dropped_bytes = c.dropped,
                "{what}: {}",
                String::from_utf8_lossy(&c.bytes).trim_end()
            );
        }
    }
    String::from_utf8_lossy(&err.bytes).into_owned()
}

/// Turns a wasmtime failure into a [`CallError`], using what the store saw.
pub fn classify(
    error: &wasmtime::Error,
    store: &Store<HostState>,
    stderr: &str,
    limits: &Limits,
) -> CallError {
    if error.is::<wasmtime::PoolConcurrencyLimitError>() {
        return CallError::Busy;
    }
    if exhausted_hostcall_fuel(error) {
        return CallError::Contract(format!(
            "its result would take more than {} bytes of host memory",
            limits.max_result_bytes
        ));
    }
    let trap = error.downcast_ref::<Trap>().copied();
    if store.data().limiter.hit && trap.is_some_and(|t| t != Trap::Interrupt) {
        return CallError::MemoryLimit {
            limit_bytes: limits.max_memory_bytes,
        };
    }
    match trap {
        Some(Trap::Interrupt) => CallError::Timeout {
            limit: limits.timeout,
        },
        Some(Trap::StackOverflow) => CallError::StackOverflow,
        Some(t) => CallError::Trap {
            trap: t.to_string(),
            message: panic_message(stderr),
        },
        None => CallError::Host(format!("{error:#}")),
    }
}

/// Whether wasmtime refused a lift for want of hostcall fuel (see [`new_store`]).
///
/// Its error type is private, so this matches its message: wasmtime is pinned in `Cargo.lock`,
/// and `tests/it/aliasing.rs` fails if an upgrade changes the text.
fn exhausted_hostcall_fuel(error: &wasmtime::Error) -> bool {
    error
        .chain()
        .any(|e| e.to_string().contains(HOSTCALL_FUEL_EXHAUSTED))
}

/// The end of wasmtime 48's `HostcallFuelExhausted` message.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Pulls the panic message out of Rust's default panic output on stderr:
/// `thread '<unnamed>' panicked at src/lib.rs:3:5:\n<message>\nnote: ...`.
pub fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at ")?;
    let text = &stderr[start..];
    let end = text.find("\nnote: ").unwrap_or(text.len());
    let message = text[..end].trim().replace('\n', " ");
    (!message.is_empty()).then_some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_message_is_extracted_from_stderr() {
        let stderr = "thread '<unnamed>' panicked at src/lib.rs:3:5:\ndeliberate\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("panicked at src/lib.rs:3:5: deliberate")
        );
        assert_eq!(panic_message("memory allocation of 8 bytes failed"), None);
    }

    /// Host size over guest (canonical ABI) size of a list element.
    fn ratio<T: wasmtime::component::ComponentType>() -> f64 {
        std::mem::size_of::<T>() as f64 / T::SIZE32 as f64
    }

    #[test]
    fn host_entries_are_at_most_three_times_their_guest_size() {
        // Why `Limits::max_result_bytes` bounds a lift within a small factor of what it holds.
        use crate::bindings::w;
        let entries = [
            ("tree entry", ratio::<(String, w::Leaf)>()),
            ("vectors entry", ratio::<(String, w::Tensor)>()),
            ("jacobian block", ratio::<(String, String, w::Tensor)>()),
            ("abstract-tree entry", ratio::<(String, w::AbstractLeaf)>()),
            ("schema field", ratio::<w::Field>()),
            ("dim", ratio::<w::Dim>()),
        ];
        for (what, r) in entries {
            eprintln!("{what}: {r:.2}");
            assert!(r <= 3.0, "{what}: the host form is {r:.2}× the guest's");
        }
        // Numbers cost the host what they cost the guest.
        for r in [
            ratio::<u64>(),
            ratio::<f64>(),
            ratio::<f32>(),
            ratio::<i32>(),
            ratio::<i64>(),
            ratio::<u8>(),
        ] {
            assert!((r - 1.0).abs() < f64::EPSILON, "{r}");
        }
    }

    #[test]
    fn capped_pipe_truncates_and_counts() {
        let p = CappedPipe::new(4);
        p.push(b"abcdef");
        p.push(b"gh");
        let c = p.take();
        assert_eq!(c.bytes, b"abcd");
        assert_eq!(c.dropped, 4);
        assert!(p.take().bytes.is_empty());
    }
}
