//! The core of `coherent`: the traits plugins implement (`Model`, `Dataset`, `CoherenceMetric`,
//! `GradientAggregator`, `RunObserver`), the per-example gradient request that connects them,
//! and the registry through which plugins are found by name.
//!
//! The key design decision lives in [`GradRequest`] and [`BatchGrads`]: a [`Model`] computes,
//! for one batch and from one backward pass, exactly the per-example quantities its consumers
//! asked for (squared norms per layer, coordinate-wise sums of squares, Gram matrices, or
//! materialised per-example gradients). A [`CoherenceMetric`] or [`GradientAggregator`]
//! declares what it needs with [`CoherenceMetric::needs`] / [`GradientAggregator::needs`] (an
//! observer per step with [`RunObserver::needs`]), and the runner asks the model for the union
//! — of the aggregator's and the observers' for a training step, of the metrics' sharing a
//! sample for a measurement — so nothing is computed that nobody reads and no quantity costs a
//! second backward pass.
//!
//! Research protocols that watch a run (loss fractions, learning times, early stopping, ...)
//! implement [`RunObserver`]. Every plugin's parameters are a typed serde struct whose docs
//! come from the struct itself ([`PluginConfig`]).
//!
//! This crate depends on neither dfdx nor any implementation: networks live in
//! `coherent-nn` and `plugins/networks`, the training loop in `coherent-runner`.

// The derive macros name this crate `::coherent_core`, also when used inside it.
extern crate self as coherent_core;

mod aggregator;
mod args;
mod data;
mod data_files;
mod data_options;
mod dataset;
pub mod explicit;
mod grads;
pub mod manifest_paths;
mod measurements;
pub mod memory;
mod metric;
mod metric_support;
mod model;
pub mod noise;
mod observer;
mod params;
mod plugin_crate;
mod registry;
mod request;
mod rng;
pub mod size;

pub use aggregator::{
    aggregate_step, AggregatorState, GradientAggregator, Gradients, OptimizerSettings, Refusal,
};
pub use args::{ConfigError, PluginArgs};
pub use coherent_derive::{ParamType, PluginConfig};
pub use data::{Batch, InputShape, Split, Targets, TargetsRef};
pub use data_files::read_data_file;
pub use data_options::DataOptions;
pub use dataset::{DataError, Dataset};
pub use explicit::{example_layers, measure_examples, random_examples};
pub use grads::{
    columns_to_rows, squared_norm, BatchGrads, LayerInfo, PerExampleBlocks, TensorInfo,
};
pub use measurements::Measurements;
pub use metric::CoherenceMetric;
pub use metric_support::{
    add_per_layer, zero_per_layer, FromSums, PerLayer, SqSums, SumAndSqNorms, SumsMetric,
};
pub use model::{LossKind, Model, ModelSpec};
pub use observer::{
    load_state, save_state, Evaluation, ObserverOutput, RunEnd, RunInfo, RunObserver, StepGrads,
    StepInfo,
};
pub use params::{ParamDoc, ParamType, PluginConfig};
pub use plugin_crate::{CrateId, PluginCrate};
pub use registry::{
    renamed, AggregatorEntry, DatasetBuildError, DatasetEntry, Listing, MetricEntry, NetworkEntry,
    ObserverEntry, PluginKind, Registry, RegistryError, Sampling, RENAMED,
};
pub use request::GradRequest;
pub use rng::Rng;

/// Re-exported so that plugin crates can call `coherent_core::inventory::submit!` without a
/// direct dependency on `inventory`.
pub use inventory;
/// Re-exported for observers' states and summaries.
pub use serde_json;
