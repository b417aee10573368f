//! The optimizer, applied to the aggregator's direction.

use coherent_core::OptimizerSettings;

/// SGD with momentum and weight decay, as PyTorch formulates it:
/// `v = mu v + (d + wd w)`, `w -= lr v` (`v = d + wd w` when `mu = 0`).
#[derive(Clone, Debug)]
pub struct Sgd {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    velocity: Vec<Vec<f32>>,
}

impl Sgd {
    /// An optimizer with `settings` (those of `[training]`, as the aggregator accepted them).
    pub fn new(settings: OptimizerSettings) -> Sgd {
        Sgd {
            lr: settings.lr as f32,
            momentum: settings.momentum as f32,
            weight_decay: settings.weight_decay as f32,
            velocity: Vec::new(),
        }
    }

    /// The momentum buffers, one per layer (empty before the first step or without
    /// momentum), for checkpoints.
    pub fn velocity(&self) -> &[Vec<f32>] {
        &self.velocity
    }

    /// Restores momentum buffers saved with [`Sgd::velocity`].
    pub fn set_velocity(&mut self, velocity: Vec<Vec<f32>>) {
        self.velocity = velocity;
    }

    /// One update of `params` (one slice per layer) along `direction`.
    pub fn step(&mut self, params: Vec<&mut [f32]>, direction: &[Vec<f32>]) {
        if self.velocity.len() != params.len() {
            self.velocity = params.iter().map(|p| vec![0.0; p.len()]).collect();
        }
        let (lr, mu, wd) = (self.lr, self.momentum, self.weight_decay);
        for ((w, d), v) in params.into_iter().zip(direction).zip(&mut self.velocity) {
            if mu == 0.0 {
                for (w, d) in w.iter_mut().zip(d) {
                    *w -= lr * (d + wd * *w);
                }
            } else {
                for ((w, d), v) in w.iter_mut().zip(d).zip(v.iter_mut()) {
                    *v = mu * *v + d + wd * *w;
                    *w -= lr * *v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(momentum: f64, weight_decay: f64) -> OptimizerSettings {
        OptimizerSettings {
            momentum,
            weight_decay,
            ..OptimizerSettings::sgd(0.5, 1)
        }
    }

    #[test]
    fn plain_step_and_weight_decay() {
        let mut w = vec![1.0f32, -2.0];
        Sgd::new(config(0.0, 0.1)).step(vec![&mut w], &[vec![1.0, 1.0]]);
        assert!(
            (w[0] - (1.0 - 0.5 * 1.1)).abs() < 1e-6 && (w[1] - (-2.0 - 0.5 * 0.8)).abs() < 1e-6
        );
    }

    #[test]
    fn momentum_accumulates_velocity() {
        let mut w = vec![0.0f32];
        let mut opt = Sgd::new(config(0.9, 0.0));
        opt.step(vec![&mut w], &[vec![1.0]]);
        opt.step(vec![&mut w], &[vec![1.0]]);
        // v1 = 1, v2 = 1.9; w = -0.5 * (1 + 1.9)
        assert!((w[0] + 1.45).abs() < 1e-6);
    }
}
