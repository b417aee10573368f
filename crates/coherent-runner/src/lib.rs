//! The runner of `coherent`: manifests in, run directories out.
//!
//! * [`Manifest`] reads a TOML manifest and expands its `[sweep]` into indexed runs
//!   ([`RunSpec`]); every problem is a [`Diagnostic`] with `file:line:col`.
//! * [`Planner`] builds the plugins of each run (dataset, model, aggregator, metrics with their
//!   schedules, observers, protocol) through the registry, once per run, validating every
//!   parameter before any training starts.
//! * [`train()`] is the training loop of one run ([`train`](mod@train)); a [`Protocol`] carries out
//!   a run made of several trainings (easy vs hard).
//! * [`run_experiment`] runs a manifest's runs in this process, then writes the comparison
//!   table and draws the overlaid report ([`experiment`]).
//! * [`status`] reads where each run of a sweep stands from its directory; [`local`] runs a
//!   sweep's runs as child processes on this machine, [`slurm`] as a Slurm job array.
//!
//! The run directory itself — its files and their schema — is `coherent-record`; the
//! command-line program is a thin layer over this crate.

pub mod checkpoint;
pub mod diagnostic;
pub mod evaluate;
pub mod experiment;
pub mod interrupt;
pub mod local;
pub mod logging;
pub mod manifest;
pub mod manifest_file;
mod meta;
mod optim;
pub mod plan;
pub mod protocol;
pub mod provenance;
pub mod settings;
pub mod slurm;
pub mod status;
pub mod sweep;
pub mod sweeping;
pub mod train;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use experiment::{run_experiment, Failure, RunRequest};
pub use manifest::Manifest;
pub use meta::utc_timestamp;
pub use plan::{plan, PlanError, Planner, Provenance, RunPlan};
pub use protocol::{Protocol, ProtocolContext, ProtocolEntry, ProtocolIssue};
pub use sweep::RunSpec;
pub use train::{train, Status, TrainOptions};

/// Re-exported so that protocol crates can submit a [`ProtocolEntry`] without depending on
/// `inventory` themselves.
pub use inventory;
