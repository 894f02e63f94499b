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

/// Warms every contender up once, then runs each once per round, in turn, and returns every
/// contender's median.
///
/// # Errors
/// The first failure, naming the contender.
pub fn interleaved(
    rounds: usize,
    contenders: &mut [Contender<'_>],
) -> anyhow::Result<Vec<Duration>> {
    for (name, f) in contenders.iter_mut() {
        f().with_context(|| format!("warm-up of {name}"))?;
    }
    let mut times = vec![Vec::with_capacity(rounds); contenders.len()];
    for _ in 0..rounds.max(1) {
        for (i, (name, f)) in contenders.iter_mut().enumerate() {
            let t = Instant::now();
            f().with_context(|| name.to_string())?;
            times[i].push(t.elapsed());
        }
    }
    Ok(times.iter().map(|t| median(t)).collect())
}
