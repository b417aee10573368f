//! Aggregator plugins `rm3` and `ra3` (Zielinski, Krishnan & Chatterjee 2020, "Weak and
//! Strong Gradient Directions", arXiv 2003.07422).
//!
//! `rm3` takes, coordinate by coordinate, the median of the current mini-batch gradient and
//! the two previous ones (median of three = sum - min - max): a direction moves the weights
//! only if at least two recent batches support it. It needs no per-example gradients and makes
//! an update every step. `ra3`, their average, is the control that separates the reuse of
//! stale gradients from the median. As in the authors' code: the first two steps do not move
//! the weights (the buffer fills), weight decay is added to each gradient before it is
//! buffered (so the optimizer applies none), and momentum is refused as unstable.

use coherent_core::{
    AggregatorEntry, AggregatorState, ConfigError, GradRequest, GradientAggregator, Gradients,
    LayerInfo, OptimizerSettings, PluginArgs, PluginConfig, Refusal,
};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of `rm3` and `ra3`: none.
#[derive(Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct RecentConfig {}

/// Median (`rm3`) or mean (`ra3`) of the last three mini-batch gradients.
#[derive(Clone, Debug)]
pub struct RecentThree {
    median: bool,
    weight_decay: f32,
    buffers: [Vec<Vec<f32>>; 3],
    /// Gradients buffered so far (at most 3).
    filled: usize,
    /// The slot of the current step's gradient.
    slot: usize,
}

impl RecentThree {
    /// `rm3` when `median`, `ra3` otherwise.
    pub fn new(median: bool) -> RecentThree {
        RecentThree {
            median,
            weight_decay: 0.0,
            buffers: Default::default(),
            filled: 0,
            slot: 0,
        }
    }

    fn name(&self) -> &'static str {
        if self.median {
            "rm3"
        } else {
            "ra3"
        }
    }
}

impl GradientAggregator for RecentThree {
    fn needs(&self) -> GradRequest {
        GradRequest::SUM
    }

    fn configure(&mut self, settings: OptimizerSettings) -> Result<OptimizerSettings, Refusal> {
        if settings.momentum != 0.0 {
            return Err(format!(
                "`{}` runs without momentum (its authors found momentum unstable with stale gradients); set `momentum = 0` in [training]",
                self.name()
            )
            .into());
        }
        self.weight_decay = settings.weight_decay as f32;
        Ok(OptimizerSettings {
            weight_decay: 0.0,
            ..settings
        })
    }

    fn begin(&mut self, layers: &[LayerInfo]) {
        for b in &mut self.buffers {
            *b = layers.iter().map(|l| vec![0.0; l.params]).collect();
        }
        (self.filled, self.slot) = (0, 0);
    }

    fn state(&self) -> AggregatorState {
        AggregatorState {
            numbers: vec![self.filled as u64, self.slot as u64],
            vectors: self.buffers.iter().flatten().cloned().collect(),
        }
    }

    fn restore(&mut self, state: AggregatorState) -> Result<(), String> {
        let layers = self.buffers[0].len();
        let fits = state.numbers.len() == 2
            && state.numbers[0] <= 3
            && state.numbers[1] < 3
            && state.vectors.len() == 3 * layers
            && state
                .vectors
                .iter()
                .zip(self.buffers.iter().flatten())
                .all(|(a, b)| a.len() == b.len());
        if !fits {
            return Err(format!(
                "the checkpoint's `{}` buffer does not fit this model",
                self.name()
            ));
        }
        (self.filled, self.slot) = (state.numbers[0] as usize, state.numbers[1] as usize);
        let mut vectors = state.vectors.into_iter();
        for buf in self.buffers.iter_mut().flatten() {
            *buf = vectors.next().expect("length checked");
        }
        Ok(())
    }

    fn aggregate(&mut self, g: &Gradients<'_>, _direction: &mut [Vec<f32>]) {
        g.batch.mean_into(&mut self.buffers[self.slot]);
    }

    fn finish(&mut self, params: &[&[f32]], direction: &mut [Vec<f32>]) {
        let wd = self.weight_decay;
        if wd != 0.0 {
            for (buf, w) in self.buffers[self.slot].iter_mut().zip(params) {
                buf.iter_mut().zip(w.iter()).for_each(|(b, w)| *b += wd * w);
            }
        }
        self.filled = (self.filled + 1).min(3);
        self.slot = (self.slot + 1) % 3;
        let [a, b, c] = &self.buffers;
        for (l, d) in direction.iter_mut().enumerate() {
            if self.filled < 3 {
                d.fill(0.0);
                continue;
            }
            for (k, x) in d.iter_mut().enumerate() {
                let (u, v, w) = (a[l][k], b[l][k], c[l][k]);
                *x = if self.median {
                    u + v + w - u.min(v).min(w) - u.max(v).max(w)
                } else {
                    (u + v + w) / 3.0
                };
            }
        }
    }
}

/// Builds the `rm3` plugin (no parameters).
pub fn build_rm3(args: &PluginArgs) -> Result<Box<dyn GradientAggregator>, ConfigError> {
    let _: RecentConfig = args.parse()?;
    Ok(Box::new(RecentThree::new(true)))
}

/// Builds the `ra3` plugin (no parameters).
pub fn build_ra3(args: &PluginArgs) -> Result<Box<dyn GradientAggregator>, ConfigError> {
    let _: RecentConfig = args.parse()?;
    Ok(Box::new(RecentThree::new(false)))
}

coherent_core::register! {
    AggregatorEntry {
        name: "rm3",
        description: "RM3 (Zielinski et al. 2020): coordinate-wise median of the current and two previous mini-batch gradients; no momentum.",
        params: RecentConfig::params,
        build: build_rm3,
    }
}

coherent_core::register! {
    AggregatorEntry {
        name: "ra3",
        description: "RA3 (Zielinski et al. 2020): average of the current and two previous mini-batch gradients (the control for RM3); no momentum.",
        params: RecentConfig::params,
        build: build_ra3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::BatchGrads;

    fn step(a: &mut RecentThree, g: &[f32], w: &[f32]) -> Vec<f32> {
        let grads = BatchGrads {
            batch_size: 2,
            sum: vec![g.iter().map(|v| v * 2.0).collect()],
            ..Default::default()
        };
        let mut dir = vec![vec![f32::NAN; g.len()]];
        a.aggregate(
            &Gradients {
                batch: &grads,
                blocks: None,
            },
            &mut dir,
        );
        a.finish(&[w], &mut dir);
        dir.remove(0)
    }

    #[test]
    fn a_restored_state_continues_the_same_directions() {
        let layers = [LayerInfo::flat("l", "test", 3)];
        let mut r = coherent_core::Rng::new(2);
        let mut g = || -> Vec<f32> { (0..3).map(|_| r.normal() as f32).collect() };
        let w = [0.5, -1.0, 2.0];
        let mut a = RecentThree::new(true);
        a.begin(&layers);
        step(&mut a, &g(), &w);
        step(&mut a, &g(), &w);
        step(&mut a, &g(), &w);
        let mut b = RecentThree::new(true);
        b.begin(&layers);
        b.restore(a.state()).unwrap();
        for _ in 0..4 {
            let x = g();
            assert_eq!(step(&mut a, &x, &w), step(&mut b, &x, &w));
        }
        let mut wrong = RecentThree::new(true);
        wrong.begin(&[LayerInfo::flat("l", "test", 4)]);
        assert!(wrong.restore(a.state()).is_err());
    }

    #[test]
    fn median_and_mean_of_the_last_three_after_two_silent_steps() {
        let layers = [LayerInfo::flat("l", "test", 2)];
        let settings = OptimizerSettings::sgd(0.1, 1);
        for median in [true, false] {
            let mut a = RecentThree::new(median);
            a.configure(settings).unwrap();
            a.begin(&layers);
            let w = [0.0, 0.0];
            assert_eq!(step(&mut a, &[1.0, 9.0], &w), vec![0.0, 0.0]);
            assert_eq!(step(&mut a, &[5.0, -3.0], &w), vec![0.0, 0.0]);
            let d = step(&mut a, &[2.0, 0.0], &w);
            assert_eq!(
                d,
                if median {
                    vec![2.0, 0.0]
                } else {
                    vec![8.0 / 3.0, 2.0]
                }
            );
            // the oldest (1, 9) leaves the window
            let d = step(&mut a, &[-4.0, 4.0], &w);
            assert_eq!(
                d,
                if median {
                    vec![2.0, 0.0]
                } else {
                    vec![1.0, 1.0 / 3.0]
                }
            );
        }
    }

    #[test]
    fn weight_decay_is_buffered_and_momentum_refused() {
        let mut a = RecentThree::new(true);
        let s = a
            .configure(OptimizerSettings {
                weight_decay: 0.5,
                ..OptimizerSettings::sgd(0.1, 1)
            })
            .unwrap();
        assert_eq!(s.weight_decay, 0.0, "the optimizer applies none");
        a.begin(&[LayerInfo::flat("l", "test", 1)]);
        for _ in 0..2 {
            step(&mut a, &[1.0], &[2.0]);
        }
        // every buffered gradient is 1 + 0.5 * 2
        assert_eq!(step(&mut a, &[1.0], &[2.0]), vec![2.0]);
        let err = RecentThree::new(false).configure(OptimizerSettings {
            momentum: 0.9,
            ..OptimizerSettings::sgd(0.1, 1)
        });
        assert!(err.unwrap_err().message.contains("momentum"));
    }
}
