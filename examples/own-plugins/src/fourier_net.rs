//! Network plugin `fourier_net`: trainable Fourier features ([`crate::fourier::Fourier`]), then
//! ReLU dense layers, then a dense layer to the outputs.

use crate::fourier::Fourier;
use coherent_core::{ConfigError, Model, ModelSpec, NetworkEntry, PluginArgs, PluginConfig};
use coherent_nn::{Activation, Init, NetworkBuilder};
use serde::Deserialize;

/// Parameters of `fourier_net`.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct FourierNetConfig {
    /// Number of Fourier features.
    #[serde(default = "default_features")]
    pub features: usize,
    /// Standard deviation of the features' initial frequencies.
    #[serde(default = "default_frequency")]
    #[param(ty = "float > 0")]
    pub frequency: f64,
    /// Widths of the ReLU dense layers after the features.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
}

fn default_features() -> usize {
    32
}

fn default_frequency() -> f64 {
    2.0
}

fn default_hidden() -> Vec<usize> {
    vec![64]
}

/// Builds the `fourier_net` plugin from its manifest table for `spec` (inputs, outputs, seed).
pub fn build(args: &PluginArgs, spec: &ModelSpec) -> Result<Box<dyn Model>, ConfigError> {
    let config: FourierNetConfig = args.parse()?;
    if config.features == 0 {
        return Err(args.invalid("features", "must be at least 1"));
    }
    if !(config.frequency.is_finite() && config.frequency > 0.0) {
        return Err(args.invalid("frequency", "must be a positive number"));
    }
    let mut builder = NetworkBuilder::new(spec, true, Init::Uniform);
    let features = Fourier::new(
        spec.input.len(),
        config.features,
        config.frequency,
        builder.rng(),
    );
    builder.push(Box::new(features), (config.features, 1, 1));
    let mut widths = config.hidden.clone();
    widths.push(spec.outputs);
    let last = widths.len() - 1;
    for (k, &w) in widths.iter().enumerate() {
        let activation = (k < last).then_some(Activation::Relu);
        builder
            .dense(w, activation)
            .map_err(|e| args.invalid("hidden", e))?;
    }
    let network = builder.build().map_err(|e| ConfigError::new(None, e))?;
    Ok(Box::new(network))
}

coherent_core::register! {
    NetworkEntry {
        name: "fourier_net",
        description: "Trainable Fourier features sin(w.x + b), then ReLU dense layers (this crate's own layer).",
        params: FourierNetConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::{InputShape, LossKind};
    use coherent_nn::check::{check_finite_differences, check_quantities, random_batch};
    use coherent_nn::reference::per_example_by_loop;

    fn network() -> Box<dyn Model> {
        let spec = ModelSpec::classifier(InputShape::flat(2), 3).with_seed(4);
        let args = PluginArgs::from_toml("features = 6\nhidden = [5]").unwrap();
        build(&args, &spec).unwrap()
    }

    /// Every per-example quantity of one pass equals one pass per example, and the features'
    /// summed gradient equals finite differences of the loss.
    #[test]
    fn per_example_gradients_match_the_loop_and_finite_differences() {
        let mut model = network();
        let names: Vec<&str> = model.layers().iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["fourier1", "fc1", "fc2"]);
        let shapes: Vec<&[usize]> = model.layers()[0]
            .tensors
            .iter()
            .map(|t| &t.shape[..])
            .collect();
        assert_eq!(shapes, [&[6, 2][..], &[6]]);
        let batch = random_batch(9, 2, 3, LossKind::CrossEntropy, 11);
        let by_loop = per_example_by_loop(model.as_mut(), &batch);
        check_quantities(model.as_mut(), &batch, &by_loop);
        check_finite_differences(model.as_mut(), &batch, 0, &(0..18).collect::<Vec<_>>());
    }

    #[test]
    fn bad_parameters_are_located() {
        let spec = ModelSpec::classifier(InputShape::flat(2), 3);
        let text = "features = 0";
        let err = build(&PluginArgs::from_toml(text).unwrap(), &spec)
            .err()
            .unwrap();
        assert_eq!(&text[err.span.unwrap()], "0");
    }
}
