//! Network plugin `lenet`: a LeNet-5 style network (LeCun et al. 1998) on runtime shapes.
//!
//! `[conv k x k -> activation -> 2x2 pool] x channels.len() -> [dense -> activation] x
//! hidden.len() -> dense -> outputs`. The defaults are LeNet-5 for 28x28 inputs (6 and 16
//! channels, kernel 5, the first convolution padded by 2, dense 120 and 84). With
//! `channels = [16, 32]`, `padding = [2, 2]`, `hidden = []` it is the small CNN that
//! `coherent bench` compares with PyTorch.

use coherent_core::{
    ConfigError, Model, ModelSpec, NetworkEntry, ParamType, PluginArgs, PluginConfig,
};
use coherent_nn::{Activation, Init, NetworkBuilder, PoolKind, Sequential};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Pooling between convolutions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ParamType)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// 2x2 max pooling.
    #[default]
    Max,
    /// 2x2 average pooling (as in the original LeNet-5).
    Avg,
}

/// Parameters of the `lenet` network.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct LenetConfig {
    /// Output channels of each convolution.
    #[serde(default = "default_channels")]
    pub channels: Vec<usize>,
    /// Kernel size of every convolution.
    #[serde(default = "default_kernel")]
    pub kernel: usize,
    /// Zero padding of each convolution.
    #[serde(default = "default_padding")]
    pub padding: Vec<usize>,
    /// Widths of the dense hidden layers.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// 2x2 pooling after each convolution.
    #[serde(default)]
    pub pool: Pool,
    /// Non-linearity.
    #[serde(default)]
    pub activation: Activation,
    /// Whether layers have biases.
    #[serde(default = "default_bias")]
    pub bias: bool,
    /// Initialisation (fan-in of a convolution: channels x kernel^2).
    #[serde(default)]
    pub init: Init,
}

fn default_channels() -> Vec<usize> {
    vec![6, 16]
}
fn default_kernel() -> usize {
    5
}
fn default_padding() -> Vec<usize> {
    vec![2, 0]
}
fn default_hidden() -> Vec<usize> {
    vec![120, 84]
}
fn default_bias() -> bool {
    true
}

impl LenetConfig {
    /// Builds the network for `spec`, or says which layer does not fit.
    pub fn network(&self, spec: &ModelSpec) -> Result<Sequential, String> {
        if self.padding.len() != self.channels.len() {
            return Err(format!(
                "{} paddings for {} convolutions: give one padding per convolution",
                self.padding.len(),
                self.channels.len()
            ));
        }
        let mut b = NetworkBuilder::new(spec, self.bias, self.init);
        let pool = match self.pool {
            Pool::Max => PoolKind::Max,
            Pool::Avg => PoolKind::Avg,
        };
        for (&c, &p) in self.channels.iter().zip(&self.padding) {
            b.conv(c, self.kernel, 1, p, Some(self.activation))?;
            b.pool(pool, 2)?;
        }
        b.build_with_classifier(&self.hidden, Some(self.activation), spec.outputs)
    }
}

/// Builds the `lenet` plugin from its manifest table.
pub fn build(args: &PluginArgs, spec: &ModelSpec) -> Result<Box<dyn Model>, ConfigError> {
    let config: LenetConfig = args.parse()?;
    let network = config.network(spec).map_err(|e| {
        let key = if e.contains("paddings for") {
            "padding"
        } else {
            "channels"
        };
        args.invalid(key, format!("{e} (input {})", spec.input))
    })?;
    Ok(Box::new(network))
}

coherent_core::register! {
    NetworkEntry {
        name: "lenet",
        description: "LeNet-5 style CNN: [conv -> activation -> 2x2 pool] x N, dense layers.",
        params: LenetConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenet5_layers_on_mnist_and_cifar_shapes() {
        let m = build(&PluginArgs::empty(), &ModelSpec::ten_class_images(1, 28)).unwrap();
        let p: Vec<usize> = m.layers().iter().map(|l| l.params).collect();
        assert_eq!(
            p,
            vec![
                6 * 25 + 6,
                16 * 6 * 25 + 16,
                16 * 5 * 5 * 120 + 120,
                120 * 84 + 84,
                84 * 10 + 10
            ]
        );
        let m = build(&PluginArgs::empty(), &ModelSpec::ten_class_images(3, 32)).unwrap();
        // 32 -> conv p2 -> 32 -> pool 16 -> conv 12 -> pool 6
        assert_eq!(m.layers()[2].params, 16 * 6 * 6 * 120 + 120);
    }

    #[test]
    fn the_benchmark_cnn_has_the_documented_shape() {
        let args =
            PluginArgs::from_toml("channels = [16, 32]\npadding = [2, 2]\nhidden = []").unwrap();
        let m = build(&args, &ModelSpec::ten_class_images(1, 28)).unwrap();
        let p: Vec<usize> = m.layers().iter().map(|l| l.params).collect();
        assert_eq!(p, vec![16 * 25 + 16, 32 * 16 * 25 + 32, 1568 * 10 + 10]);
    }

    #[test]
    fn shapes_that_do_not_fit_are_reported() {
        let mnist = ModelSpec::ten_class_images(1, 28);
        let text = "channels = [6, 16, 32, 64]\npadding = [0, 0, 0, 0]";
        let err = build(&PluginArgs::from_toml(text).unwrap(), &mnist)
            .err()
            .unwrap();
        assert!(err.message.contains("does not fit"), "{err:?}");
        assert_eq!(&text[err.span.unwrap()], "[6, 16, 32, 64]");
        let args = PluginArgs::from_toml("padding = [1]").unwrap();
        let err = build(&args, &mnist).err().unwrap();
        assert!(err.message.contains("one padding per convolution"));
    }
}
