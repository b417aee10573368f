//! The run record of `coherent`: what a run directory holds, as types.
//!
//! A run directory is the record of one run. This crate defines every file in it and writes
//! and reads them, so that the runner (which writes), `coherent report` and `coherent sweep
//! --status` (which read) agree on one schema:
//!
//! ```text
//! <run>/
//!   manifest.toml        the run's own manifest (sweep values applied)        [files::MANIFEST]
//!   run.json             RunMeta: program, versions, host, times, layers      [meta]
//!   metrics.jsonl        one MetricsLine per measurement point                [metrics]
//!   summary.json         Summary: status, final and peak values, observers'   [summary]
//!   learning_times.csv   LearningTime per training example                    [learning_times]
//!   samples.json         Samples: each metric's sample of training examples   [samples]
//!   weights/             initial, final (and every N steps) weights           [weights]
//!   checkpoint.safetensors  the state to resume from (safetensors)            [weights]
//!   log.txt, report/, DONE, FAILED, stdout.txt, stderr.txt                    [files]
//!   LOCK                 who writes the directory, while a run does          [lock]
//! ```
//!
//! JSON records carry a `schema` number ([`SCHEMA`]). Readers accept the previous version
//! (records written before the field existed count as version 1 and are read as they are) and
//! refuse a newer one with a message that says so. Every read error names the file (and the
//! line, for line-based files). Whole files are written atomically ([`write_atomic`]): a
//! reader sees the old file or the new one, never a part.
//!
//! [`comparison`] is the one comparison table of runs, printed after a run or a sweep and
//! shown in reports.

pub mod comparison;
mod error;
pub mod files;
mod io;
pub mod learning_times;
pub mod lock;
pub mod meta;
pub mod metrics;
mod ordered;
mod run_dir;
pub mod samples;
pub mod summary;
mod tracker;
pub mod weights;

pub use comparison::Table;
pub use error::RecordError;
pub use io::{
    read_json, remove_stale, remove_temporaries, write_atomic, write_atomic_keeping_previous,
    write_json_atomic,
};
pub use learning_times::LearningTime;
pub use lock::{Holder, RunLock};
pub use meta::{CrateMeta, LayerMeta, PluginUse, RunId, RunMeta, TensorMeta};
pub use metrics::MetricsLine;
pub use ordered::Text;
pub use run_dir::{mark_failed, MetricsMark, RunDir};
pub use samples::Samples;
pub use summary::{Peak, RunStatus, Summary};
pub use tracker::Tracker;
pub use weights::{Mismatch, Tensor, TensorFile};

/// The version of the JSON records this crate writes. Version 1 had no `schema` field and no
/// `headline`; version 2 added both and the `table` cells of the comparison table.
pub const SCHEMA: u32 = 2;
