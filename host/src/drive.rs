//! Where a guest call runs: on the thread that asked for it, handing the Tokio worker's
//! scheduler to another thread only once the call turns out to be long.
//!
//! Most calls (a small apply) finish in tens of microseconds. Handing the worker's core away
//! before every call (`block_in_place`) cost a small request several cross-thread wake-ups,
//! most of its latency (BENCHMARKS.md, *p50 latency*). So [`drive`] first polls the call
//! inline. It comes back unfinished when the engine's first epoch tick fell during it (the
//! store yields there once, see `sandbox::new_store`: every call longer than a tick, and a
//! short one now and then) or when the guest waits in a WASI host call; then the rest of it
//! runs under [`blocking`], so wasm code never stalls the tasks queued on its worker for
//! longer than a tick.

use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs a guest call's future to completion.
///
/// On a multi-threaded runtime it is polled once on this thread, and if unfinished completed
/// under [`blocking`] on the runtime's handle (whose timers serve the guest's bounded waits).
/// Outside a runtime (the CLI, tests) it runs on wasmtime-wasi's ambient runtime, as
/// wasmtime-wasi's synchronous calls do.
///
/// # Panics
/// On a current-thread runtime's own thread, if the call does not finish in its first poll:
/// nothing may block there. Guest calls reach `drive` through [`where_calls_may_block`].
pub fn drive<F: Future>(call: F) -> F::Output {
    let Ok(handle) = Handle::try_current() else {
        return wasmtime_wasi::runtime::in_tokio(call);
    };
    let mut call = pin!(call);
    // The waker can be a no-op: if this poll is unfinished, `block_on` polls again at once
    // with its own waker, which every pending future then registers.
    if let Poll::Ready(out) = call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        return out;
    }
    blocking(|| handle.block_on(call))
}

/// Runs `work`, which makes guest calls, where [`drive`] may block: here, unless this thread
/// belongs to a current-thread runtime (tests), whose one thread must not block and whose
/// timers, which a waiting guest needs, only fire while that thread is free. Then `work` runs
/// on a thread of its own, outside the runtime.
pub fn where_calls_may_block<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::CurrentThread) => {
            std::thread::scope(|scope| match scope.spawn(work).join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            })
        }
        _ => work(),
    }
}

/// Runs `work`, which may block for as long as a guest's deadline, without stalling the
/// current Tokio worker's other tasks: on a multi-threaded runtime the worker first hands its
/// scheduler core (queued tasks, I/O driver) to another thread (`block_in_place`). Anywhere
/// else (no runtime, or a blocking-pool thread) `work` just runs.
pub fn blocking<R>(work: impl FnOnce() -> R) -> R {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{drive, where_calls_may_block};

    #[test]
    fn a_call_that_turns_long_hands_the_only_worker_to_other_tasks() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let other_task_ran = rt.block_on(async {
            tokio::spawn(async {
                let (tx, rx) = std::sync::mpsc::channel();
                tokio::spawn(async move { tx.send(()) });
                // Unfinished after its first poll, as a guest call past its first epoch tick
                // is; then it blocks until the task queued on this worker has run.
                drive(async move {
                    tokio::task::yield_now().await;
                    rx.recv_timeout(Duration::from_secs(10)).is_ok()
                })
            })
            .await
        });
        assert!(matches!(other_task_ran, Ok(true)), "{other_task_ran:?}");
    }

    #[test]
    fn on_a_current_thread_runtime_a_call_that_waits_neither_panics_nor_hangs() {
        // Nothing may block this runtime's one thread (`block_on` would panic), and a timer
        // made on it would only fire once the thread is free again.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let out = rt.block_on(async {
            where_calls_may_block(|| {
                drive(async {
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    42
                })
            })
        });
        assert_eq!(out, 42);
    }

    #[test]
    fn outside_a_runtime_a_call_runs_on_the_ambient_one() {
        let slept = drive(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            7
        });
        assert_eq!(slept, 7);
    }
}
