//! Starting a run: its sizes, its directory and `run.json`, the observers, and a resume from
//! its checkpoint.

use super::state::{restore, Progress};
use super::{MetricRunner, Sizes, TrainOptions, Trainer, Work};
use crate::checkpoint::{manifest_hash, Checkpoint, LoadError, Rejection};
use crate::meta::{hostname, layer_meta, utc_timestamp};
use crate::optim::Sgd;
use crate::plan::RunPlan;
use crate::provenance;
use coherent_core::{LayerInfo, RunInfo};
use coherent_record::{
    files, read_json, LayerMeta, MetricsLine, RecordError, RunDir, RunId, RunMeta, SCHEMA,
};
use std::path::Path;
use std::time::{Instant, SystemTime};

impl<'o> Trainer<'o> {
    /// Opens the run directory `dir` for `plan` (resuming from its checkpoint with
    /// `options.resume`) and gets every part of the run ready for its first step.
    pub(super) fn start(
        mut plan: RunPlan,
        dir: &Path,
        options: &'o TrainOptions<'o>,
    ) -> Result<Trainer<'o>, RecordError> {
        let clock = Instant::now();
        let data = plan.dataset.clone();
        let layers: Vec<LayerInfo> = plan.model.layers().to_vec();
        let sizes = sizes(&plan, data.train().len())?;
        let hash = manifest_hash(&plan.resolved);
        let layer_metas: Vec<LayerMeta> = layers.iter().map(layer_meta).collect();
        let (resumable, refused) = match options.resume {
            true => usable_checkpoint(dir, hash, data.train().len(), sizes.total, &layer_metas),
            false => (None, Vec::new()),
        };
        let (run, checkpoint, kept) = match resumable {
            Some((c, kept)) => (RunDir::resume(dir, c.header.metrics)?, Some(c), kept),
            None => (RunDir::create(dir)?, None, Vec::new()),
        };
        run.write(files::MANIFEST, plan.resolved.as_bytes())?;
        let mut meta = run_meta(
            &plan,
            options,
            &layers,
            checkpoint.as_ref().map(|c| c.header.step),
            dir,
        );
        meta.resume_refused = refused;
        run.write_json(files::RUN, &meta)?;
        begin_observers(&mut plan, &layers, &sizes, dir)?;
        plan.aggregator.begin(&layers);
        let mut sgd = Sgd::new(plan.optimizer);
        let mut progress = Progress::new(plan.seed, data.train().len());
        let name = plan.spec.dir_name();
        if let Some(c) = checkpoint {
            restore(&mut plan, &mut sgd, &mut progress, c, &kept, dir)?;
            log::info!(
                "run {name}: resumed from the checkpoint at step {}",
                progress.step
            );
        }
        log::info!(
            "run {name}: {} parameters, {} training examples, {} steps of {} ({} per epoch)",
            plan.model.num_params(),
            data.train().len(),
            sizes.total,
            plan.training.batch_size,
            sizes.steps_per_epoch
        );
        let metrics = MetricRunner::new(&plan.metrics, plan.seed, data.train().len());
        run.write(
            files::SAMPLES,
            metrics.samples(&plan.metrics).to_json().as_bytes(),
        )?;
        let work = Work {
            direction: layers.iter().map(|l| vec![0.0; l.params]).collect(),
            ..Work::default()
        };
        Ok(Trainer {
            plan,
            data,
            layers,
            sizes,
            progress,
            sgd,
            run,
            meta,
            hash,
            clock,
            work,
            metrics,
            options,
        })
    }
}

/// Every observer's [`coherent_core::RunObserver::begin`]; an observer that cannot watch the
/// run fails it.
fn begin_observers(
    plan: &mut RunPlan,
    layers: &[LayerInfo],
    sizes: &Sizes,
    dir: &Path,
) -> Result<(), RecordError> {
    let data = plan.dataset.clone();
    let info = RunInfo {
        seed: plan.seed,
        layers,
        train: data.train(),
        test: data.test(),
        evaluated: sizes.eval_limit.min(data.train().len()),
        steps_per_epoch: sizes.steps_per_epoch,
        total_steps: sizes.total,
        outputs: data.outputs(),
    };
    for o in &mut plan.observers {
        o.observer.begin(&info).map_err(|e| {
            RecordError::malformed(dir, None, format!("observer `{}`: {e}", o.name))
        })?;
    }
    Ok(())
}

/// The run's sizes: steps (checked, as the planner checked them: a plan changed since, by a
/// protocol, could have too many), and how often it checkpoints and evaluates.
fn sizes(plan: &RunPlan, n: usize) -> Result<Sizes, RecordError> {
    let t = &plan.training;
    let steps = t.steps(n).map_err(|r| {
        let path = Path::new(files::MANIFEST);
        RecordError::malformed(path, None, format!("[training] `{}`: {}", r.key, r.message))
    })?;
    let eval_every = plan
        .evaluation
        .every_steps
        .or(plan.metrics.iter().map(|m| m.schedule.every_steps).min())
        .unwrap_or(steps.per_epoch);
    Ok(Sizes {
        steps_per_epoch: steps.per_epoch,
        total: steps.total,
        checkpoint_every: t.checkpoint_every.unwrap_or(steps.per_epoch),
        weights_every: plan.record.weights_every,
        eval_every,
        eval_limit: plan.evaluation.train_limit.unwrap_or(usize::MAX),
    })
}

/// A checkpoint to resume from and the `metrics.jsonl` lines written before it.
type Resumable = (Checkpoint, Vec<MetricsLine>);

/// The newest checkpoint of `dir` that continues this run (the manifest with `hash`, over
/// `examples` training examples and `total` steps, of a model with `layers`) and the record
/// it continues, and why newer ones could not be used. A checkpoint of another manifest (an
/// edited one) is not resumed either: the run starts again.
fn usable_checkpoint(
    dir: &Path,
    hash: u64,
    examples: usize,
    total: usize,
    layers: &[LayerMeta],
) -> (Option<Resumable>, Vec<String>) {
    let mut refused = Vec::new();
    for (path, loaded) in Checkpoint::candidates(dir) {
        let why = match loaded {
            Err(LoadError::OtherVersion(m) | LoadError::Invalid(m)) => m,
            Ok(stored) => match stored.check(hash, examples, total) {
                Err(Rejection::OtherManifest) => {
                    log::warn!(
                        "{}: the checkpoint was taken with a different manifest; the run starts again",
                        dir.display()
                    );
                    return (None, refused);
                }
                Err(Rejection::Invalid(m)) => m,
                Ok(()) => {
                    let (step, mark) = (stored.header.step, stored.header.metrics);
                    match RunDir::check_resume(dir, step, &mark) {
                        Err(m) => format!("it continues another record: {m}"),
                        Ok(kept) => match stored.unpack(layers) {
                            Ok(c) => return (Some((c, kept)), refused),
                            Err(m) => m,
                        },
                    }
                }
            },
        };
        let why = format!("{}: {why}", path.display());
        log::warn!("{why}; not resumed from it");
        refused.push(why);
    }
    if !refused.is_empty() {
        log::warn!(
            "{}: no usable checkpoint; the run starts over",
            dir.display()
        );
    }
    (None, refused)
}

/// `run.json` of a run starting (or resuming at `resumed_at`).
fn run_meta(
    plan: &RunPlan,
    options: &TrainOptions<'_>,
    layers: &[LayerInfo],
    resumed_at: Option<usize>,
    dir: &Path,
) -> RunMeta {
    let now = || utc_timestamp(SystemTime::now());
    // A resumed run keeps the start time of its first attempt.
    let started = resumed_at
        .and_then(|_| read_json::<RunMeta>(&dir.join(files::RUN)).ok())
        .map(|m| m.started)
        .filter(|s| !s.is_empty());
    let mut metric_samples: Vec<(String, usize)> = Vec::new();
    for m in &plan.metrics {
        if !metric_samples.iter().any(|(p, _)| *p == m.plugin) {
            metric_samples.push((m.plugin.clone(), m.schedule.sample));
        }
    }
    RunMeta {
        schema: SCHEMA,
        program: provenance::program().into(),
        version: env!("CARGO_PKG_VERSION").into(),
        git_commit: provenance::git_commit().map(str::to_string),
        plugin_crates: plan.provenance.crates.clone(),
        plugins: plan.provenance.uses.clone(),
        host: hostname(),
        id: RunId {
            experiment: options.experiment.into(),
            run: plan.spec.dir_name(),
            index: plan.spec.index,
            params: plan
                .spec
                .params
                .iter()
                .map(|(k, v)| (k.clone(), coherent_record::Text(v.clone())))
                .collect(),
        },
        seed: plan.seed,
        num_params: plan.model.num_params(),
        layers: layers.iter().map(layer_meta).collect(),
        metric_samples,
        started: started.unwrap_or_else(now),
        resumed_at_step: resumed_at,
        resumed: resumed_at.map(|_| now()),
        resume_refused: Vec::new(),
        ended: None,
        status: None,
    }
}
