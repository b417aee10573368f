//! Integration tests of `coherent`, compiled as one binary.
//!
//! Where a new test goes:
//! * `registry.rs`  — which plugins are linked (update the expected names when adding one);
//! * `malformed.rs` — more than 150 generated malformed manifests, each refused with located
//!   errors, exit code 2, no panic or hang, in little memory;
//! * `manifests.rs` — manifest validation: the experiments, the bad fixtures in
//!   `fixtures/bad/`, and the exact diagnostics they produce;
//! * `data.rs`      — missing and corrupt data files;
//! * `fashion_mnist.rs` — the full Fashion-MNIST of Debian's `dataset-fashion-mnist`, read as
//!   installed;
//! * `limits.rs`    — the limits of a run (network size, memory) checked before allocating;
//! * `runs.rs`      — end-to-end runs through the `coherent` binary and their run directories;
//! * `report.rs`    — `coherent report`: plots and pages from run directories;
//! * `sweeps.rs`    — `coherent sweep` on this machine: listing, parallel runs, state, the
//!   Slurm script;
//! * `slurm.rs`     — `coherent sweep --slurm` on a real (single-node) Slurm cluster;
//! * `param_properties.rs` — property tests: generated values of every plugin parameter are
//!   accepted or refused with a location, in-process as `check` plans them;
//! * `properties.rs` — property tests: any manifest text is rejected with a location or
//!   accepted, and sweeps expand to their grid;
//! * `science.rs`   — the theory's reference values (toy example, real vs random);
//! * `metrics.rs`   — the metric plugins on a real network, checked against each other;
//! * `phenomena.rs` — loss-reduction fractions, learning times, easy vs hard, crash and resume;
//! * `observers.rs` — observer plugins: one from its own crate, the defaults and their switches;
//! * `own_plugins.rs` — the out-of-tree example crate `examples/own-plugins`, built and used;
//! * `new_plugin.rs` — `coherent new plugin --out`: a crate of plugins of every kind, built,
//!   tested, listed and trained with;
//! * `bench.rs`     — the engine benchmark command;
//! * `reliability.rs` — run directories under a second writer, signals, a killed sweep, damaged
//!   checkpoints and records: every `DONE` run as if uninterrupted;
//! * `weights.rs`   — weights files and checkpoints (safetensors): a logged m-coherence
//!   recomputed in NumPy, runs started from given weights, older checkpoints.
//!
//! Unit tests of one crate sit at the bottom of the file they test, not here.

mod bench;
mod common;
mod data;
mod fashion_mnist;
mod limits;
mod malformed;
mod manifests;
mod metrics;
mod new_plugin;
mod observers;
mod own_plugins;
mod param_properties;
mod phenomena;
mod properties;
mod registry;
mod reliability;
mod report;
mod runs;
mod science;
mod slurm;
mod sweeps;
mod weights;
