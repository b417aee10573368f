//! Network plugin `resnet`: CIFAR-style residual networks (He et al. 2016, section 4.2) of
//! depth `6n + 2` (ResNet-8, -20, -32, ...), with GroupNorm or no normalisation.
//!
//! A 3x3 convolution to `width` channels, then three stages of `n` basic blocks with `width`,
//! `2 width` and `4 width` channels (the first block of stages 2 and 3 halves the resolution and
//! has a 1x1 projection shortcut), global average pooling and a dense layer. BatchNorm is not
//! offered: it mixes the examples of a batch, so per-example gradients would not exist;
//! GroupNorm (Wu & He 2018) normalises each example on its own.

use coherent_core::{
    ConfigError, Model, ModelSpec, NetworkEntry, ParamType, PluginArgs, PluginConfig,
};
use coherent_nn::{Activation, Init, NetworkBuilder, Sequential};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Normalisation after each convolution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ParamType)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// GroupNorm.
    #[default]
    Group,
    /// None.
    None,
}

/// Parameters of the `resnet` network.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct ResnetConfig {
    /// Depth 6n + 2: 8 (n = 1 block per stage), 14, 20, 32, ...
    #[serde(default = "default_depth")]
    #[param(ty = "integer 6n+2")]
    pub depth: usize,
    /// Channels of the first stage (then 2x and 4x).
    #[serde(default = "default_width")]
    pub width: usize,
    /// GroupNorm after each convolution, or nothing (no BatchNorm: it has no per-example
    /// gradient).
    #[serde(default)]
    pub norm: Norm,
    /// GroupNorm groups; must divide every stage's channels.
    #[serde(default = "default_groups")]
    pub groups: usize,
    /// Initialisation.
    #[serde(default = "Init::he")]
    pub init: Init,
}

fn default_depth() -> usize {
    8
}
fn default_width() -> usize {
    16
}
fn default_groups() -> usize {
    8
}
impl ResnetConfig {
    /// Builds the network for `spec`, or says what does not fit.
    pub fn network(&self, spec: &ModelSpec) -> Result<Sequential, String> {
        if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
            return Err(format!(
                "depth {} is not 6n + 2 with n >= 1 (8, 14, 20, 32, ...)",
                self.depth
            ));
        }
        let n = (self.depth - 2) / 6;
        let relu = Some(Activation::Relu);
        let group = self.norm == Norm::Group;
        let groups = self.groups;
        // a convolution, then (GroupNorm and) the activation, if any
        let conv = move |b: &mut NetworkBuilder,
                         out: usize,
                         stride: usize,
                         act: Option<Activation>|
              -> Result<(), String> {
            if group {
                b.conv(out, 3, stride, 1, None)?;
                b.group_norm(groups, act)?;
            } else {
                b.conv(out, 3, stride, 1, act)?;
            }
            Ok(())
        };
        let mut b = NetworkBuilder::new(spec, !group, self.init);
        conv(&mut b, self.width, 1, relu)?;
        for stage in 0..3 {
            let channels = self.width.checked_mul(1 << stage).ok_or_else(|| {
                format!("width {} doubled twice does not fit a number", self.width)
            })?;
            for block in 0..n {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                let projection =
                    (stride != 1 || b.shape().0 != channels).then_some((channels, stride));
                b.residual(
                    |body| {
                        conv(body, channels, stride, relu)?;
                        conv(body, channels, 1, None)
                    },
                    projection,
                    relu,
                )?;
            }
        }
        b.global_avg_pool();
        b.dense(spec.outputs, None)?;
        b.build()
    }
}

/// Builds the `resnet` plugin from its manifest table.
pub fn build(args: &PluginArgs, spec: &ModelSpec) -> Result<Box<dyn Model>, ConfigError> {
    let config: ResnetConfig = args.parse()?;
    let network = config.network(spec).map_err(|e| {
        let key = if e.starts_with("depth") {
            "depth"
        } else if e.contains("groups") {
            "groups"
        } else {
            "width"
        };
        args.invalid(key, e)
    })?;
    Ok(Box::new(network))
}

coherent_core::register! {
    NetworkEntry {
        name: "resnet",
        description: "CIFAR-style ResNet of depth 6n+2 (ResNet-8/20) with GroupNorm or no normalisation.",
        params: ResnetConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ModelSpec {
        ModelSpec::ten_class_images(3, 32)
    }

    #[test]
    fn resnet8_and_resnet20_have_the_expected_layers() {
        let m = build(&PluginArgs::empty(), &spec()).unwrap();
        // stem conv + gn, 3 blocks x (2 conv + 2 gn), 2 projections, fc
        assert_eq!(m.layers().len(), 2 + 3 * 4 + 2 + 1);
        let convs: usize = m.layers().iter().filter(|l| l.kind == "conv2d").count();
        assert_eq!(convs, 1 + 6 + 2);
        let m = build(
            &PluginArgs::from_toml("depth = 20\nnorm = \"none\"").unwrap(),
            &spec(),
        )
        .unwrap();
        assert_eq!(
            m.layers().iter().filter(|l| l.kind == "conv2d").count(),
            1 + 18 + 2
        );
        assert_eq!(
            m.layers().iter().filter(|l| l.kind == "group_norm").count(),
            0
        );
        // 16x3x3x3 stem, no bias with GroupNorm... and biases without it
        assert_eq!(m.layers()[0].params, 16 * 27 + 16);
    }

    #[test]
    fn bad_depth_and_groups_are_reported() {
        let err = build(&PluginArgs::from_toml("depth = 10").unwrap(), &spec())
            .err()
            .unwrap();
        assert!(err.message.contains("6n + 2"));
        let err = build(&PluginArgs::from_toml("groups = 3").unwrap(), &spec())
            .err()
            .unwrap();
        assert!(err.message.contains("groups do not divide"), "{err:?}");
    }
}
