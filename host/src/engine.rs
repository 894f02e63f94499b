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
    /// Host bytes one call's result may take once lifted, charged per list and string before
    /// it is copied out of the guest. The canonical ABI lets many lists of a result point at
    /// the same guest bytes, so guest memory alone does not bound this. The host form of a list
    /// entry is at most 3× the guest's (tested in `sandbox`), so an honest result's lift costs
    /// within a small factor of what it holds. By default 256 MiB.
    pub max_result_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_memory_bytes: 512 << 20,
            timeout: Duration::from_secs(60),
            max_output_bytes: 64 << 10,
            loop_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_result_bytes: 256 << 20,
        }
    }
}

/// Epoch ticks in `time`, rounded up, at least one: the epoch deadline that ends a call
/// `time` from now.
pub fn ticks_in(time: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    u64::try_from(time.as_nanos().div_ceil(tick))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Linear-memory bytes a freed pool slot keeps resident (see [`config`]).
const KEEP_RESIDENT: usize = 256 << 10;
/// Table bytes a freed pool slot keeps resident.
const KEEP_RESIDENT_TABLES: usize = 64 << 10;

/// Instance slots in the pool when the caller does not size it: bounds how many guest calls
/// can be live at once. `serve` sizes its pool to what its limits let run at once instead
/// ([`Engine::with_pool`]).
pub const POOL_INSTANCES: u32 = 256;

/// Builds the wasmtime configuration every component is compiled and run with, with
/// [`POOL_INSTANCES`] slots.
pub fn config(limits: &Limits) -> Config {
    config_with_pool(limits, POOL_INSTANCES)
}

/// As [`config`], with `instances` slots.
///
/// The pool reserves address space (not memory) for each slot, sized to the memory cap.
pub fn config_with_pool(limits: &Limits, instances: u32) -> Config {
    let instances = instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(4))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_memory_size(usize::try_from(limits.max_memory_bytes).unwrap_or(usize::MAX));
    // Reset a freed slot by zeroing only its dirty pages (found with the PAGEMAP_SCAN ioctl,
    // Linux ≥ 6.7; elsewhere wasmtime falls back to madvise) instead of madvise-ing it away.
    // madvise flushes the TLB of every core running this process — an IPI per freed instance,
    // a quarter of the server's CPU in a profile of small requests — and makes the next call
    // page-fault its memory back in. Measured (`tesseract-wasm-bench core` / `only overhead`,
    // rosenbrock apply): 27 → 11 µs per in-process call, HTTP p50 200 → 100 µs, 8k → 13k
    // requests/s at 32 connections. Without the scan, keeping pages resident memsets all of
    // them on every reuse and made instantiation 2.5× dearer. 256 KiB covers a small guest's
    // dirty pages; larger memories are reset with madvise beyond it (1 and 4 MiB gained
    // nothing measurable and left RSS megabytes higher per slot in use).
    pool.linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT_TABLES)
        .pagemap_scan(wasmtime::Enabled::Auto);
    let mut cfg = Config::new();
    cfg.epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
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
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
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

/// Everything needed to load and run components: one wasmtime engine, its WASI linker, its
/// epoch ticker and the precompiled cache. Share one per process.
pub struct Engine {
    engine: wasmtime::Engine,
    linker: wasmtime::component::Linker<crate::sandbox::HostState>,
    limits: Limits,
    cache: Option<crate::cache::Cache>,
    _ticker: EpochTicker,
}

/// How to build an [`Engine`].
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub limits: Limits,
    /// Where precompiled components are kept; `None` compiles on every load.
    pub cache_dir: Option<std::path::PathBuf>,
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid engine configuration: {0}")]
    Config(String),
    #[error("cannot start the epoch ticker thread")]
    Ticker(#[source] std::io::Error),
}

impl Engine {
    /// # Errors
    /// When the limits are out of range or wasmtime rejects the configuration.
    pub fn new(options: EngineOptions) -> Result<Engine, EngineError> {
        Engine::with_pool(options, POOL_INSTANCES)
    }

    /// As [`Engine::new`], with `instances` slots in the instance pool: more calls than that
    /// live at once fail with [`crate::sandbox::CallError::Busy`].
    ///
    /// # Errors
    /// As [`Engine::new`].
    pub fn with_pool(options: EngineOptions, instances: u32) -> Result<Engine, EngineError> {
        let limits = options.limits;
        if limits.max_memory_bytes == 0 || limits.timeout.is_zero() || limits.loop_parallelism == 0
        {
            return Err(EngineError::Config(
                "memory cap, timeout and parallelism must all be positive".into(),
            ));
        }
        if limits.max_memory_bytes > 4 << 30 {
            return Err(EngineError::Config(
                "wasm32 memories cannot exceed 4 GiB".into(),
            ));
        }
        let engine = wasmtime::Engine::new(&config_with_pool(&limits, instances))
            .map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let mut linker = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| crate::sandbox::bounded_waits::add_to_linker(&mut linker))
            .map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let ticker = EpochTicker::start(&engine).map_err(EngineError::Ticker)?;
        Ok(Engine {
            engine,
            linker,
            limits,
            cache: options.cache_dir.map(crate::cache::Cache::new),
            _ticker: ticker,
        })
    }

    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.engine
    }

    pub fn linker(&self) -> &wasmtime::component::Linker<crate::sandbox::HostState> {
        &self.linker
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn cache(&self) -> Option<&crate::cache::Cache> {
        self.cache.as_ref()
    }
}
