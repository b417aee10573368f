//! `[model]`: the network sized from its configuration before anything is allocated, its
//! memory checked against the limits and the machine, then built.
//!
//! A network plugin written with `coherent_nn::NetworkBuilder` (every bundled one, and the
//! templates of `coherent new plugin`) is sized by running its build under
//! [`coherent_core::size::measure`], where builders count and allocate nothing. A plugin that
//! builds its layers otherwise is built to be sized, under [`coherent_core::size::limit`].

use super::sections::{Sections, Value};
use super::weights;
use crate::manifest::get;
use coherent_core::memory::{bytes_text, count_text, fits};
use coherent_core::size::{limit, measure, NetworkSize, SIZED_ONLY};
use coherent_core::{Batch, BatchGrads, GradRequest, LayerInfo, PerExampleBlocks};
use coherent_core::{
    ConfigError, Dataset, InputShape, LossKind, Model, ModelSpec, NetworkEntry, PluginArgs,
    Registry, Targets,
};
use toml::de::DeValue;

/// The most parameters a network may have: 10^9 (4 GB per copy of the weights).
pub const MAX_PARAMS: u64 = 1_000_000_000;

/// The most layers a network may have: 100,000 (a network deeper than this is a typing error;
/// counting its layers stops there).
pub const MAX_LAYERS: u64 = 100_000;

/// Copies of the parameters a run keeps: the weights, the gradient, the direction and the
/// momentum.
pub const PARAM_COPIES: u64 = 4;

/// Copies of the activations of an example a step keeps: the output, its gradient and the
/// trace the per-example gradients are read from.
pub const ACTIVATION_COPIES: u64 = 3;

/// The largest network `coherent check` builds (to check it completely, and its weights
/// file): a larger one is sized only, so that checking a manifest stays cheap.
pub const CHECK_BUILD_PARAMS: u64 = 10_000_000;

/// A network sized, not yet built.
pub struct SizedModel {
    entry: NetworkEntry,
    args: PluginArgs,
    own: PluginArgs,
    spec: ModelSpec,
    table: Value,
    /// What it needs.
    pub size: NetworkSize,
    /// The network, when sizing it built it (a plugin without the builder).
    built: Option<Box<dyn Model>>,
}

/// What the data asks of the network (a stand-in shape without data, so that the model's
/// parameters are still checked).
pub fn model_spec(dataset: Option<&dyn Dataset>, seed: u64) -> ModelSpec {
    match dataset {
        Some(d) => ModelSpec {
            input: d.input_shape(),
            outputs: d.outputs(),
            loss: match d.train().targets {
                Targets::Classes { .. } => LossKind::CrossEntropy,
                Targets::Values(_) => LossKind::Squared,
            },
            seed,
        },
        None => ModelSpec {
            input: InputShape::flat(1),
            outputs: 1,
            loss: LossKind::Squared,
            seed,
        },
    }
}

/// The network of `[model]`, sized (see the module docs).
pub fn size(
    cx: &mut Sections<'_>,
    root: &Value,
    registry: &Registry,
    spec: ModelSpec,
) -> Option<SizedModel> {
    let table = get(root, "model")?.clone();
    let (entry, args) = cx.plugin(&table, "[model]", &registry.networks)?;
    let (own, args) = args.split_off(weights::KEYS);
    let input = spec.input.len() as u64;
    let mut built = None;
    let size = measure(input, MAX_LAYERS, || match (entry.build)(&args, &spec) {
        Ok(model) => built = Some(model),
        Err(e) if e.message.contains(SIZED_ONLY) => {}
        Err(e) => cx.error(e),
    });
    if !cx.diags.is_empty() {
        return None;
    }
    let size = match &built {
        // built without the builder: its size is what it holds
        Some(model) if size.layers == 0 => NetworkSize {
            params: model.num_params() as u64,
            ..size
        },
        _ => size,
    };
    Some(SizedModel {
        entry: *entry,
        args,
        own,
        spec,
        table,
        size,
        built,
    })
}

/// What a step of the run holds in memory besides the network: examples per pass (the batch,
/// or a metric's chunk) and the bytes of a metric's `m x m` Gram matrix.
#[derive(Clone, Copy, Debug, Default)]
pub struct Load {
    /// The most examples of one backward pass (the batch, a metric's chunk).
    pub examples: u64,
    /// The most examples of one forward pass (evaluation), which keeps one copy of the
    /// activations.
    pub forward: u64,
    /// The largest Gram matrix of a pairwise metric, in bytes.
    pub gram_bytes: u64,
}

/// Refuses, at the key of `[model]` that sets the size, a network of more than [`MAX_PARAMS`]
/// parameters or whose memory (parameters, activations of `load`) does not fit the machine.
pub fn check_memory(cx: &mut Sections<'_>, sized: &SizedModel, load: Load) -> bool {
    let Some((message, help)) = memory_refusal(sized, load) else {
        return true;
    };
    let span = Some(size_key(&sized.table).map_or(sized.table.span(), |v| v.span()));
    cx.error(ConfigError::new(span, message).with_help(help));
    false
}

/// Why the network of `sized` is too large for a run, and what to do: too many layers or
/// parameters, or more memory (with `load`) than the machine has; `None` when it fits.
fn memory_refusal(sized: &SizedModel, load: Load) -> Option<(String, String)> {
    let size = sized.size;
    let about = format!("`{}` on {} inputs", sized.entry.name, sized.spec.input);
    if size.stopped {
        let message = format!(
            "the network ({about}) has more than {} layers",
            count_text(MAX_LAYERS as u128)
        );
        let help = "a network has at most 100,000 layers; make it shallower";
        return Some((message, help.into()));
    }
    if size.params > MAX_PARAMS {
        let count = match size.params {
            u64::MAX => format!("more than {}", count_text(u64::MAX as u128)),
            n => count_text(n as u128),
        };
        let message = format!(
            "the network ({about}) has {count} parameters, more than a run may have (at most {})",
            count_text(MAX_PARAMS as u128)
        );
        let help = "a network has at most 10^9 parameters; make its layers narrower or fewer";
        return Some((message, help.into()));
    }
    let params = (size.params as u128) * 4 * PARAM_COPIES as u128;
    let passes = (load.examples as u128 * ACTIVATION_COPIES as u128).max(load.forward as u128);
    let acts = size.activations as u128 * 4 * passes;
    let total = params + acts + load.gram_bytes as u128;
    let what = format!(
        "the network ({about}: {} parameters, {} activations per example, passes of {} examples)",
        count_text(size.params as u128),
        count_text(size.activations as u128),
        load.examples.max(load.forward)
    );
    let message = fits(u64::try_from(total).unwrap_or(u64::MAX), &what).err()?;
    let help = format!(
        "{} for the parameters ({PARAM_COPIES} copies of 4 bytes each), {} for the activations, {} for metric Gram matrices; make the network smaller, or lower `batch_size` or a metric's `chunk`/`sample`",
        bytes_text(params.min(u64::MAX as u128) as u64),
        bytes_text(acts.min(u64::MAX as u128) as u64),
        bytes_text(load.gram_bytes)
    );
    Some((message, help))
}

/// The network of `sized`, with the weights its `weights` key names; with `check_only`, a
/// network larger than [`CHECK_BUILD_PARAMS`] without weights to check is not built (a
/// stand-in without layers takes its place).
pub fn build(
    cx: &mut Sections<'_>,
    sized: SizedModel,
    with_data: bool,
    check_only: bool,
) -> Option<Box<dyn Model>> {
    let (spec, own) = (sized.spec, &sized.own);
    if check_only && sized.size.params > CHECK_BUILD_PARAMS && !own.has("weights") {
        return Some(Box::new(Unbuilt));
    }
    let mut model = match sized.built {
        Some(model) => model,
        None => {
            let (built, _) = limit(spec.input.len() as u64, MAX_PARAMS, || {
                (sized.entry.build)(&sized.args, &spec)
            });
            built.map_err(|e| cx.error(e)).ok()?
        }
    };
    if with_data && !weights::load(cx, own, model.as_mut()) {
        return None;
    }
    Some(model)
}

/// A network without layers, standing in for one `coherent check` sized but did not build (its
/// plan is never run).
struct Unbuilt;

impl Model for Unbuilt {
    fn layers(&self) -> &[LayerInfo] {
        &[]
    }
    fn params(&self) -> Vec<&[f32]> {
        Vec::new()
    }
    fn params_mut(&mut self) -> Vec<&mut [f32]> {
        Vec::new()
    }
    fn forward_backward(&mut self, _: &Batch, _: &GradRequest, _: &mut BatchGrads) {}
    fn per_example_blocks(&self, _: &mut dyn FnMut(&dyn PerExampleBlocks)) {}
    fn evaluate(&self, _: &Batch, _: &mut Vec<f32>, _: &mut Vec<bool>) {}
}

/// The value of `table` that sets the network's size, to point at: the key holding the
/// largest integer (in a list too), e.g. `hidden = [100000000]`.
fn size_key(table: &Value) -> Option<&Value> {
    let DeValue::Table(t) = table.get_ref() else {
        return None;
    };
    t.iter()
        .filter(|(k, _)| k.get_ref().as_ref() != "plugin")
        .filter_map(|(_, v)| largest(v).map(|n| (n, v)))
        .max_by_key(|(n, _)| *n)
        .map(|(_, v)| v)
}

/// The largest integer in `value` (a number or nested lists of numbers).
fn largest(value: &Value) -> Option<u128> {
    match value.get_ref() {
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            let digits = digits.trim_start_matches(['+', '-']);
            let digits = digits.trim_start_matches("0x").trim_start_matches("0o");
            u128::from_str_radix(digits.trim_start_matches("0b"), i.radix()).ok()
        }
        DeValue::Array(items) => items.iter().filter_map(largest).max(),
        _ => None,
    }
}
