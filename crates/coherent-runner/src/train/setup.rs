//! Starting a run: its sizes, its directory and `run.json`, the observers, and a resume from
//! its checkpoint.

use super::state::{invalid, restore, Progress};
use super::{MetricRunner, Sizes, TrainOptions, Trainer, Work};
use crate::checkpoint::{manifest_hash, Checkpoint, LoadError, Stored};
use crate::meta::{hostname, layer_meta, utc_timestamp};
use crate::optim::Sgd;
use crate::plan::RunPlan;
use crate::provenance;
use coherent_core::{LayerInfo, RunInfo};
use coherent_record::{files, read_json, RecordError, RunDir, RunId, RunMeta, SCHEMA};
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
        let checkpoint = match options.resume {
            true => usable_checkpoint(dir, hash, sizes.total)?,
            false => None,
        };
        let (run, kept) = match &checkpoint {
            Some(c) => RunDir::resume(dir, c.header.step)?,
            None => (RunDir::create(dir)?, Vec::new()),
        };
        run.write(files::MANIFEST, plan.resolved.as_bytes())?;
        let meta = run_meta(
            &plan,
            options,
            &layers,
            checkpoint.as_ref().map(|c| c.header.step),
            dir,
        );
        run.write_json(files::RUN, &meta)?;
        begin_observers(&mut plan, &layers, &sizes, dir)?;
        plan.aggregator.begin(&layers);
        let mut sgd = Sgd::new(plan.optimizer);
        let mut progress = Progress::new(plan.seed, data.train().len());
        let name = plan.spec.dir_name();
        if let Some(c) = checkpoint {
            let layers = meta.layers.as_slice();
            restore(&mut plan, &mut sgd, &mut progress, c, layers, &kept, dir)?;
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

/// The directory's checkpoint, if it was taken of this manifest and fits the run; another
/// one (of an edited manifest, another run or another version) is not resumed: the run
/// starts again.
fn usable_checkpoint(dir: &Path, hash: u64, total: usize) -> Result<Option<Stored>, RecordError> {
    let checkpoint = match Checkpoint::load(dir) {
        Ok(c) => c,
        Err(LoadError::OtherVersion(e)) => {
            log::warn!("{e}; the run starts again");
            return Ok(None);
        }
        Err(LoadError::Invalid(e)) => return Err(invalid(dir, e)),
    };
    Ok(checkpoint.filter(|c| {
        let fits = c.header.manifest_hash == hash && c.header.step <= total;
        if !fits {
            log::warn!(
                "{}: the checkpoint was taken with a different manifest; the run starts again",
                dir.display()
            );
        }
        fits
    }))
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
        ended: None,
        status: None,
    }
}
