//! The one wasmtime [`Engine`] a process uses, and the knobs that shape every guest call.
//!
//! The engine owns the pooling allocator (instantiation in microseconds, so every call can
//! get a fresh instance) and epoch interruption, driven by exactly one ticker thread per
//! engine. [`Limits`] is read once, here and in the sandbox, so a deadline or memory cap means
//! the same thing everywhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Interval between epoch ticks. Deadlines are rounded up to whole ticks, so a call may run
/// up to one tick past its deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-call resource limits for guests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Caps the linear memory of one guest instance, in bytes. Every call gets a fresh
    /// instance, so this is also the most one call can hold. A guest that allocates past it
    /// sees allocation failure (and usually traps), reported as a memory-limit error. By
    /// default 512 MiB.
    pub max_memory_bytes: u64,
    /// Wall-clock budget of one guest call. A guest cannot skip the check: the epoch ticker
    /// interrupts it at the next loop back-edge or call. By default 60 s.
    pub timeout: Duration,
    /// Guest stdout and stderr bytes kept for the log, each; the rest is dropped (the guest
    /// still sees its writes succeed). By default 64 KiB.
    pub max_output_bytes: usize,
    /// Fresh instances that one looped batch may run at once. By default the number of cores.
    pub loop_parallelism: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_memory_bytes: 512 << 20,
            timeout: Duration::from_secs(60),
            max_output_bytes: 64 << 10,
            loop_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl Limits {
    /// The epoch deadline for one call, in ticks, rounded up.
    pub fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_nanos().max(1);
        u64::try_from(self.timeout.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX).max(1)
    }
}

/// Instance slots in the pool: bounds how many guest calls can be live at once.
const POOL_INSTANCES: u32 = 256;

/// Builds the wasmtime configuration every component is compiled and run with.
///
/// The pool reserves address space (not memory) for each slot, sized to the memory cap.
pub fn config(limits: &Limits) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 4)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 4)
        .total_stacks(POOL_INSTANCES)
        .max_memory_size(usize::try_from(limits.max_memory_bytes).unwrap_or(usize::MAX))
        // Fresh instances reuse warm pages instead of page-faulting new ones: large arrays
        // cross the boundary about 3x faster (see shared/reference/wasm-host-notes.md).
        .linear_memory_keep_resident(1 << 20);
    let mut cfg = Config::new();
    cfg.epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .wasm_backtrace(true);
    cfg
}

/// Advances an engine's epoch every [`EPOCH_TICK`] until dropped. One per engine, never one
/// per call.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the ticker thread.
    ///
    /// # Errors
    /// When the OS cannot spawn a thread.
    pub fn start(engine: &wasmtime::Engine) -> std::io::Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })?;
        Ok(EpochTicker { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
