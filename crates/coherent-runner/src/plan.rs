//! Planning a run: every plugin of a [`RunSpec`] built and validated before training starts.

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::manifest::{get, Manifest};
use crate::settings::{EasyHardConfig, EvaluationConfig, TrainingConfig};
use crate::sweep::RunSpec;
use coherent_core::{
    CoherenceMetric, ConfigError, DataError, Dataset, DatasetBuildError, GradientAggregator,
    InputShape, LossKind, Model, ModelSpec, PluginArgs, Registry, Targets,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::de::{DeValue, ValueDeserializer};
use toml::Spanned;

/// Everything one run needs, built and checked.
pub struct RunPlan {
    /// The run's place in the sweep.
    pub spec: RunSpec,
    /// The run's seed (initial weights, shuffling, metric samples).
    pub seed: u64,
    /// The data.
    pub dataset: Box<dyn Dataset>,
    /// The network.
    pub model: Box<dyn Model>,
    /// The gradient aggregator.
    pub aggregator: Box<dyn GradientAggregator>,
    /// The metrics, with their plugin names.
    pub metrics: Vec<(String, Box<dyn CoherenceMetric>)>,
    /// `[training]`.
    pub training: TrainingConfig,
    /// The optimizer settings, as the aggregator accepted them.
    pub optimizer: coherent_core::OptimizerSettings,
    /// `[evaluation]`.
    pub evaluation: EvaluationConfig,
    /// `[easy_hard]`, when the manifest asks for the easy-vs-hard comparison.
    pub easy_hard: Option<EasyHardConfig>,
    /// The manifest of this run, sweep values applied, as TOML.
    pub resolved: String,
}

/// Why a run could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The manifest is wrong (exit code 2).
    #[error("{0}")]
    Manifest(Diagnostics),
    /// A data file is missing or malformed (exit code 1).
    #[error("{0}")]
    Data(DataError),
}

struct Planner<'a> {
    manifest: &'a Manifest,
    diags: Vec<Diagnostic>,
}

impl Planner<'_> {
    fn error(&mut self, e: ConfigError) {
        self.diags.push(self.manifest.diagnostic(e));
    }

    /// The entry and arguments of a plugin table.
    fn plugin<E: Copy>(
        &mut self,
        value: &Spanned<DeValue<'static>>,
        what: &str,
        entries: &BTreeMap<&'static str, E>,
    ) -> Option<(E, PluginArgs)> {
        let DeValue::Table(table) = value.get_ref() else {
            self.error(ConfigError::new(
                Some(value.span()),
                format!("{what} must be a table"),
            ));
            return None;
        };
        let names = entries.keys().copied().collect::<Vec<_>>().join(", ");
        let Some(plugin) = table.get("plugin") else {
            self.error(
                ConfigError::new(Some(value.span()), format!("{what} has no `plugin` key"))
                    .with_help(format!("valid plugins: {names}")),
            );
            return None;
        };
        let name = match plugin.get_ref() {
            DeValue::String(s) => s.to_string(),
            _ => {
                self.error(ConfigError::new(
                    Some(plugin.span()),
                    "`plugin` must be a string",
                ));
                return None;
            }
        };
        let Some(entry) = entries.get(name.as_str()) else {
            self.error(
                ConfigError::new(
                    Some(plugin.span()),
                    format!("unknown plugin `{name}` for {what}"),
                )
                .with_help(format!("valid plugins: {names}")),
            );
            return None;
        };
        let mut args = table.clone();
        args.remove("plugin");
        Some((
            *entry,
            PluginArgs::new(Spanned::new(value.span(), DeValue::Table(args))),
        ))
    }

    /// One of the runner's own sections, parsed and validated, with its arguments.
    fn settings<T: serde::de::DeserializeOwned>(
        &mut self,
        root: &Spanned<DeValue<'static>>,
        key: &str,
        validate: impl Fn(&T, &PluginArgs) -> Vec<ConfigError>,
    ) -> (PluginArgs, Option<T>) {
        let args = self.section(root, key);
        match args.parse::<T>() {
            Ok(t) => {
                for e in validate(&t, &args) {
                    self.error(e);
                }
                (args, Some(t))
            }
            Err(e) => {
                self.error(e);
                (args, None)
            }
        }
    }

    /// The arguments of one of the runner's own sections (empty if absent).
    fn section(&mut self, root: &Spanned<DeValue<'static>>, key: &str) -> PluginArgs {
        match get(root, key) {
            Some(v) if matches!(v.get_ref(), DeValue::Table(_)) => PluginArgs::new(v.clone()),
            Some(v) => {
                self.error(ConfigError::new(
                    Some(v.span()),
                    format!("`{key}` must be a table"),
                ));
                PluginArgs::empty()
            }
            None => PluginArgs::empty(),
        }
    }
}

/// The value of key `key` in a plugin's table, for locating cross-checks.
fn span_in(value: Option<&Spanned<DeValue<'static>>>, key: &str) -> Option<std::ops::Range<usize>> {
    let value = value?;
    Some(get(value, key).map_or(value.span(), |v| v.span()))
}

/// Builds every plugin of run `spec` of `manifest`.
pub fn plan(
    manifest: &Manifest,
    spec: &RunSpec,
    registry: &Registry,
) -> Result<RunPlan, PlanError> {
    let mut p = Planner {
        manifest,
        diags: vec![],
    };
    let root = &spec.table;
    let seed = match get(root, "seed") {
        None => 0,
        Some(v) => match u64::deserialize(ValueDeserializer::from(v.clone())) {
            Ok(s) => s,
            Err(_) => {
                p.error(ConfigError::new(
                    Some(v.span()),
                    "`seed` must be a non-negative integer",
                ));
                0
            }
        },
    };

    let mut data_error = None;
    let mut dataset = None;
    if let Some(v) = get(root, "dataset") {
        if let Some((entry, args)) = p.plugin(v, "[dataset]", &registry.datasets) {
            match (entry.build)(&args) {
                Ok(d) => dataset = Some(d),
                Err(DatasetBuildError::Config(e)) => p.error(e),
                Err(DatasetBuildError::Data(e)) => data_error = Some(e),
            }
        }
    }

    let model_spec = match &dataset {
        Some(d) => ModelSpec {
            input: d.input_shape(),
            outputs: d.outputs(),
            loss: match d.train().targets {
                Targets::Classes { .. } => LossKind::CrossEntropy,
                Targets::Values(_) => LossKind::Squared,
            },
            seed,
        },
        // Without data the model's parameters are still checked, on a stand-in shape.
        None => ModelSpec {
            input: InputShape::flat(1),
            outputs: 1,
            loss: LossKind::Squared,
            seed,
        },
    };
    let mut model = None;
    if let Some(v) = get(root, "model") {
        if let Some((entry, args)) = p.plugin(v, "[model]", &registry.networks) {
            match (entry.build)(&args, &model_spec) {
                Ok(m) => model = Some(m),
                Err(e) => p.error(e),
            }
        }
    }

    let mut aggregator = None;
    match get(root, "aggregator") {
        None => match registry.aggregators.get("mean") {
            Some(entry) => aggregator = (entry.build)(&PluginArgs::empty()).ok(),
            None => p.error(ConfigError::new(
                None,
                "no `[aggregator]` given and the default `mean` is not linked",
            )),
        },
        Some(v) => {
            if let Some((entry, args)) = p.plugin(v, "[aggregator]", &registry.aggregators) {
                match (entry.build)(&args) {
                    Ok(a) => aggregator = Some(a),
                    Err(e) => p.error(e),
                }
            }
        }
    }

    let mut metrics = Vec::new();
    let metric_tables: Vec<Spanned<DeValue<'static>>> = match get(root, "metrics") {
        None => vec![],
        Some(v) => match v.get_ref() {
            DeValue::Array(items) => items.iter().cloned().collect(),
            _ => {
                p.error(
                    ConfigError::new(Some(v.span()), "`metrics` must be a list of tables")
                        .with_help("write each metric as a `[[metrics]]` table"),
                );
                vec![]
            }
        },
    };
    for (k, v) in metric_tables.iter().enumerate() {
        if let Some((entry, args)) = p.plugin(v, &format!("metric #{}", k + 1), &registry.metrics) {
            match (entry.build)(&args) {
                Ok(m) => metrics.push((entry.name.to_string(), m, k)),
                Err(e) => p.error(e),
            }
        }
    }

    // Two metrics of one plugin would write the same names into each record.
    for (i, (name, _, k)) in metrics.iter().enumerate() {
        if metrics[..i].iter().any(|(other, _, _)| other == name) {
            p.error(
                ConfigError::new(
                    span_in(metric_tables.get(*k), "plugin"),
                    format!(
                        "metric `{name}` is listed twice; its values would overwrite each other"
                    ),
                )
                .with_help("list each metric plugin once (its parameters cover the variants)"),
            );
        }
    }

    let (training_args, training) =
        p.settings(root, "training", |t: &TrainingConfig, a| t.validate(a));
    let (evaluation_args, evaluation) =
        p.settings(root, "evaluation", |e: &EvaluationConfig, a| e.validate(a));
    let easy_hard = match get(root, "easy_hard") {
        Some(_) => p
            .settings(root, "easy_hard", |e: &EasyHardConfig, a| e.validate(a))
            .1
            .map(Some),
        None => Some(None),
    };
    if let (Some(Some(_)), Some(e)) = (&easy_hard, &evaluation) {
        if e.train_limit.is_some() {
            p.error(
                evaluation_args
                    .invalid("train_limit", "cannot be used with [easy_hard]")
                    .with_help("the easy and hard splits rank every training example by its learning time, so every example is evaluated; remove `train_limit` (or `[dataset] train_limit` shrinks the training set itself)"),
            );
        }
    }

    let mut optimizer = None;
    if let (Some(a), Some(t)) = (aggregator.as_mut(), &training) {
        match a.configure(t.optimizer()) {
            Ok(settings) => optimizer = Some(settings),
            Err(message) => {
                let span = get(root, "aggregator").map(|v| v.span());
                p.error(ConfigError::new(span, message));
            }
        }
    }

    if let Some(d) = &dataset {
        let n = d.train().len();
        if let Some(t) = &training {
            if t.batch_size > n {
                p.error(training_args.invalid(
                    "batch_size",
                    format!(
                        "{} is larger than the training set ({n} examples)",
                        t.batch_size
                    ),
                ));
            }
        }
        for (name, m, k) in &metrics {
            if m.sample_size() > n {
                p.error(ConfigError::new(
                    span_in(metric_tables.get(*k), "sample"),
                    format!(
                        "metric `{name}` samples {} examples but the training set has only {n}",
                        m.sample_size()
                    ),
                ));
            }
        }
    }

    if !p.diags.is_empty() {
        return Err(PlanError::Manifest(Diagnostics(p.diags)));
    }
    if let Some(e) = data_error {
        return Err(PlanError::Data(e));
    }
    let resolved = toml::Value::deserialize(ValueDeserializer::from(root.clone()))
        .ok()
        .and_then(|v| toml::to_string(&v).ok())
        .unwrap_or_else(|| manifest.source.to_string());
    Ok(RunPlan {
        spec: spec.clone(),
        seed,
        dataset: dataset.expect("no error means a dataset"),
        model: model.expect("no error means a model"),
        aggregator: aggregator.expect("no error means an aggregator"),
        metrics: metrics.into_iter().map(|(n, m, _)| (n, m)).collect(),
        training: training.expect("no error means training settings"),
        optimizer: optimizer.expect("no error means accepted optimizer settings"),
        evaluation: evaluation.expect("no error means evaluation settings"),
        easy_hard: easy_hard.expect("no error means easy-hard settings"),
        resolved,
    })
}
