//! Which examples supply the loss reduction of a step: pristine or corrupt (Chatterjee,
//! "Coherent Gradients", ICLR 2020, experiment 1).
//!
//! For a training batch with summed gradient `g = g_p + g_c` (`g_p` the sum over its pristine
//! examples, `g_c` over its corrupt ones), a small step along `-g` reduces the batch loss by
//! about `lr <g, g>`, of which the pristine examples supply the fraction
//! `f_p = <g, g_p> / <g, g>` and the corrupt ones `f_c = <g, g_c> / <g, g> = 1 - f_p`.
//! The null world re-designates the same number of the batch's examples as "corrupt" at
//! random and computes the same fractions: what the fractions would be if corrupt examples
//! were no different from the others.
//!
//! Reported at each evaluation (names in `metrics.jsonl`):
//! - `f_pristine`, `f_corrupt`, `f_pristine_null`, `f_corrupt_null`: means over the steps
//!   measured since the previous evaluation;
//! - `f_pristine_cum`, `f_corrupt_cum` (and `_null_cum`): cumulative fractions from step 0,
//!   `sum_t <g_t, g_p,t> / sum_t <g_t, g_t>`;
//! - `f_pristine_per_example`, `f_corrupt_per_example`: the cumulative fractions divided by
//!   the group's share of the examples seen, so 1 means "each example supplied its fair share",
//!   more than 1 that the group's examples each supplied more.
//!
//! Cost: one extra backward pass over the pristine part of the batch and one over the null
//! part, every `fractions_every` steps.

use coherent_core::{Batch, BatchGrads, GradRequest, Model, Rng, Split};
use serde::{Deserialize, Serialize};

/// Running sums of the loss-reduction fractions.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LossFractions {
    /// Window sums of `[f_p, f_c, f_p_null, f_c_null]` since the last report, and their count.
    window: [f64; 4],
    window_steps: usize,
    /// Cumulative `<g, g_p>`, `<g, g_c>`, the same for the null world, and `<g, g>`.
    cum: [f64; 5],
    /// Examples seen by the measured steps: pristine, corrupt.
    seen: [usize; 2],
    /// The random designations of the null world (derived from the run's seed).
    null_rng: u64,
    #[serde(skip)]
    scratch: Scratch,
}

#[derive(Clone, Debug, Default)]
struct Scratch {
    batch: Batch,
    grads: BatchGrads,
    group: Vec<usize>,
    shuffled: Vec<usize>,
}

/// `<a, b>` over layers, in f64.
fn dot(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(u, v)| *u as f64 * *v as f64)
                .sum::<f64>()
        })
        .sum()
}

impl LossFractions {
    /// Fractions for a run with `seed`.
    pub fn new(seed: u64) -> LossFractions {
        LossFractions {
            null_rng: Rng::derived(seed, "null-world").state(),
            ..LossFractions::default()
        }
    }

    /// Measures the step whose batch holds the training examples `indices` and whose summed
    /// gradient is `sum` (the model still at the weights of that step).
    pub fn measure(
        &mut self,
        model: &mut dyn Model,
        train: &Split,
        indices: &[usize],
        sum: &[Vec<f32>],
    ) {
        let corrupt = indices.iter().filter(|&&i| train.corrupted[i]).count();
        let g2 = dot(sum, sum);
        if g2 <= 0.0 || !g2.is_finite() {
            return;
        }
        let s = &mut self.scratch;
        s.group.clear();
        s.group
            .extend(indices.iter().copied().filter(|&i| !train.corrupted[i]));
        let gp = group_dot(model, train, &s.group, sum, &mut s.batch, &mut s.grads);
        // The null world: as many "corrupt" examples, chosen at random within the batch.
        s.shuffled.clear();
        s.shuffled.extend_from_slice(indices);
        let mut rng = Rng::from_state(self.null_rng);
        rng.shuffle(&mut s.shuffled);
        self.null_rng = rng.state();
        s.group.clear();
        s.group.extend_from_slice(&s.shuffled[corrupt..]);
        let gp_null = group_dot(model, train, &s.group, sum, &mut s.batch, &mut s.grads);
        let f = [gp / g2, (g2 - gp) / g2, gp_null / g2, (g2 - gp_null) / g2];
        for (w, v) in self.window.iter_mut().zip(f) {
            *w += v;
        }
        self.window_steps += 1;
        for (c, v) in self
            .cum
            .iter_mut()
            .zip([gp, g2 - gp, gp_null, g2 - gp_null, g2])
        {
            *c += v;
        }
        self.seen[0] += indices.len() - corrupt;
        self.seen[1] += corrupt;
    }

    /// The values to report at an evaluation; starts a new window. Empty before the first
    /// measured step.
    pub fn report(&mut self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        if self.cum[4] <= 0.0 {
            return out;
        }
        let names = [
            "f_pristine",
            "f_corrupt",
            "f_pristine_null",
            "f_corrupt_null",
        ];
        if self.window_steps > 0 {
            for (name, w) in names.iter().zip(self.window) {
                out.push((name.to_string(), w / self.window_steps as f64));
            }
        }
        for (name, c) in names.iter().zip(self.cum) {
            out.push((format!("{name}_cum"), c / self.cum[4]));
        }
        let total = (self.seen[0] + self.seen[1]) as f64;
        for (k, name) in ["f_pristine", "f_corrupt"].iter().enumerate() {
            if self.seen[k] > 0 {
                let share = self.seen[k] as f64 / total;
                out.push((
                    format!("{name}_per_example"),
                    self.cum[k] / self.cum[4] / share,
                ));
            }
        }
        (self.window, self.window_steps) = ([0.0; 4], 0);
        out
    }
}

/// `<sum, g_group>` with `g_group` the summed gradient of the examples `group`.
fn group_dot(
    model: &mut dyn Model,
    train: &Split,
    group: &[usize],
    sum: &[Vec<f32>],
    batch: &mut Batch,
    grads: &mut BatchGrads,
) -> f64 {
    if group.is_empty() {
        return 0.0;
    }
    batch.gather(train, group);
    model.forward_backward(batch, &GradRequest::SUM, grads);
    dot(sum, &grads.sum)
}
