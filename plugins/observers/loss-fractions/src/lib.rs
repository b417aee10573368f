//! Observer plugin `loss_fractions`: which examples supply the loss reduction of a step,
//! pristine or corrupt (Chatterjee, "Coherent Gradients", ICLR 2020, experiment 1).
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
//! Only runs with corrupted labels are measured. Cost: the group sums `g_p` and `g_null` come
//! from the step's own backward pass ([`GradRequest::subsets`]), one extra weight-gradient
//! product per layer and group, every `every` steps.

use coherent_core::{
    load_state, save_state, ConfigError, Evaluation, GradRequest, Measurements, ObserverEntry,
    PluginArgs, PluginConfig, Rng, RunInfo, RunObserver, StepGrads, StepInfo,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

coherent_core::plugin_crate!();

/// Parameters of `loss_fractions`.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct LossFractionsConfig {
    /// Measure every N steps (0: never); only runs with corrupted labels are measured.
    #[serde(default = "ten")]
    pub every: usize,
}

fn ten() -> usize {
    10
}

/// Running sums of the loss-reduction fractions: the observer's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sums {
    /// Window sums of `[f_p, f_c, f_p_null, f_c_null]` since the last report, and their count.
    window: [f64; 4],
    window_steps: usize,
    /// Cumulative `<g, g_p>`, `<g, g_c>`, the same for the null world, and `<g, g>`.
    cum: [f64; 5],
    /// Examples seen by the measured steps: pristine, corrupt.
    seen: [usize; 2],
    /// The generator of the null world's designations (derived from the run's seed).
    null_rng: u64,
}

/// The observer.
#[derive(Clone, Debug)]
pub struct LossFractions {
    every: usize,
    active: bool,
    sums: Sums,
    /// This step's corrupt count and the null generator's state after drawing its designation.
    pending: Option<(usize, u64)>,
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
    /// The observer measuring every `every` steps.
    pub fn new(every: usize) -> LossFractions {
        LossFractions {
            every,
            active: false,
            sums: Sums::default(),
            pending: None,
        }
    }

    /// Adds a measured step: `<g, g_p>`, `<g, g_null>`, `<g, g>` and its group sizes.
    fn add(&mut self, gp: f64, gp_null: f64, g2: f64, pristine: usize, corrupt: usize) {
        let s = &mut self.sums;
        let f = [gp / g2, (g2 - gp) / g2, gp_null / g2, (g2 - gp_null) / g2];
        s.window.iter_mut().zip(f).for_each(|(w, v)| *w += v);
        s.window_steps += 1;
        let parts = [gp, g2 - gp, gp_null, g2 - gp_null, g2];
        s.cum.iter_mut().zip(parts).for_each(|(c, v)| *c += v);
        s.seen[0] += pristine;
        s.seen[1] += corrupt;
    }

    /// The values to report at an evaluation; starts a new window. Empty before the first
    /// measured step.
    fn report(&mut self, out: &mut Measurements) {
        let s = &mut self.sums;
        if s.cum[4] <= 0.0 {
            return;
        }
        let names = [
            "f_pristine",
            "f_corrupt",
            "f_pristine_null",
            "f_corrupt_null",
        ];
        if s.window_steps > 0 {
            for (name, w) in names.iter().zip(s.window) {
                out.push(*name, w / s.window_steps as f64);
            }
        }
        for (name, c) in names.iter().zip(s.cum) {
            out.push(format!("{name}_cum"), c / s.cum[4]);
        }
        let total = (s.seen[0] + s.seen[1]) as f64;
        for (k, name) in names[..2].iter().enumerate() {
            if s.seen[k] > 0 {
                let share = s.seen[k] as f64 / total;
                out.push(format!("{name}_per_example"), s.cum[k] / s.cum[4] / share);
            }
        }
        (s.window, s.window_steps) = ([0.0; 4], 0);
    }
}

impl RunObserver for LossFractions {
    fn begin(&mut self, run: &RunInfo<'_>) -> Result<(), String> {
        self.active = self.every > 0 && run.train.corrupted.iter().any(|&c| c);
        self.sums = Sums {
            null_rng: Rng::derived(run.seed, "null-world").state(),
            ..Sums::default()
        };
        Ok(())
    }

    fn needs(&mut self, step: &StepInfo<'_>) -> GradRequest {
        self.pending = None;
        if !self.active || !step.step.is_multiple_of(self.every) {
            return GradRequest::SUM;
        }
        let rows = step.indices.len();
        let corrupt = step
            .indices
            .iter()
            .filter(|&&i| step.train.corrupted[i])
            .count();
        let pristine: Vec<usize> = (0..rows)
            .filter(|&r| !step.train.corrupted[step.indices[r]])
            .collect();
        // The null world: as many "corrupt" examples, chosen at random within the batch.
        let mut shuffled: Vec<usize> = (0..rows).collect();
        let mut rng = Rng::from_state(self.sums.null_rng);
        rng.shuffle(&mut shuffled);
        self.pending = Some((corrupt, rng.state()));
        GradRequest {
            subsets: vec![pristine, shuffled[corrupt..].to_vec()],
            ..GradRequest::SUM
        }
    }

    fn after_step(&mut self, step: &StepInfo<'_>, grads: &StepGrads<'_>) {
        let Some((corrupt, rng)) = self.pending.take() else {
            return;
        };
        let sum = &grads.batch.sum;
        let g2 = dot(sum, sum);
        if g2 <= 0.0 || !g2.is_finite() {
            return;
        }
        self.sums.null_rng = rng;
        let (gp, gp_null) = (dot(sum, &grads.subsets[0]), dot(sum, &grads.subsets[1]));
        self.add(gp, gp_null, g2, step.indices.len() - corrupt, corrupt);
    }

    fn on_evaluation(&mut self, _eval: &mut Evaluation<'_>, out: &mut Measurements) {
        if self.active {
            self.report(out);
        }
    }

    fn state(&self) -> Value {
        save_state(&self.sums)
    }

    fn restore(&mut self, state: Value) -> Result<(), String> {
        self.sums = load_state(state)?;
        Ok(())
    }
}

/// Builds the `loss_fractions` observer from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn RunObserver>, ConfigError> {
    let config: LossFractionsConfig = args.parse()?;
    Ok(Box::new(LossFractions::new(config.every)))
}

coherent_core::register! {
    ObserverEntry {
        name: "loss_fractions",
        description: "Under label noise, the share of each step's loss reduction the pristine and the corrupt examples supply, against a null world (f_pristine, f_corrupt).",
        params: LossFractionsConfig::params,
        build,
        default_on: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_follow_their_definition_and_the_window_restarts() {
        let mut f = LossFractions::new(1);
        f.active = true;
        // g = g_p + g_c with <g, g_p> = 3, <g, g> = 4; null world <g, g_null> = 2
        f.add(3.0, 2.0, 4.0, 6, 2);
        f.add(1.0, 2.0, 4.0, 4, 4);
        let mut out = Measurements::default();
        f.report(&mut out);
        assert_eq!(out.get("f_pristine"), Some((0.75 + 0.25) / 2.0));
        assert_eq!(out.get("f_corrupt_null"), Some(0.5));
        assert_eq!(out.get("f_pristine_cum"), Some(4.0 / 8.0));
        // pristine examples were 10 of 16: per example 0.5 / (10 / 16)
        assert_eq!(out.get("f_pristine_per_example"), Some(0.5 / (10.0 / 16.0)));
        let mut again = Measurements::default();
        f.report(&mut again);
        assert_eq!(
            again.get("f_pristine"),
            None,
            "a new window has no steps yet"
        );
        assert_eq!(again.get("f_pristine_cum"), Some(0.5));
        let state = f.state();
        let mut g = LossFractions::new(1);
        g.restore(state).unwrap();
        assert_eq!(g.sums, f.sums);
    }
}
