//! Tests that measure the server process itself (its RSS, its file descriptors, its exit), in
//! a binary of their own: cargo runs test binaries one after another, so none of `it/`'s
//! compute-heavy tests share the machine with these measurements, and [`one_at_a_time`] keeps
//! this binary's own tests from overlapping.

use std::sync::{Mutex, MutexGuard, PoisonError};

mod evil;

/// Held for the whole of each test here, so each server is measured alone.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}
