//! The buffer a request body is read into, charged to the server's shared byte budget.
//!
//! The budget is charged for the buffer's *capacity*, not the bytes in it, so what the process
//! commits for bodies stays within the budget even where the OS counts reserved address space
//! (strict overcommit). The declared `Content-Length` is reserved in one piece, as growing by
//! doubling copied a 10 MB body over again and faulted it in twice, but only once half of it
//! has arrived: a sender that declares 32 MiB and stalls holds at most twice what it sent (while
//! the buffer doubles, and once the declared length is reserved), never what it claimed, so
//! stalled bodies cannot take the budget from others much more cheaply than by sending it.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A body's bytes so far, and the budget permits for the buffer's capacity.
pub(super) struct BodyBuffer {
    bytes: Vec<u8>,
    permit: Option<OwnedSemaphorePermit>,
    /// The declared length, capped at the body limit; 0 when unknown.
    declared: usize,
}

/// The shared budget ran out, or the OS refused the memory.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct OutOfBudget;

impl BodyBuffer {
    pub(super) fn new(declared: usize) -> BodyBuffer {
        BodyBuffer {
            bytes: Vec::new(),
            permit: None,
            declared,
        }
    }

    /// Appends `data`, growing the buffer (and its charge) first if it is full.
    pub(super) fn push(&mut self, data: &[u8], budget: &Arc<Semaphore>) -> Result<(), OutOfBudget> {
        let need = self.bytes.len().saturating_add(data.len());
        if need > self.bytes.capacity() {
            self.grow(need, budget)?;
        }
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    fn grow(&mut self, need: usize, budget: &Arc<Semaphore>) -> Result<(), OutOfBudget> {
        let doubled = need.max(self.bytes.capacity().saturating_mul(2));
        let preferred = if self.declared < need {
            doubled
        } else if need >= self.declared / 2 {
            self.declared
        } else {
            doubled.min(self.declared)
        };
        // The preferred size first, then what the budget has left (up to it), then just
        // enough: near the end of the budget a body that fits exactly still gets in, and a
        // tight budget is taken in one step, not regrown (and copied) frame by frame.
        let held = self.held();
        let left = held.saturating_add(budget.available_permits());
        for capacity in [preferred, left.min(preferred).max(need), need] {
            if self.charge(capacity, budget) {
                let additional = capacity - self.bytes.len();
                if self.bytes.try_reserve_exact(additional).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(OutOfBudget)
    }

    /// The bytes of budget this buffer holds.
    fn held(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Makes the permits held cover `capacity` bytes; false if the budget has too few left.
    fn charge(&mut self, capacity: usize, budget: &Arc<Semaphore>) -> bool {
        let held = self.held();
        let Some(more) = capacity.checked_sub(held) else {
            return true;
        };
        if more == 0 {
            return true;
        }
        let Some(p) = u32::try_from(more)
            .ok()
            .and_then(|n| budget.clone().try_acquire_many_owned(n).ok())
        else {
            return false;
        };
        match self.permit.as_mut() {
            Some(h) => h.merge(p),
            None => self.permit = Some(p),
        }
        true
    }

    /// The bytes, and the permits that keep their share of the budget until dropped.
    pub(super) fn finish(self) -> (Vec<u8>, Option<OwnedSemaphorePermit>) {
        (self.bytes, self.permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charge_covers_the_capacity_and_the_declared_length_is_reserved_late() {
        let budget = Arc::new(Semaphore::new(1 << 20));
        let mut b = BodyBuffer::new(1000);
        b.push(&[1; 10], &budget).expect("fits");
        assert!(b.held() >= b.bytes.capacity(), "capacity charged");
        assert!(
            b.held() < 1000,
            "a stalled sender holds what it sent, not its claim"
        );
        b.push(&[2; 300], &budget).expect("fits");
        assert!(b.held() <= 2 * 310, "at most twice what arrived");
        b.push(&[2; 200], &budget).expect("fits");
        assert_eq!(b.bytes.capacity(), 1000, "reserved in one piece past half");
        assert_eq!(b.held(), 1000);
        b.push(&[3; 490], &budget).expect("fits");
        let (bytes, permit) = b.finish();
        assert_eq!(bytes.len(), 1000);
        assert_eq!(budget.available_permits(), (1 << 20) - 1000);
        drop(permit);
        assert_eq!(budget.available_permits(), 1 << 20);
    }

    #[test]
    fn an_undeclared_length_grows_by_doubling_and_stays_charged() {
        let budget = Arc::new(Semaphore::new(1 << 20));
        let mut b = BodyBuffer::new(0);
        for _ in 0..100 {
            b.push(&[7; 33], &budget).expect("fits");
            assert_eq!(b.held(), b.bytes.capacity());
        }
        assert_eq!(b.bytes.len(), 3300);
        assert!(b.bytes.capacity() < 2 * 3300);
    }

    #[test]
    fn a_tight_budget_is_not_regrown_frame_by_frame() {
        // The declared length does not fit; every frame used to regrow to exactly what had
        // arrived, copying the body over again each time.
        let budget = Arc::new(Semaphore::new(3000));
        let mut b = BodyBuffer::new(4000);
        let mut capacities = vec![];
        while b.push(&[0; 10], &budget).is_ok() {
            if capacities.last() != Some(&b.bytes.capacity()) {
                capacities.push(b.bytes.capacity());
            }
        }
        assert!(capacities.len() <= 12, "{capacities:?}");
        assert_eq!(b.bytes.len(), 3000, "the whole budget was used");
    }

    #[test]
    fn a_body_that_fits_exactly_gets_in_and_one_more_byte_does_not() {
        let budget = Arc::new(Semaphore::new(100));
        let mut b = BodyBuffer::new(0);
        b.push(&[0; 60], &budget).expect("fits");
        b.push(&[0; 40], &budget)
            .expect("fits exactly, though doubling would not");
        assert_eq!(b.push(&[0], &budget), Err(OutOfBudget));
        assert_eq!(budget.available_permits(), 0);
        drop(b);
        assert_eq!(
            budget.available_permits(),
            100,
            "a refused body releases its charge"
        );
    }
}
