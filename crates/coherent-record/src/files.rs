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
/// The state to resume from.
pub const CHECKPOINT: &str = "checkpoint.bin";
/// Completion marker, written last.
pub const DONE: &str = "DONE";
/// The error of an attempt that failed (removed when the run starts again).
pub const FAILED: &str = "FAILED";
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
