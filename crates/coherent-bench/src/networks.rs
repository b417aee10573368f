//! The networks the benchmark measures, the data they step on, and the arithmetic of one of
//! their training steps (to print how far a case is from the machine's limit).

use coherent_core::{Batch, InputShape, ModelSpec, PluginArgs, Rng, Split, Targets};
use coherent_nn::{Conv2d, Dense, Layer, Sequential};
use serde::de::DeserializeOwned;

/// A network to benchmark: a registered network plugin, its parameters and its input.
#[derive(Clone, Debug)]
pub struct BenchNetwork {
    /// Label in the report.
    pub label: String,
    /// Network plugin name.
    pub plugin: String,
    /// The plugin's parameters, as TOML.
    pub args: String,
    /// The input of one example: 1x28x28 steps on the bundled MNIST, any other shape on
    /// uniform random inputs (as PyTorch's peer scripts do).
    pub input: InputShape,
}

impl BenchNetwork {
    /// The MLP 784-`hidden`-10.
    pub fn mlp(hidden: &[usize]) -> BenchNetwork {
        let widths: Vec<String> = hidden.iter().map(usize::to_string).collect();
        BenchNetwork {
            label: format!("mlp 784-{}-10", widths.join("-")),
            plugin: "mlp".into(),
            args: format!("hidden = [{}]", widths.join(", ")),
            input: InputShape::image(1, 28, 28),
        }
    }

    /// The CNN of PyTorch's peer benchmark (`lenet` with 16 and 32 channels).
    pub fn cnn() -> BenchNetwork {
        BenchNetwork {
            label: "cnn conv16-pool-conv32-pool-fc10".into(),
            plugin: "lenet".into(),
            args: "channels = [16, 32]\npadding = [2, 2]\nhidden = []".into(),
            input: InputShape::image(1, 28, 28),
        }
    }

    /// CIFAR ResNet of depth `depth` (GroupNorm, 8 groups, width 16) on 3x32x32 inputs.
    pub fn resnet(depth: usize) -> BenchNetwork {
        BenchNetwork {
            label: format!("resnet-{depth} groupnorm 3x32x32"),
            plugin: "resnet".into(),
            args: format!("depth = {depth}\nwidth = 16\nnorm = \"group\"\ngroups = 8"),
            input: InputShape::image(3, 32, 32),
        }
    }

    /// The `vgg` plugin's default layout with GroupNorm (8 groups) on 3x32x32 inputs.
    pub fn vgg() -> BenchNetwork {
        BenchNetwork {
            label: "vgg groupnorm 3x32x32".into(),
            plugin: "vgg".into(),
            args: "groups = 8".into(),
            input: InputShape::image(3, 32, 32),
        }
    }

    /// Whether the network steps on the bundled MNIST.
    pub fn on_mnist(&self) -> bool {
        self.input == InputShape::image(1, 28, 28)
    }

    /// The classifier's shape: this input, 10 classes.
    pub fn spec(&self) -> ModelSpec {
        ModelSpec::classifier(self.input, 10)
    }

    /// The network, built as its plugin builds it.
    pub fn sequential(&self) -> Sequential {
        let args = PluginArgs::from_toml(&self.args).expect("valid TOML");
        let spec = self.spec();
        let built = match self.plugin.as_str() {
            "mlp" => self.configured(&args, &spec, coherent_mlp::MlpConfig::network),
            "lenet" => self.configured(&args, &spec, coherent_lenet::LenetConfig::network),
            "resnet" => self.configured(&args, &spec, coherent_resnet::ResnetConfig::network),
            "vgg" => self.configured(&args, &spec, coherent_vgg::VggConfig::network),
            other => unreachable!("no bench network {other}"),
        };
        built.unwrap_or_else(|e| panic!("{}: {e}", self.label))
    }

    /// `network` of the plugin's configuration `C`, read from `args`.
    fn configured<C: DeserializeOwned>(
        &self,
        args: &PluginArgs,
        spec: &ModelSpec,
        network: fn(&C, &ModelSpec) -> Result<Sequential, String>,
    ) -> Result<Sequential, String> {
        network(&args.parse::<C>().expect(&self.plugin), spec)
    }

    /// `n` examples of uniform random inputs in `[0, 1)` with random labels, for networks not
    /// on MNIST.
    pub fn random_data(&self, n: usize) -> Split {
        let mut rng = Rng::new(0);
        let inputs = (0..n * self.input.len())
            .map(|_| rng.uniform() as f32)
            .collect();
        let labels = (0..n).map(|_| rng.below(10) as u32).collect();
        Split::new(
            inputs,
            self.input.len(),
            Targets::Classes {
                labels,
                classes: 10,
            },
        )
    }
}

/// Floating-point operations of one training step on `batch` examples: the matrix products of
/// the convolutions and dense layers (forward, weight gradient, and input gradient but for the
/// first layer's), two per multiply-add. Normalisation, activations and pooling are left out.
pub fn step_flops(network: &Sequential, batch: usize) -> f64 {
    let mut macs = Vec::new();
    collect_macs(network.ops(), &mut macs);
    let forward: f64 = macs.iter().sum();
    let first = macs.first().copied().unwrap_or(0.0);
    2.0 * batch as f64 * (3.0 * forward - first)
}

/// The multiply-adds per example of every convolution and dense layer among `layers`, in order.
fn collect_macs(layers: &[Box<dyn Layer>], out: &mut Vec<f64>) {
    for layer in layers {
        if let Some(conv) = layer.downcast_ref::<Conv2d>() {
            let g = conv.geometry();
            out.push((g.positions() * g.patch() * g.out_channels) as f64);
        } else if let Some(dense) = layer.downcast_ref::<Dense>() {
            out.push((dense.inputs() * dense.outputs()) as f64);
        }
        collect_macs(layer.sublayers(), out);
    }
}

/// The first `n` examples of `data` as a batch.
pub fn first_batch(data: &Split, n: usize) -> Batch {
    let mut batch = Batch::default();
    batch.gather(data, &(0..n).collect::<Vec<_>>());
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mlp_step_counts_three_products_but_the_first_input_gradient() {
        let net = BenchNetwork::mlp(&[256]).sequential();
        let (a, b) = (784.0 * 256.0, 256.0 * 10.0);
        assert_eq!(step_flops(&net, 2), 2.0 * 2.0 * (3.0 * (a + b) - a));
    }

    #[test]
    fn resnet_20_forward_is_about_forty_million_multiply_adds_per_example() {
        // He et al.'s ResNet-20 has 41M multiply-adds per 32x32 image (stem, 18 convolutions,
        // two 1x1 projections and the classifier)
        let net = BenchNetwork::resnet(20).sequential();
        let mut macs = Vec::new();
        collect_macs(net.ops(), &mut macs);
        assert_eq!(macs.len(), 1 + 18 + 2 + 1);
        let total: f64 = macs.iter().sum();
        assert!((40e6..42e6).contains(&total), "{total}");
    }
}
