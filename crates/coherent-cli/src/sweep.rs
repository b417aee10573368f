//! `coherent sweep`: the arguments of a manifest's runs in parallel on this machine (`--jobs
//! N`), as a Slurm job array (`--slurm`), listed (`--list`) or checked (`--status`); the work
//! itself is `coherent_runner::sweeping`.

use crate::commands::{load, registry};
use clap::{ArgGroup, Args};
use coherent_runner::slurm::SlurmOptions;
use coherent_runner::sweeping::{self, Relaunch};
use coherent_runner::Failure;
use std::path::PathBuf;

/// Arguments of `coherent sweep`.
#[derive(Args)]
#[command(group(ArgGroup::new("mode").args(["list", "status", "jobs", "slurm"])))]
pub struct SweepArgs {
    /// The manifest (TOML).
    manifest: PathBuf,
    /// Directory under which `<name>/<run>/` directories are written.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Print every run: index, directory, sweep values and state.
    #[arg(long)]
    list: bool,
    /// Report the state of every run; exit code 0 only if all are done.
    #[arg(long)]
    status: bool,
    /// Run the runs that are not done on this machine, N at a time (the default, with N = 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Submit the runs that are not done as a Slurm job array.
    #[arg(long)]
    slurm: bool,
    /// Slurm partition.
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// Slurm time limit of each run (e.g. `02:00:00`).
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    /// CPUs of each run (also its `RAYON_NUM_THREADS`).
    #[arg(long, requires = "slurm", value_parser = clap::value_parser!(u16).range(1..))]
    cpus_per_task: Option<u16>,
    /// Memory of each run (e.g. `4G`).
    #[arg(long, requires = "slurm")]
    mem: Option<String>,
    /// At most this many runs at once (`--array=...%L`).
    #[arg(long, value_name = "L", requires = "slurm", value_parser = clap::value_parser!(u32).range(1..))]
    max_parallel: Option<u32>,
    /// Slurm account.
    #[arg(long, requires = "slurm")]
    account: Option<String>,
    /// Any other sbatch option, written as an `#SBATCH` line (repeatable, e.g. `--sbatch-arg=--qos=long`).
    #[arg(
        long,
        value_name = "ARG",
        requires = "slurm",
        allow_hyphen_values = true
    )]
    sbatch_arg: Vec<String>,
    /// Write the Slurm script and print it, without submitting.
    #[arg(long, requires = "slurm")]
    dry_run: bool,
}

/// Runs `coherent sweep`.
pub fn sweep(args: &SweepArgs) -> Result<(), Failure> {
    let m = load(&args.manifest)?;
    let relaunch = || -> Result<Relaunch, Failure> {
        Ok(Relaunch {
            binary: std::env::current_exe().map_err(|e| Failure::run(format!("coherent: {e}")))?,
            manifest: args.manifest.clone(),
            out: args.out.clone(),
        })
    };
    if args.list {
        sweeping::list(&m, &args.out);
        Ok(())
    } else if args.status {
        sweeping::status(&m, &args.out)
    } else if args.slurm {
        let options = SlurmOptions {
            partition: args.partition.clone(),
            time: args.time.clone(),
            cpus_per_task: args.cpus_per_task.map(usize::from),
            mem: args.mem.clone(),
            max_parallel: args.max_parallel.map(|l| l as usize),
            account: args.account.clone(),
            extra: args.sbatch_arg.clone(),
        };
        sweeping::submit(&m, registry()?, options, args.dry_run, &relaunch()?)
    } else {
        let jobs = usize::from(args.jobs.unwrap_or(1));
        sweeping::local(&m, registry()?, jobs, &relaunch()?)
    }
}
