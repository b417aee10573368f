//! Running a manifest's runs in this process: plan each run once (every run is validated
//! before any trains), train or hand it to its protocol, record failures, then the comparison
//! table and the overlaid report of the experiment.

use crate::plan::{PlanError, Planner, RunPlan};
use crate::protocol::ProtocolContext;
use crate::sweep::RunSpec;
use crate::train::{train, TrainOptions};
use crate::{logging, Manifest};
use coherent_core::Registry;
use coherent_record::comparison::{comparison, Row};
use coherent_record::{files, mark_failed, read_json, RecordError, RunDir, Summary, Table};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// Why a command failed, with its exit code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Bad usage or a bad manifest (exit code 2); the message is ready to print.
    #[error("{0}")]
    Usage(String),
    /// A run failed: bad data, an error while training (exit code 1).
    #[error("{0}")]
    Run(String),
    /// The run's directory is someone else's — another live process writes it, or it holds a
    /// complete run of another manifest: nothing was done (exit code 1).
    #[error("{0}")]
    Busy(String),
    /// The run was stopped by a signal, its checkpoint saved and marked `INTERRUPTED` (exit
    /// code 1).
    #[error("{0}")]
    Interrupted(String),
}

impl Failure {
    /// The exit code: 2 for usage and manifest errors, 1 for failed runs.
    pub fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Run(_) | Failure::Busy(_) | Failure::Interrupted(_) => 1,
        }
    }

    /// A failure of a run (exit code 1) with `error: ` before the message.
    pub fn run(message: impl std::fmt::Display) -> Failure {
        Failure::Run(format!("error: {message}"))
    }

    /// How a run's record error ends the command: a busy directory and an interrupted run are
    /// not failures of the run (nothing marks it `FAILED`).
    pub fn of_record(e: RecordError) -> Failure {
        match &e {
            RecordError::Busy { .. } => Failure::Busy(format!("error: {e}")),
            RecordError::Interrupted { .. } => Failure::Interrupted(format!("stopped: {e}")),
            _ => Failure::run(e),
        }
    }
}

impl From<PlanError> for Failure {
    fn from(e: PlanError) -> Failure {
        match e {
            PlanError::Manifest(d) => Failure::Usage(d.to_string()),
            PlanError::Data(e) => Failure::run(e),
        }
    }
}

/// What `coherent run` was asked.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    /// The directory under which `<experiment>/<run>/` is written.
    pub out: PathBuf,
    /// Only the run with this index.
    pub index: Option<usize>,
    /// Run again even runs that are complete.
    pub force: bool,
    /// Continue unfinished runs from their checkpoints.
    pub resume: bool,
}

/// A run of the experiment, planned.
pub struct PlannedRun {
    /// Its place in the sweep.
    pub spec: RunSpec,
    /// Its directory.
    pub dir: PathBuf,
    /// Its plan.
    pub plan: RunPlan,
}

impl PlannedRun {
    /// The run directories it writes (a protocol's parts), the one that stands for the run
    /// in the experiment's report first.
    pub fn run_dirs(&self) -> Vec<PathBuf> {
        match &self.plan.protocol {
            Some(p) => p.protocol.run_dirs(&self.dir),
            None => vec![self.dir.clone()],
        }
    }
}

/// The runs of `specs`, planned once each; a data error is recorded in the run's `FAILED`
/// (unless the run is complete) and ends the planning.
pub fn plan_runs(
    planner: &mut Planner<'_>,
    specs: &[&RunSpec],
    experiment_dir: &Path,
) -> Result<Vec<PlannedRun>, Failure> {
    specs
        .iter()
        .map(|spec| {
            let dir = experiment_dir.join(spec.dir_name());
            match planner.plan(spec) {
                Ok(plan) => Ok(PlannedRun {
                    spec: (*spec).clone(),
                    dir,
                    plan,
                }),
                Err(e) => Err(record_failure(&dir, e.into())),
            }
        })
        .collect()
}

/// Records a failed run (exit code 1: bad data, a training error) as the outcome of the attempt
/// at the run in `dir` (its `FAILED` marker, unless the run is complete) and passes it on. A bad
/// manifest (exit code 2) writes nothing.
pub fn record_failure(dir: &Path, failure: Failure) -> Failure {
    if let Failure::Run(message) = &failure {
        if !RunDir::is_done(dir) {
            if let Err(e) = mark_failed(dir, message) {
                log::warn!("cannot record the failure: {e}");
            }
        }
    }
    failure
}

/// Runs the runs of `manifest` (all, or `request.index`) in this process and returns the
/// comparison table (also saved as `comparison.txt` when every run was asked for).
pub fn run_experiment(
    manifest: &Manifest,
    registry: &Registry,
    request: &RunRequest,
) -> Result<Table, Failure> {
    let specs: Vec<&RunSpec> = match request.index {
        None => manifest.runs.iter().collect(),
        Some(i) => vec![manifest.runs.get(i).ok_or_else(|| {
            Failure::Usage(format!(
                "error: --index {i} is out of range: {} has {} runs",
                manifest.path.display(),
                manifest.runs.len()
            ))
        })?],
    };
    let experiment_dir = request.out.join(&manifest.name);
    let mut planner = Planner::new(manifest, registry);
    let runs = plan_runs(&mut planner, &specs, &experiment_dir)?;
    let total = runs.len();
    let mut rows = Vec::new();
    let mut reported = Vec::new();
    let mut plots = false;
    for (k, run) in runs.into_iter().enumerate() {
        plots |= run.plan.evaluation.plots();
        reported.push(run.run_dirs()[0].clone());
        if RunDir::is_done(&run.dir) && !request.force {
            if !crate::status::same_manifest(&run.dir, &run.spec) {
                return Err(Failure::Busy(format!(
                    "error: {}: holds a complete run of another manifest (its manifest.toml differs from this run's); --force replaces it, or choose another --out",
                    run.dir.display()
                )));
            }
            log::info!(
                "{}: already complete, skipped (use --force to run it again)",
                run.dir.display()
            );
            if let Ok(s) = read_json::<Summary>(&run.dir.join(files::SUMMARY)) {
                rows.push(s.upgrade());
            }
            continue;
        }
        let bar = progress_bar(&format!("run {}/{total}", k + 1));
        let (dir, dirs, run_plots) = (run.dir.clone(), run.run_dirs(), run.plan.evaluation.plots());
        let summary = carry_out(&mut planner, run, manifest, request, &bar);
        bar.finish_and_clear();
        rows.push(summary.map_err(|f| record_failure(&dir, f))?);
        println!("{}", dir.display());
        if run_plots {
            draw_report(&dirs, &dir.join(files::REPORT));
        }
    }
    let table = comparison(&rows.iter().map(Row::of).collect::<Vec<_>>());
    if request.index.is_none() {
        let path = experiment_dir.join(files::COMPARISON);
        if let Err(e) = coherent_record::write_atomic(&path, table.to_text().as_bytes()) {
            // The runs are complete and recorded; the table is printed all the same.
            log::warn!("the comparison table could not be saved: {e}");
        }
        if plots && total > 1 {
            draw_report(&reported, &experiment_dir.join(files::REPORT));
        }
    }
    Ok(table)
}

/// Trains one planned run (or hands it to its protocol), turning a panic into a failure.
fn carry_out(
    planner: &mut Planner<'_>,
    run: PlannedRun,
    manifest: &Manifest,
    request: &RunRequest,
    bar: &ProgressBar,
) -> Result<Summary, Failure> {
    logging::set_progress_bar(Some(bar.clone()));
    let options = TrainOptions {
        experiment: &manifest.name,
        // `--force` reruns every part of a protocol; `--resume` continues or skips them.
        resume: request.resume && !request.force,
        bar,
    };
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let PlannedRun {
            spec,
            dir,
            mut plan,
        } = run;
        match plan.protocol.take() {
            Some(mut p) => {
                let mut cx = ProtocolContext::new(planner, &spec, options);
                p.protocol.run(plan, &dir, &mut cx)
            }
            None => train(plan, &dir, &options),
        }
        .map_err(Failure::of_record)
    }));
    logging::set_progress_bar(None);
    attempt.unwrap_or_else(|payload| Err(Failure::Run(panic_message(payload.as_ref()))))
}

/// A progress bar of training steps.
pub fn progress_bar(prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(0).with_prefix(prefix.to_string());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps {elapsed_precise} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// The message of a panic's payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    format!("error: the run panicked: {}", text.unwrap_or_default())
}

/// Draws the report of `runs` into `out`; a failure to draw is a warning, not a failed run.
pub fn draw_report(runs: &[PathBuf], out: &Path) {
    let options = coherent_report::ReportOptions::default();
    match coherent_report::render(runs, out, &options) {
        Ok(files) => log::info!("report: {}", files.html.display()),
        Err(e) => log::warn!("the report of {} could not be drawn: {e}", out.display()),
    }
}
