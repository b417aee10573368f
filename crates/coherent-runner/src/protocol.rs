//! Protocols: how a planned run is carried out when it is more than one training.
//!
//! Most runs are one training ([`crate::train()`]). A protocol is a study made of several
//! trainings — the easy-vs-hard experiment trains a probe, then fresh models on its
//! earliest- and latest-learned examples — built on the public training API. A protocol plugin
//! submits a [`ProtocolEntry`]; a manifest chooses it with a section of the protocol's name
//! (`[easy_hard]`), whose keys are the protocol's parameters.

use crate::plan::{Planner, RunPlan};
use crate::sweep::RunSpec;
use crate::train::{train, TrainOptions};
use coherent_core::{ConfigError, CrateId, ParamDoc, PluginArgs};
use coherent_record::{read_json, RecordError, RunDir, Summary};
use std::path::{Path, PathBuf};

/// A problem a protocol finds with a plan, at `section.key` of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolIssue {
    /// Where: `section.key` (e.g. `evaluation.train_limit`), or a section.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// A way of carrying out a planned run (see the module docs).
pub trait Protocol: Send {
    /// Problems with a run planned under this protocol, checked before anything runs.
    fn check(&self, plan: &RunPlan) -> Vec<ProtocolIssue> {
        let _ = plan;
        Vec::new()
    }

    /// Carries out `plan` into its run directory `dir` and returns the run's summary, which it
    /// must have written (with `DONE`) into `dir`.
    fn run(
        &mut self,
        plan: RunPlan,
        dir: &Path,
        cx: &mut ProtocolContext<'_, '_>,
    ) -> Result<Summary, RecordError>;

    /// The run directories a run of this protocol writes, the one that stands for the run in
    /// an experiment's report first (default: `dir` itself).
    fn run_dirs(&self, dir: &Path) -> Vec<PathBuf> {
        vec![dir.to_path_buf()]
    }
}

/// A protocol plugin: a manifest section named `name` chooses it.
#[derive(Clone, Copy)]
pub struct ProtocolEntry {
    /// Registry name, and the manifest section that chooses the protocol.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// The docs of its parameters.
    pub params: fn() -> Vec<ParamDoc>,
    /// Builds the protocol from its section.
    pub build: fn(&PluginArgs) -> Result<Box<dyn Protocol>, ConfigError>,
    /// The crate that provides it (set by `coherent_core::register!`).
    pub krate: CrateId,
}

inventory::collect!(ProtocolEntry);

impl std::fmt::Debug for ProtocolEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtocolEntry")
            .field("name", &self.name)
            .finish()
    }
}

impl ProtocolEntry {
    /// Every protocol linked into this program, sorted by name.
    pub fn all() -> Vec<&'static ProtocolEntry> {
        let mut all: Vec<&'static ProtocolEntry> = inventory::iter::<ProtocolEntry>().collect();
        all.sort_by_key(|e| e.name);
        all
    }
}

/// A protocol chosen by a run's manifest.
pub struct PlannedProtocol {
    /// Its registry name.
    pub name: &'static str,
    /// The protocol.
    pub protocol: Box<dyn Protocol>,
}

/// What a protocol may do while it carries out a run: train plans, plan the run again (a
/// fresh model with the same settings and data), and know how it was asked to run.
pub struct ProtocolContext<'p, 'm> {
    planner: &'p mut Planner<'m>,
    spec: &'p RunSpec,
    options: TrainOptions<'p>,
}

impl<'p, 'm> ProtocolContext<'p, 'm> {
    /// A context for run `spec` of `planner`'s manifest.
    pub fn new(planner: &'p mut Planner<'m>, spec: &'p RunSpec, options: TrainOptions<'p>) -> Self {
        ProtocolContext {
            planner,
            spec,
            options,
        }
    }

    /// Trains `plan` into `dir`; when resuming, a part that is already complete is not run
    /// again (its summary is read), and an unfinished one continues from its checkpoint.
    pub fn train(&self, plan: RunPlan, dir: &Path) -> Result<Summary, RecordError> {
        if self.options.resume && RunDir::is_done(dir) {
            let summary: Summary = read_json(&dir.join(coherent_record::files::SUMMARY))?;
            return Ok(summary.upgrade());
        }
        train(plan, dir, &self.options)
    }

    /// A new plan of the same run: fresh plugins (a new model from the run's seed), the same
    /// (shared) dataset.
    pub fn replan(&mut self) -> Result<RunPlan, String> {
        self.planner.plan(self.spec).map_err(|e| e.to_string())
    }

    /// Whether unfinished parts continue from their checkpoints (and finished ones are kept).
    pub fn resume(&self) -> bool {
        self.options.resume
    }
}

/// Names, descriptions and parameters of the protocols, for `coherent plugins`.
pub fn listing() -> Vec<coherent_core::Listing> {
    ProtocolEntry::all()
        .into_iter()
        .map(|e| coherent_core::Listing {
            name: e.name,
            description: e.description,
            params: (e.params)(),
            krate: e.krate,
        })
        .collect()
}
