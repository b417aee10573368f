//! Weight initialisation schemes.

use coherent_core::Rng;
use serde::Deserialize;

/// How a dense layer's parameters are initialised (`fan_in` = inputs per output).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, coherent_core::ParamType)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// PyTorch's default for `nn.Linear`: weights and biases uniform in
    /// `[-1/sqrt(fan_in), 1/sqrt(fan_in)]`.
    #[default]
    Uniform,
    /// He et al. (2015): weights normal with variance `2 / fan_in`, biases zero.
    He,
    /// All parameters zero (the linear model of the illustrative example).
    Zeros,
}

impl Init {
    /// He initialisation: the default of the convolutional networks
    /// (`#[serde(default = "Init::he")]`).
    pub fn he() -> Init {
        Init::He
    }

    /// Fills a layer's weights and biases.
    pub fn fill(self, weights: &mut [f32], bias: &mut [f32], fan_in: usize, rng: &mut Rng) {
        let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
        match self {
            Init::Uniform => {
                for w in weights.iter_mut().chain(bias.iter_mut()) {
                    *w = ((2.0 * rng.uniform() - 1.0) * bound) as f32;
                }
            }
            Init::He => {
                let std = (2.0 / fan_in.max(1) as f64).sqrt();
                for w in weights.iter_mut() {
                    *w = (rng.normal() * std) as f32;
                }
                bias.fill(0.0);
            }
            Init::Zeros => {
                weights.fill(0.0);
                bias.fill(0.0);
            }
        }
    }
}
