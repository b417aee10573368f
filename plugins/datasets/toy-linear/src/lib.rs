//! Dataset plugin `toy_linear`: the illustrative example of "On the Generalization Mystery in
//! Deep Learning" (Chatterjee & Zielinski 2022, section 3).
//!
//! Five examples in six dimensions with targets `y = (+1, -1, -1, +1, -1)`:
//! `x_i = y_i e_i + y_i e_6` ("real": every example shares the sixth coordinate) or
//! `x_i = y_i e_i` ("random": nothing is shared). Examples 1-4 are the training set, example 5
//! the test set. With a linear model without bias, zero initial weights and squared loss
//! `(w . x - y)^2`, the four real gradients at initialisation are `-2 (e_i + e_6)`, whose
//! m-coherence is `|sum g|^2 / sum |g|^2 = 80 / 32 = 2.5` (random: 1). Full-batch gradient
//! descent then generalises to example 5 on real data and not at all on random data.

use coherent_core::{
    Dataset, DatasetBuildError, DatasetEntry, InputShape, ParamType, PluginArgs, PluginConfig,
    Split, Targets,
};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Which variant of the example.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ParamType)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// Examples share the sixth coordinate.
    #[default]
    Real,
    /// The shared coordinate is dropped.
    Random,
}

/// Parameters of `toy_linear`.
#[derive(Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct ToyConfig {
    /// real: the examples share coordinate 6; random: they share nothing.
    #[serde(default)]
    pub variant: Variant,
}

/// The five-example data set.
#[derive(Clone, Debug)]
pub struct ToyLinear {
    train: Split,
    test: Split,
}

/// Targets of the five examples.
pub const TARGETS: [f32; 5] = [1.0, -1.0, -1.0, 1.0, -1.0];

impl ToyLinear {
    /// Builds the variant.
    pub fn new(variant: Variant) -> ToyLinear {
        let example = |i: usize| {
            let mut x = vec![0.0f32; 6];
            x[i] = TARGETS[i];
            if variant == Variant::Real {
                x[5] = TARGETS[i];
            }
            x
        };
        let train: Vec<f32> = (0..4).flat_map(example).collect();
        ToyLinear {
            train: Split::new(train, 6, Targets::Values(TARGETS[..4].to_vec())),
            test: Split::new(example(4), 6, Targets::Values(vec![TARGETS[4]])),
        }
    }
}

impl Dataset for ToyLinear {
    fn input_shape(&self) -> InputShape {
        InputShape::flat(6)
    }
    fn train(&self) -> &Split {
        &self.train
    }
    fn test(&self) -> &Split {
        &self.test
    }
}

/// Builds the `toy_linear` plugin.
pub fn build(args: &PluginArgs) -> Result<Box<dyn Dataset>, DatasetBuildError> {
    let config: ToyConfig = args.parse()?;
    Ok(Box::new(ToyLinear::new(config.variant)))
}

coherent_core::register! {
    DatasetEntry {
        name: "toy_linear",
        description: "The illustrative example of Chatterjee & Zielinski 2022 (section 3): 4 training and 1 test example in 6 dimensions, squared loss.",
        params: ToyConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_follow_the_definition() {
        let d = ToyLinear::new(Variant::Real);
        assert_eq!(d.train().input(1), &[0.0, -1.0, 0.0, 0.0, 0.0, -1.0]);
        assert_eq!(d.test().input(0), &[0.0, 0.0, 0.0, 0.0, -1.0, -1.0]);
        let r = ToyLinear::new(Variant::Random);
        assert_eq!(r.train().input(3), &[0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        assert_eq!(d.outputs(), 1);
    }
}
