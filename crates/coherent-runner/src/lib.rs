//! The runner of `coherent`: manifests in, run directories out.
//!
//! * [`Manifest`] reads a TOML manifest and expands its `[sweep]` into indexed runs
//!   ([`RunSpec`]); every problem is a [`Diagnostic`] with `file:line:col`.
//! * [`plan()`] builds the plugins of one run (dataset, model, aggregator, metrics) through the
//!   registry, validating every parameter before any training starts.
//! * [`train()`] runs the training loop and writes the run directory ([`record`]).
//! * [`status`] reads where each run of a sweep stands from its directory; [`local`] runs a
//!   sweep's runs as child processes on this machine, [`slurm`] as a Slurm job array.
//!
//! The command-line program (`src/main.rs` at the workspace root) is a thin layer over this.

mod checkpoint;
pub mod diagnostic;
mod early_stop;
pub mod easy_hard;
mod evaluate;
pub mod fractions;
pub mod learning;
pub mod local;
pub mod logging;
pub mod manifest;
mod meta;
mod optim;
pub mod plan;
mod progress;
pub mod record;
pub mod report;
pub mod settings;
pub mod slurm;
pub mod status;
mod summary;
pub mod sweep;
mod train;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use manifest::Manifest;
pub use meta::utc_timestamp;
pub use plan::{plan, PlanError, RunPlan};
pub use sweep::RunSpec;
pub use train::{train, Status};
