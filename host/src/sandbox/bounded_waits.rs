//! WASI's waiting calls (`wasi:io/poll`'s `poll` and `pollable.block`), bounded by the call's
//! deadline.
//!
//! Epoch interruption only stops wasm code. A guest that sleeps (`std::thread::sleep`, a
//! `subscribe-duration` pollable) waits inside the host, where no epoch check runs, so
//! without this a one-minute sleep would hold its thread and its instance slot for a minute
//! whatever the timeout. These replacements wait on the same futures as wasmtime-wasi's own
//! and trap with [`Trap::Interrupt`] when the deadline passes first, which
//! [`super::classify`] reports as a timeout like any other overrun.

use std::time::Instant;

use wasmtime::component::{Linker, Resource};
use wasmtime::{StoreContextMut, Trap};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::io::poll::{Host, HostPollable};

use super::HostState;

/// The `wasi:io/poll` instance wasmtime-wasi registers (its WIT package version).
const POLL_INSTANCE: &str = "wasi:io/poll@0.2.12";

/// Replaces the blocking functions of `wasi:io/poll` in `linker`, which must already hold
/// wasmtime-wasi's asynchronous WASI.
///
/// # Errors
/// When `linker` does not hold [`POLL_INSTANCE`]: a wasmtime-wasi upgrade moved it, and the
/// engine must not start with unbounded waits.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    // `Linker::instance` makes a missing instance rather than fail, so check first that
    // defining these without shadowing is refused, i.e. that wasmtime-wasi's are there.
    linker.allow_shadowing(false);
    if shadow_poll(linker).is_ok() {
        return Err(wasmtime::format_err!(
            "wasmtime-wasi no longer registers `{POLL_INSTANCE}`: its waits cannot be bounded"
        ));
    }
    linker.allow_shadowing(true);
    let result = shadow_poll(linker);
    linker.allow_shadowing(false);
    result
}

fn shadow_poll(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut poll = linker.instance(POLL_INSTANCE)?;
    poll.func_wrap_async(
        "poll",
        |mut store: StoreContextMut<'_, HostState>, (pollables,): (Vec<Resource<DynPollable>>,)| {
            Box::new(async move {
                let deadline = store.data().deadline;
                let table = &mut store.data_mut().table;
                Ok((within(deadline, Host::poll(table, pollables)).await??,))
            })
        },
    )?;
    poll.func_wrap_async(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, HostState>, (pollable,): (Resource<DynPollable>,)| {
            Box::new(async move {
                let deadline = store.data().deadline;
                let table = &mut store.data_mut().table;
                within(deadline, HostPollable::block(table, pollable)).await?
            })
        },
    )?;
    Ok(())
}

/// Awaits `wait`, or traps with [`Trap::Interrupt`] at `deadline`.
async fn within<T>(
    deadline: Option<Instant>,
    wait: impl Future<Output = T>,
) -> wasmtime::Result<T> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d.into(), wait)
            .await
            .map_err(|_elapsed| wasmtime::Error::new(Trap::Interrupt)),
        None => Ok(wait.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linker_without_wasmtime_wasis_poll_is_refused() {
        let engine = wasmtime::Engine::default();
        let mut bare = Linker::<HostState>::new(&engine);
        let Err(e) = add_to_linker(&mut bare) else {
            panic!("unbounded waits went unnoticed");
        };
        assert!(e.to_string().contains(POLL_INSTANCE), "{e}");

        let mut wasi = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut wasi).expect("wasmtime-wasi links");
        add_to_linker(&mut wasi).expect("wasmtime-wasi's poll is there to replace");
    }
}
