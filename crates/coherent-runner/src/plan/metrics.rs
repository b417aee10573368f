//! The `[[metrics]]` tables: each metric plugin with the schedule the runner reads from its
//! table (`every_steps`, `sample`, `chunk`, `per_layer`).

use super::sections::{span_in, Sections, Value};
use coherent_core::{CoherenceMetric, ConfigError, PluginArgs, Registry, Sampling};
use serde::Deserialize;

/// When and on what a metric is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricSchedule {
    /// Measure every this many steps (and at the start and the end).
    pub every_steps: usize,
    /// Size `m` of the fixed sample of training examples.
    pub sample: usize,
    /// Examples per backward pass (the whole sample for pairwise metrics).
    pub chunk: usize,
    /// Whether per-layer values are kept.
    pub per_layer: bool,
}

impl MetricSchedule {
    /// Whether the metric is measured at `step` of a run of `total` steps.
    pub fn due(&self, step: usize, total: usize) -> bool {
        step == 0 || step == total || step.is_multiple_of(self.every_steps)
    }
}

/// A metric plugin, built, with its schedule.
pub struct PlannedMetric {
    /// Its registry name.
    pub plugin: String,
    /// The metric.
    pub metric: Box<dyn CoherenceMetric>,
    /// Its schedule.
    pub schedule: MetricSchedule,
    /// Its headline quantities (shown in the log and the comparison table).
    pub headline: &'static [&'static str],
}

/// The runner's keys of a `[[metrics]]` table.
const SCHEDULE_KEYS: &[&str] = &["every_steps", "sample", "chunk", "per_layer"];

/// The runner's keys of a `[[metrics]]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleArgs {
    every_steps: Option<usize>,
    sample: Option<usize>,
    chunk: Option<usize>,
    per_layer: Option<bool>,
}

/// Every metric of `root`; `train` is the training set's size when the data could be read.
pub fn plan(
    cx: &mut Sections<'_>,
    root: &Value,
    registry: &Registry,
    train: Option<usize>,
) -> Option<Vec<PlannedMetric>> {
    let tables = cx.tables(root, "metrics");
    let errors = cx.diags.len();
    let mut metrics: Vec<PlannedMetric> = Vec::new();
    for (k, table) in tables.iter().enumerate() {
        let what = format!("metric #{}", k + 1);
        let Some((entry, args)) = cx.plugin(table, &what, &registry.metrics) else {
            continue;
        };
        if metrics.iter().any(|m| m.plugin == entry.name) {
            cx.error(
                ConfigError::new(
                    span_in(Some(table), "plugin"),
                    format!(
                        "metric `{}` is listed twice; its values would overwrite each other",
                        entry.name
                    ),
                )
                .with_help("list each metric plugin once (its parameters cover the variants)"),
            );
            continue;
        }
        let (own, rest) = args.split_off(SCHEDULE_KEYS);
        let schedule = schedule(cx, &own, entry.name, entry.sampling, train);
        let metric = (entry.build)(&rest).map_err(|e| cx.error(e)).ok();
        if let (Some(schedule), Some(metric)) = (schedule, metric) {
            metrics.push(PlannedMetric {
                plugin: entry.name.to_string(),
                metric,
                schedule,
                headline: entry.headline,
            });
        }
    }
    (cx.diags.len() == errors).then_some(metrics)
}

/// The schedule of metric `name` from its table's runner keys `own`.
fn schedule(
    cx: &mut Sections<'_>,
    own: &PluginArgs,
    name: &str,
    sampling: Sampling,
    train: Option<usize>,
) -> Option<MetricSchedule> {
    let args: ScheduleArgs = own.parse().map_err(|e| cx.error(e)).ok()?;
    let errors = cx.diags.len();
    let every_steps = args.every_steps.unwrap_or(Sampling::EVERY_STEPS);
    if every_steps == 0 {
        cx.error(own.invalid("every_steps", "must be at least 1"));
    }
    let sample = args.sample.unwrap_or(sampling.sample);
    if sample < sampling.min_sample {
        let why = if sampling.min_sample == 2 {
            " (a pair of examples)"
        } else {
            ""
        };
        cx.error(own.invalid(
            "sample",
            format!("must be at least {}{why}", sampling.min_sample),
        ));
    }
    if let Some(n) = train.filter(|&n| sample > n) {
        cx.error(ConfigError::new(
            Some(own.span_of("sample")),
            format!("metric `{name}` samples {sample} examples but the training set has only {n}"),
        ));
    }
    let chunk = match (sampling.chunk, args.chunk) {
        (None, Some(_)) => {
            cx.error(own.invalid(
                "chunk",
                format!("metric `{name}` reads its whole sample in one pass (the m x m Gram matrix); it has no chunks"),
            ));
            0
        }
        (None, None) => sample,
        (Some(default), given) => given.unwrap_or(default),
    };
    if chunk == 0 && args.chunk.is_some() && sampling.chunk.is_some() {
        cx.error(own.invalid("chunk", "must be at least 1"));
    }
    (cx.diags.len() == errors).then_some(MetricSchedule {
        every_steps,
        sample,
        chunk,
        per_layer: args.per_layer.unwrap_or(true),
    })
}
