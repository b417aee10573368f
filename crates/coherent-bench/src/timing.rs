//! Interleaved timing: every case repeated in turn, so that the machine's drift touches them
//! alike, and the median of the repetitions reported.

use std::time::{Duration, Instant};

/// Runs `case(k)` for every case `k < cases`, `reps` rounds, each round running every case for
/// at least `min_time`; returns each case's median milliseconds per call.
pub fn interleaved(
    cases: usize,
    reps: usize,
    min_time: Duration,
    mut case: impl FnMut(usize),
) -> Vec<f64> {
    let mut times = vec![Vec::new(); cases];
    for _ in 0..reps {
        for (k, t) in times.iter_mut().enumerate() {
            let start = Instant::now();
            let mut n = 0;
            while n == 0 || start.elapsed() < min_time {
                case(k);
                n += 1;
            }
            t.push(start.elapsed().as_secs_f64() * 1e3 / n as f64);
        }
    }
    times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_runs_every_round_and_medians_come_back_in_order() {
        let mut calls = [0usize; 3];
        let medians = interleaved(3, 5, Duration::ZERO, |k| calls[k] += 1);
        assert_eq!(calls, [5, 5, 5]);
        assert_eq!(medians.len(), 3);
        assert!(medians.iter().all(|m| *m >= 0.0));
    }
}
