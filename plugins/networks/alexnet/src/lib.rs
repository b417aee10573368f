//! Network plugin `alexnet`: a small AlexNet-style network (Krizhevsky, Sutskever & Hinton
//! 2012) for 28x28 and 32x32 inputs, as in the generalization experiments of Zhang et al.
//! (2017): five convolutions (5x5, 5x5, 3x3, 3x3, 3x3, padded to keep the size) with ReLU, 2x2
//! max pooling after the first, second and fifth, and a dense classifier. Dropout and local
//! response normalisation are left out (they would make per-example gradients random or
//! coupled).

use coherent_core::{ConfigError, Model, ModelSpec, NetworkEntry, PluginArgs, PluginConfig};
use coherent_nn::{Activation, Init, NetworkBuilder, PoolKind, Sequential};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of the `alexnet` network.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct AlexnetConfig {
    /// Output channels of the five convolutions.
    #[serde(default = "default_channels")]
    pub channels: [usize; 5],
    /// Widths of the dense hidden layers.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Initialisation.
    #[serde(default = "Init::he")]
    pub init: Init,
}

fn default_channels() -> [usize; 5] {
    [32, 64, 96, 64, 64]
}
fn default_hidden() -> Vec<usize> {
    vec![256, 256]
}
impl AlexnetConfig {
    /// Builds the network for `spec`, or says what does not fit.
    pub fn network(&self, spec: &ModelSpec) -> Result<Sequential, String> {
        let relu = Some(Activation::Relu);
        let mut b = NetworkBuilder::new(spec, true, self.init);
        for (k, &c) in self.channels.iter().enumerate() {
            let (kernel, padding) = if k < 2 { (5, 2) } else { (3, 1) };
            b.conv(c, kernel, 1, padding, relu)?;
            let (_, h, w) = b.shape();
            if matches!(k, 0 | 1 | 4) && h >= 2 && w >= 2 {
                b.pool(PoolKind::Max, 2)?;
            }
        }
        b.build_with_classifier(&self.hidden, relu, spec.outputs)
    }
}

/// Builds the `alexnet` plugin from its manifest table.
pub fn build(args: &PluginArgs, spec: &ModelSpec) -> Result<Box<dyn Model>, ConfigError> {
    let config: AlexnetConfig = args.parse()?;
    let network = config
        .network(spec)
        .map_err(|e| args.invalid("channels", e))?;
    Ok(Box::new(network))
}

coherent_core::register! {
    NetworkEntry {
        name: "alexnet",
        description: "Small AlexNet-style CNN for 28x28/32x32 inputs: five convolutions, three 2x2 max pools, dense classifier.",
        params: AlexnetConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_on_cifar_shape() {
        let spec = ModelSpec::ten_class_images(3, 32);
        let m = build(&PluginArgs::empty(), &spec).unwrap();
        assert_eq!(m.layers().len(), 8);
        // 32 -> 16 -> 8 -> 4: the classifier sees 64 x 4 x 4
        assert_eq!(m.layers()[5].params, 64 * 16 * 256 + 256);
        assert!(build(&PluginArgs::from_toml("channels = [1, 2]").unwrap(), &spec).is_err());
    }
}
