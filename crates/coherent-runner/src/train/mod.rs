//! The trainer: the loop of one run, and nothing else.
//!
//! ```text
//! start    open the run directory, resume from a checkpoint, observers' begin
//!          (samples.json; weights/initial.safetensors before the first step)
//! loop     checkpoint if due; weights if due; measure if due (evaluation, metrics, observers
//!          -> metrics.jsonl); one step (batch, backward pass with what the aggregator and the
//!          observers ask for, aggregate, observers' after_step, update)
//! finish   weights/final.safetensors, summary.json (final and peak values, the observers'
//!          parts), run.json, DONE (once metrics.jsonl is checked to be what the run wrote)
//! ```
//!
//! The run holds its directory's lock ([`coherent_record::RunLock`]) from before it touches a
//! file until it returns, so no other process writes the directory meanwhile. A stop request
//! (SIGTERM, SIGINT: [`crate::interrupt`]) ends the loop between two steps: the run saves a
//! checkpoint, marks itself `INTERRUPTED` and returns [`RecordError::Interrupted`].
//!
//! Research protocols live in observers ([`coherent_core::RunObserver`]), measurements of a
//! fixed sample in metrics ([`coherent_core::CoherenceMetric`], scheduled by [`MetricRunner`]);
//! the loop names none of them.

mod finish;
mod measure;
mod metric_runner;
mod setup;
mod state;
mod step;
mod weights;

use crate::meta::{hostname, utc_timestamp};
use crate::optim::Sgd;
use crate::plan::RunPlan;
use crate::{interrupt, logging, provenance};
use coherent_core::{Batch, BatchGrads, Dataset, LayerInfo};
use coherent_record::{files, Holder, RecordError, RunDir, RunLock, RunMeta, Summary};
use indicatif::ProgressBar;
pub use metric_runner::{MetricRunner, Pass};
use state::Progress;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// How a run is trained.
#[derive(Clone, Copy)]
pub struct TrainOptions<'a> {
    /// The experiment the run belongs to (the manifest's name).
    pub experiment: &'a str,
    /// Continue from the run directory's checkpoint, if it has one that fits.
    pub resume: bool,
    /// The progress bar to advance.
    pub bar: &'a ProgressBar,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Every step ran.
    Completed,
    /// A loss, an update or a measurement became NaN or infinite at this step; training
    /// stopped there.
    Diverged(usize),
}

/// Trains the run of `plan`, writing its directory `dir` (which it locks first: another live
/// writer is [`RecordError::Busy`]); returns its summary.
pub fn train(
    plan: RunPlan,
    dir: &Path,
    options: &TrainOptions<'_>,
) -> Result<Summary, RecordError> {
    let lock = RunLock::acquire(dir, &this_process())?;
    // the only writer now: what an earlier writer killed in a write left goes
    coherent_record::remove_temporaries(dir)?;
    let log_path = dir.join(files::LOG);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(options.resume)
        .truncate(!options.resume)
        .open(&log_path)
        .map_err(RecordError::io(&log_path))?;
    logging::set_run_log(Some(log));
    if let Some(warning) = lock.warning() {
        log::warn!("{warning}");
    }
    let result = Trainer::start(plan, dir, options).and_then(Trainer::run);
    logging::set_run_log(None);
    drop(lock);
    result
}

/// This process, as a run directory's lock names it.
fn this_process() -> Holder {
    Holder {
        host: hostname(),
        pid: std::process::id(),
        started: utc_timestamp(SystemTime::now()),
        program: provenance::program().into(),
    }
}

/// Sizes of the run, fixed when it starts.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    steps_per_epoch: usize,
    total: usize,
    checkpoint_every: usize,
    weights_every: usize,
    eval_every: usize,
    eval_limit: usize,
}

/// Buffers reused from step to step.
#[derive(Default)]
struct Work {
    batch: Batch,
    grads: BatchGrads,
    direction: Vec<Vec<f32>>,
    indices: Vec<usize>,
    offsets: Vec<usize>,
}

/// A run in progress.
struct Trainer<'o> {
    plan: RunPlan,
    data: Arc<dyn Dataset>,
    layers: Vec<LayerInfo>,
    sizes: Sizes,
    progress: Progress,
    sgd: Sgd,
    run: RunDir,
    meta: RunMeta,
    hash: u64,
    clock: Instant,
    work: Work,
    metrics: MetricRunner,
    options: &'o TrainOptions<'o>,
}

impl Trainer<'_> {
    /// Trains to the end and writes the record.
    fn run(mut self) -> Result<Summary, RecordError> {
        let bar = self.options.bar;
        bar.set_length(self.sizes.total as u64);
        bar.set_position(self.progress.step as u64);
        if self.progress.step == 0 {
            self.write_weights(files::INITIAL_WEIGHTS)?;
        }
        let status = loop {
            let step = self.progress.step;
            if interrupt::requested() {
                return Err(self.interrupt(step));
            }
            self.checkpoint_if_due(step)?;
            self.weights_if_due(step)?;
            if self.measurement_due(step) && !self.measure(step)? {
                break Status::Diverged(step);
            }
            if step >= self.sizes.total {
                break Status::Completed;
            }
            if !self.step(step) {
                break Status::Diverged(step);
            }
            self.progress.step += 1;
            bar.inc(1);
        };
        self.finish(status)
    }

    /// Seconds of training so far, over all attempts.
    fn elapsed(&self) -> f64 {
        self.progress.elapsed_before + self.clock.elapsed().as_secs_f64()
    }

    fn measurement_due(&self, step: usize) -> bool {
        let total = self.sizes.total;
        step == 0
            || step == total
            || step.is_multiple_of(self.sizes.eval_every)
            || self
                .plan
                .metrics
                .iter()
                .any(|m| m.schedule.due(step, total))
    }

    /// Saves a checkpoint when one is due, once `metrics.jsonl` is checked to be what the run
    /// wrote (a run whose record was deleted under it stops here).
    fn checkpoint_if_due(&self, step: usize) -> Result<(), RecordError> {
        let every = self.sizes.checkpoint_every;
        if step == 0 || step >= self.sizes.total || every == 0 || !step.is_multiple_of(every) {
            return Ok(());
        }
        self.run.verify_metrics()?;
        self.checkpoint().save(self.run.path(), &self.meta.layers)
    }

    /// Stops the run at `step` on a stop request: a checkpoint (after the first step), the
    /// `INTERRUPTED` marker and `run.json` saying so; returns the error that reports it.
    fn interrupt(mut self, step: usize) -> RecordError {
        let dir = self.run.path().to_path_buf();
        let total = self.sizes.total;
        let saved = match step {
            0 => Ok(()),
            _ => self.checkpoint().save(&dir, &self.meta.layers),
        };
        if let Err(e) = saved {
            return e;
        }
        let message = format!(
            "interrupted at step {step} of {total} by a signal; `coherent run --resume` or `coherent sweep` continues it"
        );
        self.meta.status = Some(coherent_record::RunStatus::Interrupted);
        self.meta.ended = Some(utc_timestamp(SystemTime::now()));
        let recorded = self
            .run
            .write_json(files::RUN, &self.meta)
            .and_then(|_| self.run.interrupted(&message));
        match recorded {
            Ok(()) => RecordError::Interrupted { dir, step },
            Err(e) => e,
        }
    }
}
