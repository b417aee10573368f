//! The names of every file and folder of a run directory and of an experiment directory.
//!
//! ```text
//! <out>/<experiment>/                 an experiment: one manifest's runs
//!   comparison.txt                    the comparison table of its runs
//!   report/                           the overlaid report of its runs
//!   slurm/                            Slurm scripts and task logs
//!   <run>/                            one run (its index and sweep values)
//! ```

/// The run's manifest, sweep values applied, `[sweep]` removed.
pub const MANIFEST: &str = "manifest.toml";
/// Run metadata ([`crate::RunMeta`]).
pub const RUN: &str = "run.json";
/// One JSON object per measurement point ([`crate::MetricsLine`]).
pub const METRICS: &str = "metrics.jsonl";
/// Final and peak values and the observers' summaries ([`crate::Summary`]).
pub const SUMMARY: &str = "summary.json";
/// The run's log.
pub const LOG: &str = "log.txt";
/// Per-example learning times ([`crate::LearningTime`]).
pub const LEARNING_TIMES: &str = "learning_times.csv";
/// The state to resume from (safetensors, see [`crate::weights`]).
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The checkpoint file of earlier versions of coherent (never resumed; removed when the run
/// starts again).
pub const OLD_CHECKPOINT: &str = "checkpoint.bin";
/// The folder of a run's weights files ([`INITIAL_WEIGHTS`], [`FINAL_WEIGHTS`],
/// [`step_weights`]).
pub const WEIGHTS: &str = "weights";
/// The weights before the first step, in [`WEIGHTS`].
pub const INITIAL_WEIGHTS: &str = "initial.safetensors";
/// The weights at the end of the run (where it stopped, for a diverged run), in [`WEIGHTS`].
pub const FINAL_WEIGHTS: &str = "final.safetensors";
/// The training-set indices of each metric's fixed sample ([`crate::Samples`]).
pub const SAMPLES: &str = "samples.json";

/// The weights after `step` steps (`[record] weights_every`), in [`WEIGHTS`].
pub fn step_weights(step: usize) -> String {
    format!("step-{step}.safetensors")
}
/// Completion marker, written last.
pub const DONE: &str = "DONE";
/// The error of an attempt that failed (removed when the run starts again).
pub const FAILED: &str = "FAILED";
/// Who writes the run directory, while a run does ([`crate::RunLock`]).
pub const LOCK: &str = "LOCK";
/// The marker of a run stopped by a signal after saving its checkpoint (removed when it
/// continues).
pub const INTERRUPTED: &str = "INTERRUPTED";
/// The checkpoint before the last one, kept in case the last one is damaged.
pub const PREVIOUS_CHECKPOINT: &str = "checkpoint.previous.safetensors";
/// A run's terminal output under `coherent sweep --jobs`.
pub const STDOUT: &str = "stdout.txt";
/// A run's error output under `coherent sweep --jobs`.
pub const STDERR: &str = "stderr.txt";
/// The folder of a run's or an experiment's report.
pub const REPORT: &str = "report";
/// The comparison table of an experiment's runs.
pub const COMPARISON: &str = "comparison.txt";
/// The folder of an experiment's Slurm scripts and logs.
pub const SLURM: &str = "slurm";
