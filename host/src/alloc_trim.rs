//! Returning freed memory to the OS once the server goes idle, for the `tesseract-wasm`
//! binary's allocator, mimalloc (v3, which `mimalloc` 0.1.52 builds by default).
//!
//! mimalloc keeps freed memory for reuse, so back-to-back requests do not fault their
//! buffers in again, and returns it lazily, in two steps that both need allocator activity:
//!
//! - A page a thread no longer uses goes back to the shared arena only when that thread
//!   collects: on its own allocator activity, or at its exit. Blocks other threads free into
//!   the page wait for that too. [`on_worker_park`] collects a Tokio worker's pages as it goes
//!   idle.
//! - A page back in the arena is purged (`MADV_DONTNEED`) once `purge_delay` (1 s) has passed,
//!   but only when some thread next does allocator work. [`spawn_purger`] runs the due purges
//!   from a thread of its own every half second.
//!
//! The runtime that serves requests calls [`on_worker_park`] and [`on_worker_unpark`] from
//! Tokio's `on_thread_park` and `on_thread_unpark`. Threads outside it (Tokio's blocking pool)
//! hand their pages back when they exit, which a short `thread_keep_alive` brings forward.
//!
//! Measured on vectoradd (`tesseract-wasm serve`, idle 14 MiB), after five 10⁶-element
//! base64 requests: 118 MiB with neither, unchanged 13 s later (the workers never exit, so
//! nothing ever collects); 20–26 MiB two seconds after the last request with both. (Before
//! `no_thp`, see host/Cargo.toml: 177 MiB with neither, 85 MiB with the purger alone.)
//!
//! In a process whose global allocator is not mimalloc (this library's tests) a collect
//! finds no mimalloc state on the thread and returns at once.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How often the purger runs due purges: half the purge delay, so memory is returned at most
/// about 1.5 s after it reached the arena.
const PURGE_INTERVAL: Duration = Duration::from_millis(500);

/// Work a worker does between two collects. A busy worker parks thousands of times a second,
/// and collecting at every park slowed small requests measurably (the next request fetches
/// fresh pages for what the collect freed); once per millisecond of work still cost 10% of
/// rosenbrock apply's throughput at 32 connections (17.4k vs 19.5k requests/s, `bench only
/// overhead`, two runs each). At 20 ms a collect comes once in hundreds of small requests,
/// while a large request, which works longer than that, is still collected at its worker's
/// next park. What a skipped collect leaves behind is bounded by what that worker did in
/// under 20 ms.
const BUSY_BEFORE_COLLECT: Duration = Duration::from_millis(20);

/// Collects after which mimalloc frees an empty page it kept ("retired") as the last of its
/// size class: `MI_RETIRE_CYCLES / 4` for medium and large pages (up to 4 MiB each; small
/// 64 KiB pages take 16 and are left). After the requests above (before `no_thp`), one
/// collect per park left 30–37 MiB, four 24–33 MiB, as low as a forced collect, which would
/// also purge pages still within their delay.
const RETIRE_COLLECTS: usize = 4;

/// Starts the thread that runs mimalloc's due purges every [`PURGE_INTERVAL`]. Call once, at
/// startup of a process whose global allocator is mimalloc.
///
/// # Errors
/// When the thread cannot be spawned.
pub fn spawn_purger() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("mimalloc-purge".into())
        // The loop needs almost no stack; a small one keeps the thread itself out of RSS.
        .stack_size(64 * 1024)
        .spawn(|| {
            // SAFETY: takes no arguments. Without it a thread that never allocated has no
            // mimalloc state, and `mi_collect` on it returns before reaching the arena.
            unsafe { libmimalloc_sys::mi_thread_init() };
            loop {
                std::thread::sleep(PURGE_INTERVAL);
                // `false`: only purges that are due, never pages freed within the delay,
                // which a busy server is about to reuse.
                // SAFETY: takes no pointers.
                unsafe { libmimalloc_sys::mi_collect(false) };
            }
        })
        .map(drop)
}

/// A worker's run time since its last collect.
#[derive(Debug, Clone, Copy, Default)]
struct Busy {
    /// When it last woke, if it has since the last park.
    woke: Option<Instant>,
    /// Run time before that wake-up, since the last collect.
    ran: Duration,
}

impl Busy {
    /// The worker parks at `now`: is a collect due? A worker never woken (its first park)
    /// collects.
    fn park(&mut self, now: Instant) -> bool {
        let ran = self
            .woke
            .map_or(BUSY_BEFORE_COLLECT, |t| self.ran + now.duration_since(t));
        let due = ran >= BUSY_BEFORE_COLLECT;
        *self = Busy {
            woke: None,
            ran: if due { Duration::ZERO } else { ran },
        };
        due
    }
}

thread_local! {
    static BUSY: Cell<Busy> = const { Cell::new(Busy { woke: None, ran: Duration::ZERO }) };
}

/// For Tokio's `on_thread_unpark`: notes when this worker woke, for [`on_worker_park`].
pub fn on_worker_unpark() {
    BUSY.with(|busy| {
        busy.set(Busy {
            woke: Some(Instant::now()),
            ..busy.get()
        });
    });
}

/// For Tokio's `on_thread_park`: once this worker has run [`BUSY_BEFORE_COLLECT`] since its
/// last collect, collects its free pages as it goes idle, handing them to the arena, where
/// the purger returns them to the OS once their delay has passed.
pub fn on_worker_park() {
    let due = BUSY.with(|busy| {
        let mut b = busy.get();
        let due = b.park(Instant::now());
        busy.set(b);
        due
    });
    if due {
        // `false`: frees this thread's empty pages and takes in the blocks other threads
        // freed into them, without forcing purges that a busy server would fault back in.
        for _ in 0..RETIRE_COLLECTS {
            // SAFETY: takes no pointers; touches only the calling thread's allocator state.
            unsafe { libmimalloc_sys::mi_collect(false) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collect_is_due_after_enough_work_however_it_is_split() {
        let start = Instant::now();
        let busy_for = BUSY_BEFORE_COLLECT;
        // Two fifths of the threshold per stretch, with long idle gaps in between.
        let stretch = busy_for * 2 / 5;
        let gap = busy_for * 10;
        let mut busy = Busy::default();
        assert!(busy.park(start), "a worker's first park collects");
        let mut now = start;
        let mut dues = Vec::new();
        for _ in 0..3 {
            now += gap;
            busy.woke = Some(now);
            now += stretch;
            dues.push(busy.park(now));
        }
        assert_eq!(
            dues,
            [false, false, true],
            "due at the third stretch, not before"
        );
        // Counting starts again after a collect.
        now += gap;
        busy.woke = Some(now);
        now += busy_for / 2;
        assert!(!busy.park(now));
        now += gap;
        busy.woke = Some(now);
        now += busy_for;
        assert!(busy.park(now));
    }

    #[test]
    fn the_hooks_are_harmless_without_mimalloc_as_the_allocator() {
        // This test binary uses the system allocator: the collects find no mimalloc state.
        on_worker_park();
        on_worker_unpark();
        on_worker_park();
        assert!(BUSY.with(Cell::get).woke.is_none());
    }
}
