//! Interleaved rounds and their medians. These machines are noisy, so contenders take turns
//! within every round, and only medians (and ratios of medians from one run) are reported.

use std::time::{Duration, Instant};

use anyhow::Context;

/// The median; `Duration::ZERO` for no samples.
pub fn median(xs: &[Duration]) -> Duration {
    percentile(xs, 50.0)
}

/// The nearest-rank percentile `p` (0–100); `Duration::ZERO` for no samples.
pub fn percentile(xs: &[Duration], p: f64) -> Duration {
    if xs.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = xs.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `a / b` as a ratio of durations.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

/// One contender: a name and one timed repetition.
pub type Contender<'a> = (&'a str, &'a mut dyn FnMut() -> anyhow::Result<()>);

/// Warms every contender up once, then runs each in turn, once per round, and returns every
/// contender's median. Round r starts with contender r (mod their number) and goes on in
/// order, so no contender always runs first (after the others' warm-up) or, with two
/// contenders, always second; with more, each still follows the same one (the order is
/// cyclic), but its place in the round moves, so effects of position such as cache state and
/// CPU frequency average out.
///
/// A sample is the mean of back-to-back repetitions filling at least `min_sample` (one
/// repetition when a single one is longer). A slow contender such as K sequential requests to
/// tesseract-core already amortises wake-ups and cache misses over a long sample; timing a
/// sub-millisecond contender once per round would charge it a cold start that the slow one does
/// not pay, so a fast contender repeats until its sample is as long.
///
/// # Errors
/// The first failure, naming the contender.
pub fn interleaved(
    rounds: usize,
    min_sample: Duration,
    contenders: &mut [Contender<'_>],
) -> anyhow::Result<Vec<Duration>> {
    for (name, f) in contenders.iter_mut() {
        f().with_context(|| format!("warm-up of {name}"))?;
    }
    let mut times = vec![Vec::with_capacity(rounds); contenders.len()];
    for round in 0..rounds.max(1) {
        for i in schedule(round, contenders.len()) {
            let (name, f) = &mut contenders[i];
            times[i].push(sample(min_sample, &mut **f).with_context(|| name.to_string())?);
        }
    }
    Ok(times.iter().map(|t| median(t)).collect())
}

/// The order contenders run in during `round`: all of them, rotated to start at `round`.
fn schedule(round: usize, contenders: usize) -> impl Iterator<Item = usize> {
    (0..contenders).map(move |i| (round + i) % contenders)
}

/// The mean time of `f` over back-to-back repetitions lasting at least `min_sample`.
fn sample(
    min_sample: Duration,
    f: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut reps = 0u32;
    loop {
        f()?;
        reps += 1;
        let elapsed = start.elapsed();
        if elapsed >= min_sample {
            return Ok(elapsed / reps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_repeats_a_fast_contender_and_reports_the_mean_per_call() -> anyhow::Result<()> {
        let min_sample = Duration::from_millis(10);
        let (mut fast_calls, mut slow_calls) = (0u32, 0u32);
        let mut fast = || {
            fast_calls += 1;
            Ok(())
        };
        let mut slow = || {
            slow_calls += 1;
            std::thread::sleep(Duration::from_millis(12));
            Ok(())
        };
        let start = Instant::now();
        let m = interleaved(
            1,
            min_sample,
            &mut [("fast", &mut fast), ("slow", &mut slow)],
        )?;
        let total = start.elapsed();
        // One warm-up call each, then one sample each.
        let reps = fast_calls - 1;
        assert_eq!(
            slow_calls, 2,
            "a call longer than the minimum is one sample"
        );
        assert!(m[1] >= Duration::from_millis(12));
        // The fast sample lasted at least `min_sample` (the mean is rounded down to whole ns)…
        assert!(m[0] * reps + Duration::from_nanos(reps.into()) >= min_sample);
        // …and what comes back is its mean per call, not its length.
        assert!(
            m[0] <= total / reps,
            "{:?} over {reps} calls in {total:?}",
            m[0]
        );
        Ok(())
    }

    #[test]
    fn every_round_runs_every_contender_once_starting_with_a_different_one() {
        let rounds: Vec<Vec<usize>> = (0..4).map(|r| schedule(r, 3).collect()).collect();
        assert_eq!(
            rounds,
            [vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1], vec![0, 1, 2]]
        );
        assert_eq!(schedule(5, 1).collect::<Vec<_>>(), [0]);
        assert_eq!(schedule(0, 0).count(), 0);
    }

    #[test]
    fn interleaved_follows_the_schedule() -> anyhow::Result<()> {
        let order = std::cell::RefCell::new(Vec::new());
        let (mut a, mut b) = (
            || {
                order.borrow_mut().push('a');
                Ok(())
            },
            || {
                order.borrow_mut().push('b');
                Ok(())
            },
        );
        interleaved(3, Duration::ZERO, &mut [("a", &mut a), ("b", &mut b)])?;
        // Warm-up in declaration order, then rounds starting with a, b, a.
        assert_eq!(order.into_inner(), ['a', 'b', 'a', 'b', 'b', 'a', 'a', 'b']);
        Ok(())
    }

    #[test]
    fn no_minimum_means_one_call_per_round() -> anyhow::Result<()> {
        let mut calls = 0u32;
        let mut f = || {
            calls += 1;
            Ok(())
        };
        interleaved(5, Duration::ZERO, &mut [("f", &mut f)])?;
        assert_eq!(calls, 1 + 5);
        Ok(())
    }
}
