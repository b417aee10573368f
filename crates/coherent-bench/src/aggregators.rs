//! The cost of the suppression strategies: one training step with each aggregator, on the
//! network of "Coherent Gradients" experiment 2 (FC 784-256-256-256-10, batch 100), against
//! the plain SGD step, in one run with interleaved repetitions.

use crate::timing::interleaved;
use crate::{mnist_batch, registry, spec, CaseResult};
use coherent_core::{
    aggregate_step, BatchGrads, GradientAggregator, Model, OptimizerSettings, PluginArgs, Split,
};
use serde::Serialize;
use std::time::Duration;

/// The aggregators measured: plugin, parameters, description.
const CASES: [(&str, &str, &str); 17] = [
    (
        "mean",
        "",
        "plain SGD step (forward, backward, mean, update)",
    ),
    ("winsorized", "c = 0", "winsorized GD, c = 0 (plain SGD)"),
    ("winsorized", "c = 1", "winsorized GD, c = 1"),
    (
        "winsorized",
        "c = 2",
        "winsorized GD, c = 2 (per-coordinate percentile clipping)",
    ),
    ("winsorized", "c = 4", "winsorized GD, c = 4"),
    ("winsorized", "c = 8", "winsorized GD, c = 8"),
    (
        "winsorized",
        "c = 10",
        "winsorized GD, c = 10 (the authors' default)",
    ),
    ("winsorized", "c = 25", "winsorized GD, c = 25"),
    (
        "coordinate_median",
        "",
        "coordinate-wise median of the per-example gradients",
    ),
    (
        "trimmed_mean",
        "b = 0",
        "trimmed mean, nothing dropped (plain SGD)",
    ),
    (
        "trimmed_mean",
        "b = 2",
        "coordinate-wise trimmed mean, 2 dropped per side",
    ),
    ("trimmed_mean", "b = 8", "trimmed mean, 8 dropped per side"),
    (
        "trimmed_mean",
        "b = 20",
        "trimmed mean, 20 dropped per side",
    ),
    (
        "median_of_means",
        "k = 3",
        "M3: median of three group means",
    ),
    (
        "rm3",
        "",
        "RM3: median of the last three mini-batch gradients",
    ),
    (
        "clip",
        "max_norm = 1.0",
        "per-example norm clipping (DP-SGD without noise)",
    ),
    (
        "geometric_median",
        "",
        "geometric median of the per-example gradients (Weiszfeld)",
    ),
];

/// Cases measured again on the same MLP with `tanh` instead of ReLU: per-example gradients
/// with no examples whose gradient is zero on a whole group of coordinates, which the sorting
/// path otherwise leaves out of its sort (its worst case). Ratios are to this network's own
/// `mean` step.
const DENSE_CASES: [(&str, &str, &str); 4] = [
    ("mean", "", "tanh MLP: plain SGD step"),
    ("winsorized", "c = 4", "tanh MLP: winsorized GD, c = 4"),
    (
        "trimmed_mean",
        "b = 8",
        "tanh MLP: trimmed mean, 8 dropped per side",
    ),
    ("coordinate_median", "", "tanh MLP: coordinate-wise median"),
];

/// The step time of every aggregator.
#[derive(Clone, Debug, Serialize)]
pub struct AggregatorReport {
    /// The network.
    pub network: String,
    /// Examples per step.
    pub batch: usize,
    /// One case per aggregator; `vs_plain` is relative to `mean`.
    pub cases: Vec<CaseResult>,
}

fn step(
    model: &mut dyn Model,
    agg: &mut dyn GradientAggregator,
    batch: &coherent_core::Batch,
    grads: &mut BatchGrads,
    dir: &mut [Vec<f32>],
) {
    let request = agg.needs();
    model.forward_backward(batch, &request, grads);
    aggregate_step(agg, model, grads, request.blocks, dir);
    for (w, d) in model.params_mut().into_iter().zip(dir.iter()) {
        w.iter_mut().zip(d).for_each(|(w, d)| *w -= 0.01 * d);
    }
}

/// Measures every aggregator for `reps` interleaved repetitions of at least `min_time` each.
pub fn run(data: &Split, reps: usize, min_time: Duration) -> AggregatorReport {
    let batch_size = 100;
    let batch = mnist_batch(data, batch_size);
    let mut models: Vec<Box<dyn Model>> = ["", "activation = \"tanh\""]
        .iter()
        .map(|activation| {
            let toml = format!("hidden = [256, 256, 256]\n{activation}");
            let args = PluginArgs::from_toml(&toml).expect("valid TOML");
            (registry().networks["mlp"].build)(&args, &spec()).expect("valid MLP")
        })
        .collect();
    // (model, aggregator) per case: the ReLU cases, then the tanh ones
    let cases: Vec<(usize, &(&str, &str, &str))> = CASES
        .iter()
        .map(|c| (0, c))
        .chain(DENSE_CASES.iter().map(|c| (1, c)))
        .collect();
    let mut aggs: Vec<Box<dyn GradientAggregator>> = cases
        .iter()
        .map(|&(m, (name, args, _))| {
            let mut a = (registry().aggregators[*name].build)(
                &PluginArgs::from_toml(args).expect("valid TOML"),
            )
            .expect("valid aggregator");
            a.configure(OptimizerSettings::sgd(0.01, batch_size))
                .expect("no momentum");
            a.begin(models[m].layers());
            a
        })
        .collect();
    let mut grads = BatchGrads::default();
    let layers = models[0].layers();
    let mut dir: Vec<Vec<f32>> = layers.iter().map(|l| vec![0.0; l.params]).collect();
    let mut one = |k: usize| {
        let m = cases[k].0;
        step(
            models[m].as_mut(),
            aggs[k].as_mut(),
            &batch,
            &mut grads,
            &mut dir,
        );
    };
    (0..cases.len()).for_each(&mut one);
    let medians = interleaved(cases.len(), reps, min_time, one);
    let plain = [medians[0], medians[CASES.len()]];
    AggregatorReport {
        network: "mlp 784-256-256-256-10".into(),
        batch: batch_size,
        cases: cases
            .iter()
            .zip(&medians)
            .map(|(&(m, (name, args, what)), &ms)| {
                let name = case_name(name, args);
                let name = if m == 0 {
                    name
                } else {
                    format!("tanh: {name}")
                };
                CaseResult::timed(name, what, ms, plain[m])
            })
            .collect(),
    }
}

/// The name of a case in the report: the plugin, with its parameters when it has some
/// (`winsorized c=2`).
fn case_name(plugin: &str, args: &str) -> String {
    if args.is_empty() {
        plugin.to_string()
    } else {
        format!("{plugin} {}", args.replace(" = ", "="))
    }
}
