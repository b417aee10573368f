//! Network plugin `vgg`: VGG-style networks (Simonyan & Zisserman 2015), by default VGG-11's
//! layout at a quarter of its widths for 28x28 and 32x32 inputs.
//!
//! Each stage is a run of 3x3 convolutions (padding 1) with ReLU (optionally GroupNorm), then
//! 2x2 max pooling while the feature map is at least 2x2; then the dense classifier.

use coherent_core::{ConfigError, Model, ModelSpec, NetworkEntry, PluginArgs, PluginConfig};
use coherent_nn::{Activation, Init, NetworkBuilder, PoolKind, Sequential};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of the `vgg` network.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct VggConfig {
    /// Output channels of the 3x3 convolutions, stage by stage.
    #[serde(default = "default_stages")]
    pub stages: Vec<Vec<usize>>,
    /// Widths of the dense hidden layers.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// GroupNorm groups after each convolution; 0 for none.
    #[serde(default)]
    pub groups: usize,
    /// Initialisation.
    #[serde(default = "Init::he")]
    pub init: Init,
}

fn default_stages() -> Vec<Vec<usize>> {
    vec![
        vec![16],
        vec![32],
        vec![64, 64],
        vec![128, 128],
        vec![128, 128],
    ]
}
fn default_hidden() -> Vec<usize> {
    vec![128]
}
impl VggConfig {
    /// Builds the network for `spec`, or says what does not fit.
    pub fn network(&self, spec: &ModelSpec) -> Result<Sequential, String> {
        let relu = Some(Activation::Relu);
        let mut b = NetworkBuilder::new(spec, true, self.init);
        for stage in &self.stages {
            for &c in stage {
                if self.groups > 0 {
                    b.conv(c, 3, 1, 1, None)?;
                    b.group_norm(self.groups, relu)?;
                } else {
                    b.conv(c, 3, 1, 1, relu)?;
                }
            }
            let (_, h, w) = b.shape();
            if h >= 2 && w >= 2 {
                b.pool(PoolKind::Max, 2)?;
            }
        }
        b.build_with_classifier(&self.hidden, relu, spec.outputs)
    }
}

/// Builds the `vgg` plugin from its manifest table.
pub fn build(args: &PluginArgs, spec: &ModelSpec) -> Result<Box<dyn Model>, ConfigError> {
    let config: VggConfig = args.parse()?;
    let network = config.network(spec).map_err(|e| {
        args.invalid(
            if e.contains("groups") {
                "groups"
            } else {
                "stages"
            },
            e,
        )
    })?;
    Ok(Box::new(network))
}

coherent_core::register! {
    NetworkEntry {
        name: "vgg",
        description: "VGG-style CNN: stages of 3x3 convolutions and 2x2 max pooling (VGG-11 layout, narrow widths), dense classifier.",
        params: VggConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vgg11_layout_on_cifar_and_mnist_shapes() {
        let m = build(&PluginArgs::empty(), &ModelSpec::ten_class_images(3, 32)).unwrap();
        assert_eq!(m.layers().iter().filter(|l| l.kind == "conv2d").count(), 8);
        // 32 -> 16 -> 8 -> 4 -> 2 -> 1: the classifier sees 128 features
        assert_eq!(m.layers()[8].params, 128 * 128 + 128);
        let args = PluginArgs::from_toml("groups = 4").unwrap();
        let m = build(&args, &ModelSpec::ten_class_images(1, 28)).unwrap();
        assert_eq!(
            m.layers().iter().filter(|l| l.kind == "group_norm").count(),
            8
        );
    }

    #[test]
    fn groups_must_divide_channels() {
        let args = PluginArgs::from_toml("groups = 5").unwrap();
        let err = build(&args, &ModelSpec::ten_class_images(3, 32))
            .err()
            .unwrap();
        assert!(err.message.contains("groups do not divide"));
    }
}
