//! The command line's arguments (clap).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The command line: one subcommand.
#[derive(Parser)]
#[command(version, about = "Coherent Gradients research framework")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Train every run of a manifest (or one, with --index) and write the run directories.
    Run {
        /// The manifest (TOML).
        manifest: PathBuf,
        /// Directory under which `<name>/<run>/` directories are written.
        #[arg(long, default_value = "runs")]
        out: PathBuf,
        /// Run only the run with this index (see `coherent check`).
        #[arg(long)]
        index: Option<usize>,
        /// Run again even the runs whose directory is marked complete.
        #[arg(long)]
        force: bool,
        /// Continue unfinished runs from their last checkpoint (after a crash or a kill)
        /// instead of starting them again.
        #[arg(long)]
        resume: bool,
    },
    /// Run a manifest's sweep in parallel or on Slurm, list its runs, or report their state.
    Sweep(crate::sweep::SweepArgs),
    /// Validate manifests (plugins, parameters, data files) without training.
    Check {
        /// The manifests.
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
    },
    /// Draw plots (SVG) and a page (HTML, Markdown) from run directories.
    Report {
        /// Run directories (holding metrics.jsonl) or experiment directories (holding runs).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output directory (default: DIR/report for one DIR, else ./report).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Logarithmic y axes for coherence, loss and the other metrics.
        #[arg(long)]
        log_scale: bool,
    },
    /// List every plugin by kind, with its parameters.
    Plugins,
    /// Create a plugin from a template, in this repository or in a crate of your own (--out).
    New(crate::scaffold::NewArgs),
    /// Benchmark the per-example gradient engine against the plain training step.
    Bench {
        /// Print the results as JSON (for tracking from release to release).
        #[arg(long)]
        json: bool,
        /// Interleaved repetitions of every case (the median is reported).
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// Minimum milliseconds of one repetition of one case.
        #[arg(long, default_value_t = 300)]
        min_ms: u64,
        /// Examples per step.
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// What to measure: one network, the aggregators, the metrics, or the MLP, the CNN, the
        /// aggregators and the metrics (`all`; the CIFAR-shaped networks take minutes each).
        #[arg(long, value_enum, default_value = "all")]
        network: BenchChoice,
        /// Instead of the report, serve one network's plain step (mlp, cnn, resnet or vgg) on
        /// request: print `ready`, then for each line `steps N` read from standard input, the
        /// median milliseconds of N steps as a JSON line, until `quit`
        /// (`bench/side_by_side.py --alternations` alternates it with PyTorch's step).
        #[arg(long)]
        serve: bool,
    },
}

/// The networks `coherent bench` measures.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum BenchChoice {
    /// MLP 784-256-10.
    Mlp,
    /// The CNN conv16-pool-conv32-pool-fc10.
    Cnn,
    /// CIFAR ResNet-20 (GroupNorm, width 16) on 3x32x32 inputs.
    Resnet,
    /// The `vgg` plugin's default layout with GroupNorm on 3x32x32 inputs.
    Vgg,
    /// The aggregators (suppression strategies) on FC 784-256-256-256-10.
    Aggregators,
    /// Several metrics on one sample against one metric (MLP 784-256-10).
    Metrics,
    /// All of them.
    All,
}
