//! Several metrics on one sample: the runner measures the metrics that share a sample and a
//! chunk size in the same backward passes, with the union of their requests. This part times
//! one measurement of `coherence` alone, of four metrics sharing the passes (`coherence`,
//! `gradient_diversity`, `noise_scale`, `gsnr`), of the three that need only the per-example
//! norms, and of the four measured one after the other with passes of their own (what sharing
//! saves), on a fixed sample of MNIST digits through the MLP at initialisation.

use crate::timing::interleaved;
use crate::{registry, spec, CaseResult};
use coherent_core::{Measurements, Model, PluginArgs, Split};
use coherent_runner::plan::{MetricSchedule, PlannedMetric};
use coherent_runner::train::{MetricRunner, Pass};
use serde::Serialize;
use std::time::Duration;

/// The cases: name, metrics, whether they share their passes, what it measures.
const CASES: [(&str, &[&str], bool, &str); 4] = [
    ("one", &["coherence"], true, "coherence alone"),
    (
        "four_shared",
        &["coherence", "gradient_diversity", "noise_scale", "gsnr"],
        true,
        "four metrics in shared passes (union of requests: norms and sum of squares)",
    ),
    (
        "three_shared",
        &["coherence", "gradient_diversity", "noise_scale"],
        true,
        "three metrics of S and Q in shared passes (the same request as coherence)",
    ),
    (
        "four_apart",
        &["coherence", "gradient_diversity", "noise_scale", "gsnr"],
        false,
        "the same four, each with passes of its own",
    ),
];

/// The time of one measurement of each set of metrics.
#[derive(Clone, Debug, Serialize)]
pub struct MetricsReport {
    /// The network.
    pub network: String,
    /// The sample size `m`.
    pub sample: usize,
    /// Examples per backward pass.
    pub chunk: usize,
    /// One case per set of metrics; `vs_plain` is relative to `coherence` alone, and
    /// `ms_per_step` is the milliseconds of one measurement.
    pub cases: Vec<CaseResult>,
}

fn planned(names: &[&str], sample: usize, chunk: usize) -> Vec<PlannedMetric> {
    names
        .iter()
        .map(|name| {
            let entry = registry().metrics[name];
            PlannedMetric {
                plugin: name.to_string(),
                metric: (entry.build)(&PluginArgs::empty()).expect("valid metric"),
                schedule: MetricSchedule {
                    every_steps: 1,
                    sample,
                    chunk,
                    per_layer: true,
                },
                headline: entry.headline,
            }
        })
        .collect()
}

/// One measurement of `metrics` (shared passes) or of each on its own.
fn measure(
    model: &mut dyn Model,
    data: &Split,
    metrics: &mut [PlannedMetric],
    shared: bool,
) -> Measurements {
    let layers = model.layers().to_vec();
    let mut out = Measurements::new(true);
    let groups: Vec<&mut [PlannedMetric]> = match shared {
        true => vec![metrics],
        false => metrics.chunks_mut(1).collect(),
    };
    for group in groups {
        let mut runner = MetricRunner::new(group, 0, data.len());
        let pass = Pass {
            model: &mut *model,
            layers: &layers,
            train: data,
        };
        runner.measure(group, 0, 1, pass, &mut out);
    }
    out
}

/// Measures every case for `reps` interleaved repetitions of at least `min_time` each.
pub fn run(data: &Split, reps: usize, min_time: Duration) -> MetricsReport {
    let (sample, chunk) = (1000.min(data.len()), 500);
    let args = PluginArgs::from_toml("hidden = [256]").expect("valid TOML");
    let mut model = (registry().networks["mlp"].build)(&args, &spec()).expect("valid MLP");
    let mut sets: Vec<Vec<PlannedMetric>> = CASES
        .iter()
        .map(|(_, names, _, _)| planned(names, sample, chunk))
        .collect();
    let medians = interleaved(CASES.len(), reps, min_time, |k| {
        std::hint::black_box(measure(model.as_mut(), data, &mut sets[k], CASES[k].2));
    });
    MetricsReport {
        network: "mlp 784-256-10".into(),
        sample,
        chunk,
        cases: CASES
            .iter()
            .zip(&medians)
            .map(|((name, _, _, what), &ms)| {
                CaseResult::timed(name.to_string(), what, ms, medians[0])
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_passes_give_the_values_of_separate_ones() {
        let data = crate::mnist();
        let args = PluginArgs::from_toml("hidden = [16]").unwrap();
        let mut model = (registry().networks["mlp"].build)(&args, &spec()).unwrap();
        let names = CASES[1].1;
        let shared = measure(model.as_mut(), &data, &mut planned(names, 300, 128), true);
        let apart = measure(model.as_mut(), &data, &mut planned(names, 300, 128), false);
        assert!(shared.values().len() > 8);
        assert_eq!(shared.values().len(), apart.values().len());
        for ((n, a), (m, b)) in shared.values().iter().zip(apart.values()) {
            assert_eq!(n, m);
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{n}: {a} vs {b}");
        }
    }
}
