//! Planning a run: every plugin of a [`RunSpec`] built and validated before training starts.
//!
//! A [`Planner`] plans the runs of one manifest. It builds each run's dataset, network (with
//! the weights `[model] weights` names), aggregator, metrics (with the schedule the runner
//! reads from each `[[metrics]]` table),
//! observers (the `[[observers]]` tables and the observers every run has by default) and
//! protocol (a section named after a protocol plugin, e.g. `[easy_hard]`), and reports every
//! problem of the manifest at once, located. Datasets are kept for the planner's lifetime and
//! shared by runs with the same `[dataset]` table, so each data file is read once per process
//! however many runs (or re-plans, as the easy-vs-hard protocol makes) use it.

mod data;
mod metrics;
pub mod model;
mod observers;
mod sections;
mod training;
pub mod weights;

use crate::diagnostic::Diagnostics;
use crate::manifest::{get, Manifest};
use crate::protocol::{PlannedProtocol, ProtocolEntry};
use crate::settings::{EvaluationConfig, RecordConfig, TrainingConfig};
use crate::sweep::RunSpec;
use coherent_core::{
    ConfigError, DataError, Dataset, GradientAggregator, Model, OptimizerSettings, PluginArgs,
    Registry,
};
use coherent_record::{CrateMeta, PluginUse};
pub use metrics::{MetricSchedule, PlannedMetric};
pub use observers::PlannedObserver;
use sections::Sections;
use serde::Deserialize;
use std::sync::Arc;
use toml::de::ValueDeserializer;

/// Everything one run needs, built and checked.
pub struct RunPlan {
    /// The run's place in the sweep.
    pub spec: RunSpec,
    /// The run's seed (initial weights, shuffling, metric samples).
    pub seed: u64,
    /// The data (shared with other runs of the same `[dataset]`).
    pub dataset: Arc<dyn Dataset>,
    /// The network.
    pub model: Box<dyn Model>,
    /// The gradient aggregator.
    pub aggregator: Box<dyn GradientAggregator>,
    /// The metrics, with their schedules.
    pub metrics: Vec<PlannedMetric>,
    /// The observers (research protocols watching the run).
    pub observers: Vec<PlannedObserver>,
    /// `[training]`.
    pub training: TrainingConfig,
    /// The optimizer settings, as the aggregator accepted them.
    pub optimizer: OptimizerSettings,
    /// `[evaluation]`.
    pub evaluation: EvaluationConfig,
    /// `[record]`.
    pub record: RecordConfig,
    /// The protocol that runs this plan, if the manifest names one (`[easy_hard]`).
    pub protocol: Option<PlannedProtocol>,
    /// The manifest of this run, sweep values applied, as TOML.
    pub resolved: String,
    /// The plugins the run uses and the crates that provide them, and every crate of plugins
    /// the program links.
    pub provenance: Provenance,
}

/// What `run.json` records of the plugins behind a run.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// Each plugin the run uses, with its crate.
    pub uses: Vec<PluginUse>,
    /// Every crate of plugins linked into the program.
    pub crates: Vec<CrateMeta>,
}

/// Why a run could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The manifest is wrong (exit code 2).
    #[error("{0}")]
    Manifest(Diagnostics),
    /// A data file is missing or malformed (exit code 1).
    #[error("{0}")]
    Data(Arc<DataError>),
}

/// Plans the runs of one manifest (see the module docs).
pub struct Planner<'a> {
    manifest: &'a Manifest,
    registry: &'a Registry,
    data: data::DataCache,
    /// The warnings printed so far (each is printed once, however many runs it concerns).
    warned: std::collections::HashSet<String>,
    /// Plans are only checked, not run: a large network is sized, not built.
    check_only: bool,
}

/// Plans run `spec` of `manifest` on its own (a [`Planner`] for one run).
pub fn plan(
    manifest: &Manifest,
    spec: &RunSpec,
    registry: &Registry,
) -> Result<RunPlan, PlanError> {
    Planner::new(manifest, registry).plan(spec)
}

impl<'a> Planner<'a> {
    /// A planner of `manifest`'s runs with the plugins of `registry`.
    pub fn new(manifest: &'a Manifest, registry: &'a Registry) -> Planner<'a> {
        Planner {
            manifest,
            registry,
            data: data::DataCache::default(),
            warned: Default::default(),
            check_only: false,
        }
    }

    /// The same planner for `coherent check`: its plans are checked, never run, so a network
    /// larger than [`model::CHECK_BUILD_PARAMS`] is sized and its memory checked but not built
    /// (a stand-in without layers takes its place in the plan).
    pub fn checking(mut self) -> Planner<'a> {
        self.check_only = true;
        self
    }

    /// The manifest.
    pub fn manifest(&self) -> &'a Manifest {
        self.manifest
    }

    /// Builds every plugin of run `spec`. Warnings about the manifest (deprecated keys and
    /// names) and the data (a file shorter than its format's) are printed to standard error
    /// like errors, each once.
    pub fn plan(&mut self, spec: &RunSpec) -> Result<RunPlan, PlanError> {
        let mut cx = Sections::new(self.manifest);
        let result = self.build(&mut cx, spec);
        for w in &cx.warnings {
            let text = w.to_string();
            if self.warned.insert(text.clone()) {
                eprintln!("{text}");
            }
        }
        if !cx.diags.is_empty() {
            let mut diags = cx.diags;
            if !spec.params.is_empty() {
                let values: Vec<String> = spec
                    .params
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                let note = format!(
                    "in run {} of the sweep ({})",
                    spec.dir_name(),
                    values.join(", ")
                );
                diags.iter_mut().for_each(|d| d.note = Some(note.clone()));
            }
            return Err(PlanError::Manifest(Diagnostics(diags)));
        }
        result
    }

    fn build(&mut self, cx: &mut Sections<'_>, spec: &RunSpec) -> Result<RunPlan, PlanError> {
        let root = &spec.table;
        let seed = seed(cx, root);
        let (dataset, data_error) = self.data.build(cx, root, self.registry);
        let spec_of_model = model::model_spec(dataset.as_deref(), seed);
        let sized = model::size(cx, root, self.registry, spec_of_model);
        let mut aggregator = aggregator(cx, root, self.registry);
        let n = dataset.as_ref().map(|d| d.train().len());
        let metrics = metrics::plan(cx, root, self.registry, n);
        let observers = observers::plan(cx, root, self.registry);
        let before = cx.diags.len();
        let (training_args, training) =
            cx.settings(root, "training", |t: &TrainingConfig, a| t.validate(a));
        let training_valid = cx.diags.len() == before;
        let (_, evaluation) =
            cx.settings(root, "evaluation", |e: &EvaluationConfig, a| e.validate(a));
        let (_, record) = cx.settings(root, "record", |r: &RecordConfig, a| r.validate(a));
        let protocol = protocol(cx, root);
        let n_fits = n.filter(|&n| training.as_ref().is_some_and(|t| t.batch_size <= n));
        let optimizer = optimizer(cx, root, aggregator.as_mut(), training.as_ref(), n_fits);
        if let (Some(t), Some(n), true) = (&training, n, training_valid) {
            training::check(cx, root, &training_args, t, n);
        }
        let model = sized.and_then(|s| {
            let load = load(training.as_ref(), metrics.as_deref(), self.registry);
            let small = s.size.params <= model::CHECK_BUILD_PARAMS;
            let fits = model::check_memory(cx, &s, load);
            let build = fits && (cx.diags.is_empty() || small);
            build.then(|| model::build(cx, s, dataset.is_some(), self.check_only))?
        });
        if !cx.diags.is_empty() {
            return Err(PlanError::Manifest(Diagnostics(Vec::new())));
        }
        if let Some(e) = data_error {
            return Err(PlanError::Data(e));
        }
        let plan = RunPlan {
            spec: spec.clone(),
            seed,
            dataset: dataset.expect("no error means a dataset"),
            model: model.expect("no error means a model"),
            aggregator: aggregator.expect("no error means an aggregator"),
            metrics: metrics.expect("no error means metrics"),
            observers: observers.expect("no error means observers"),
            training: training.expect("no error means training settings"),
            optimizer: optimizer.expect("no error means accepted optimizer settings"),
            evaluation: evaluation.expect("no error means evaluation settings"),
            record: record.expect("no error means record settings"),
            protocol: protocol.expect("no error means a protocol choice"),
            resolved: resolved(self.manifest, spec),
            provenance: Provenance::default(),
        };
        let plan = RunPlan {
            provenance: provenance(&plan, root, self.registry),
            ..plan
        };
        if let Some(p) = &plan.protocol {
            for e in p.protocol.check(&plan) {
                cx.error(cx.locate(root, e));
            }
        }
        match cx.diags.is_empty() {
            true => Ok(plan),
            false => Err(PlanError::Manifest(Diagnostics(Vec::new()))),
        }
    }
}

fn seed(cx: &mut Sections<'_>, root: &toml::Spanned<toml::de::DeValue<'static>>) -> u64 {
    let Some(v) = get(root, "seed") else {
        return 0;
    };
    u64::deserialize(ValueDeserializer::from(v.clone())).unwrap_or_else(|_| {
        cx.error(ConfigError::new(
            Some(v.span()),
            "`seed` must be a non-negative integer",
        ));
        0
    })
}

/// What one pass of the run holds besides the network: the most examples of a backward pass
/// (the batch, a metric's chunk), of a forward pass (an evaluation chunk), and the largest Gram
/// matrix of a pairwise metric.
fn load(
    training: Option<&TrainingConfig>,
    metrics: Option<&[PlannedMetric]>,
    registry: &Registry,
) -> model::Load {
    let batch = training.map_or(100, |t| t.batch_size) as u64;
    let metrics = metrics.unwrap_or_default();
    let chunk = metrics.iter().map(|m| m.schedule.chunk as u64).max();
    let gram = metrics
        .iter()
        .filter(|m| {
            let entry = registry.metrics.get(m.plugin.as_str());
            entry.is_some_and(|e| e.sampling.chunk.is_none())
        })
        .map(|m| {
            (m.schedule.sample as u64)
                .saturating_pow(2)
                .saturating_mul(8)
        })
        .max();
    model::Load {
        examples: batch.max(chunk.unwrap_or(0)),
        forward: crate::evaluate::CHUNK as u64,
        gram_bytes: gram.unwrap_or(0),
    }
}

fn aggregator(
    cx: &mut Sections<'_>,
    root: &toml::Spanned<toml::de::DeValue<'static>>,
    registry: &Registry,
) -> Option<Box<dyn GradientAggregator>> {
    let (entry, args) = match get(root, "aggregator") {
        Some(v) => cx.plugin(v, "[aggregator]", &registry.aggregators)?,
        None => match registry.aggregators.get("mean") {
            Some(entry) => (*entry, PluginArgs::empty()),
            None => {
                cx.error(ConfigError::new(
                    None,
                    "no `[aggregator]` given and the default `mean` is not linked",
                ));
                return None;
            }
        },
    };
    (entry.build)(&args).map_err(|e| cx.error(e)).ok()
}

/// The optimizer settings of `[training]` on `n` training examples, as the aggregator accepts
/// them; a refusal is located at its key of `[aggregator]` (or at the table).
fn optimizer(
    cx: &mut Sections<'_>,
    root: &toml::Spanned<toml::de::DeValue<'static>>,
    aggregator: Option<&mut Box<dyn GradientAggregator>>,
    training: Option<&TrainingConfig>,
    n: Option<usize>,
) -> Option<OptimizerSettings> {
    let (aggregator, training) = (aggregator?, training?);
    aggregator
        .configure(training.optimizer(n))
        .map_err(|r| {
            let table = get(root, "aggregator");
            let at = r.key.as_deref().and_then(|k| table.and_then(|t| get(t, k)));
            let span = at.or(table).map(|v| v.span());
            let message = match &r.key {
                Some(key) => format!("`{key}`: {}", r.message),
                None => r.message,
            };
            let mut e = ConfigError::new(span, message);
            e.help = r.help;
            cx.error(e);
        })
        .ok()
}

/// The protocol named by a section of the manifest, if any (`None` inside: no protocol).
fn protocol(
    cx: &mut Sections<'_>,
    root: &toml::Spanned<toml::de::DeValue<'static>>,
) -> Option<Option<PlannedProtocol>> {
    let mut found: Option<PlannedProtocol> = None;
    for entry in ProtocolEntry::all() {
        let Some(value) = get(root, entry.name) else {
            continue;
        };
        if let Some(other) = &found {
            cx.error(ConfigError::new(
                Some(value.span()),
                format!(
                    "`[{}]` and `[{}]` both choose how the run is carried out; keep one",
                    other.name, entry.name
                ),
            ));
            return None;
        }
        let args = cx.section(root, entry.name);
        match (entry.build)(&args) {
            Ok(protocol) => {
                found = Some(PlannedProtocol {
                    name: entry.name,
                    protocol,
                })
            }
            Err(e) => {
                cx.error(e);
                return None;
            }
        }
    }
    Some(found)
}

/// The run's manifest as TOML (sweep values applied, `[sweep]` removed).
fn resolved(manifest: &Manifest, spec: &RunSpec) -> String {
    resolved_text(spec).unwrap_or_else(|| manifest.source.to_string())
}

/// The manifest of run `spec` as its run directory records it (`manifest.toml`: sweep values
/// applied, `[sweep]` removed), without planning the run.
pub fn resolved_text(spec: &RunSpec) -> Option<String> {
    toml::Value::deserialize(ValueDeserializer::from(spec.table.clone()))
        .ok()
        .and_then(|v| toml::to_string(&v).ok())
}

/// The protocol that carries out run `spec`, if its manifest names one (built from its section
/// without planning the run; `None` also when its parameters are wrong, which planning
/// reports).
pub fn protocol_for(spec: &RunSpec) -> Option<Box<dyn crate::Protocol>> {
    ProtocolEntry::all().into_iter().find_map(|entry| {
        let section = get(&spec.table, entry.name)?;
        (entry.build)(&PluginArgs::new(section.clone())).ok()
    })
}

/// The crate of the plugin named in the table `value` (through a renamed name too).
fn crate_of<E: Copy>(
    value: Option<&toml::Spanned<toml::de::DeValue<'static>>>,
    entries: &std::collections::BTreeMap<&'static str, E>,
    krate: impl Fn(E) -> coherent_core::CrateId,
) -> Option<(String, coherent_core::CrateId)> {
    let name = match get(value?, "plugin")?.get_ref() {
        toml::de::DeValue::String(s) => s.to_string(),
        _ => return None,
    };
    let name = coherent_core::renamed(&name).map_or(name, str::to_string);
    entries.get(name.as_str()).map(|e| (name, krate(*e)))
}

/// The plugins `plan` uses, with their crates, and the program's plugin crates.
fn provenance(
    plan: &RunPlan,
    root: &toml::Spanned<toml::de::DeValue<'static>>,
    registry: &Registry,
) -> Provenance {
    use crate::provenance::plugin_use;
    let mut uses = Vec::new();
    let tables = [
        (
            "dataset",
            crate_of(get(root, "dataset"), &registry.datasets, |e| e.krate),
        ),
        (
            "model",
            crate_of(get(root, "model"), &registry.networks, |e| e.krate),
        ),
        (
            "aggregator",
            crate_of(get(root, "aggregator"), &registry.aggregators, |e| e.krate).or_else(|| {
                registry
                    .aggregators
                    .get("mean")
                    .map(|e| ("mean".into(), e.krate))
            }),
        ),
    ];
    for (role, found) in tables {
        if let Some((name, krate)) = found {
            uses.push(plugin_use(role, &name, krate));
        }
    }
    for m in &plan.metrics {
        if let Some(e) = registry.metrics.get(m.plugin.as_str()) {
            uses.push(plugin_use("metric", &m.plugin, e.krate));
        }
    }
    for o in &plan.observers {
        if let Some(e) = registry.observers.get(o.name.as_str()) {
            uses.push(plugin_use("observer", &o.name, e.krate));
        }
    }
    if let Some(p) = &plan.protocol {
        if let Some(e) = ProtocolEntry::all().into_iter().find(|e| e.name == p.name) {
            uses.push(plugin_use("protocol", p.name, e.krate));
        }
    }
    Provenance {
        uses,
        crates: crate::provenance::linked_crates(registry),
    }
}
