//! Network plugin `mlp`: a multi-layer perceptron.
//!
//! `input -> [dense -> activation] x hidden.len() -> dense -> outputs`. With `hidden = []`
//! and `bias = false` it is the linear model of the illustrative example of "On the
//! Generalization Mystery in Deep Learning" (Chatterjee & Zielinski 2022, section 3); with
//! `hidden = [2048]` the network of "Coherent Gradients" (Chatterjee 2020) experiment 1.

use coherent_core::{ConfigError, Model, ModelSpec, NetworkEntry, PluginArgs, PluginConfig};
use coherent_nn::{Activation, Init, NetworkBuilder, Sequential};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of the `mlp` network.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Widths of the hidden layers; [] gives a linear model.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Non-linearity between layers.
    #[serde(default)]
    pub activation: Activation,
    /// Whether dense layers have a bias.
    #[serde(default = "default_bias")]
    pub bias: bool,
    /// Initialisation: uniform is PyTorch's nn.Linear default U(+-1/sqrt(fan_in)), he is
    /// N(0, 2/fan_in), zeros.
    #[serde(default)]
    pub init: Init,
}

fn default_hidden() -> Vec<usize> {
    vec![256]
}

fn default_bias() -> bool {
    true
}

impl Default for MlpConfig {
    fn default() -> MlpConfig {
        MlpConfig {
            hidden: default_hidden(),
            activation: Activation::default(),
            bias: true,
            init: Init::default(),
        }
    }
}

impl MlpConfig {
    /// Builds the network for `spec` (with a builder, so that it is sized before it is
    /// allocated), or says which layer cannot be.
    pub fn network(&self, spec: &ModelSpec) -> Result<Sequential, String> {
        // hidden layers carry their activation, fused into the dense op
        NetworkBuilder::new(spec, self.bias, self.init).build_with_classifier(
            &self.hidden,
            Some(self.activation),
            spec.outputs,
        )
    }
}

/// Builds the `mlp` plugin from its manifest table.
pub fn build(args: &PluginArgs, spec: &ModelSpec) -> Result<Box<dyn Model>, ConfigError> {
    let config: MlpConfig = args.parse()?;
    if config.hidden.contains(&0) {
        return Err(args.invalid("hidden", "every hidden width must be at least 1"));
    }
    let network = config
        .network(spec)
        .map_err(|e| args.invalid("hidden", format!("{e} (input {})", spec.input)))?;
    Ok(Box::new(network))
}

coherent_core::register! {
    NetworkEntry {
        name: "mlp",
        description: "Multi-layer perceptron: dense layers of configurable widths with ReLU or tanh.",
        params: MlpConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::InputShape;

    fn spec() -> ModelSpec {
        ModelSpec::classifier(InputShape::flat(784), 10)
    }

    #[test]
    fn layers_follow_the_widths() {
        let args = PluginArgs::from_toml("hidden = [256, 128]").unwrap();
        let model = build(&args, &spec()).unwrap();
        let params: Vec<usize> = model.layers().iter().map(|l| l.params).collect();
        assert_eq!(
            params,
            vec![784 * 256 + 256, 256 * 128 + 128, 128 * 10 + 10]
        );
        assert_eq!(model.layers()[2].name, "fc3");
    }

    #[test]
    fn linear_model_without_bias_has_zero_weights() {
        let args = PluginArgs::from_toml("hidden = []\nbias = false\ninit = \"zeros\"").unwrap();
        let model = build(&args, &spec()).unwrap();
        assert_eq!(model.num_params(), 7840);
        assert!(model.params()[0].iter().all(|&w| w == 0.0));
    }

    #[test]
    fn uniform_init_respects_the_fan_in_bound() {
        let model = build(&PluginArgs::empty(), &spec()).unwrap();
        let bound = 1.0 / 784f32.sqrt();
        assert!(model.params()[0].iter().all(|w| w.abs() <= bound));
        assert!(model.params()[0].iter().any(|w| w.abs() > bound * 0.9));
    }

    #[test]
    fn bad_parameters_are_rejected_with_their_location() {
        let text = "hidden = [64, 0]";
        let err = build(&PluginArgs::from_toml(text).unwrap(), &spec())
            .err()
            .unwrap();
        assert_eq!(&text[err.span.unwrap()], "[64, 0]");
        let err = build(
            &PluginArgs::from_toml("activation = \"gelu\"").unwrap(),
            &spec(),
        )
        .err()
        .unwrap();
        assert!(
            err.message.contains("relu") && err.message.contains("tanh"),
            "{err:?}"
        );
    }
}
