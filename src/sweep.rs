//! `coherent sweep`: a manifest's runs in parallel on this machine (`--jobs N`), as a Slurm job
//! array (`--slurm`), listed (`--list`) or checked (`--status`). Every mode reads the run
//! directories, so each command picks up where the last one left off; the work itself is in
//! `coherent_runner::{status, local, slurm}`.

use crate::{load, plan_error, registry, Failure};
use clap::{ArgGroup, Args};
use coherent_runner::local::{run_local, LocalRun};
use coherent_runner::slurm::{self, ArrayJob, SlurmOptions};
use coherent_runner::status::{sweep_status, Counts, RunState, RunStatus};
use coherent_runner::{plan, record, report, Manifest, PlanError};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

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

fn io_failure(what: &Path, e: impl std::fmt::Display) -> Failure {
    Failure(1, format!("error: {}: {e}", what.display()))
}

/// Runs `coherent sweep`.
pub fn sweep(args: &SweepArgs) -> Result<(), Failure> {
    let m = load(&args.manifest)?;
    let experiment_dir = args.out.join(&m.name);
    let runs = sweep_status(&experiment_dir, &m.runs);
    if args.list {
        list(&runs);
        Ok(())
    } else if args.status {
        status(&m, &runs)
    } else if args.slurm {
        submit(args, &m, &runs)
    } else {
        local(args, &m, &runs, usize::from(args.jobs.unwrap_or(1)))
    }
}

/// Prints aligned columns, the last one unpadded.
fn print_columns(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

fn list(runs: &[RunStatus]) {
    let mut rows = vec![vec![
        "index".into(),
        "run".into(),
        "parameters".into(),
        "state".into(),
    ]];
    for r in runs {
        let params = if r.params.is_empty() {
            "-".into()
        } else {
            r.params.join(" ")
        };
        rows.push(vec![
            r.index.to_string(),
            r.name.clone(),
            params,
            r.state.label().into(),
        ]);
    }
    print_columns(&rows);
}

fn status(m: &Manifest, runs: &[RunStatus]) -> Result<(), Failure> {
    let mut rows = vec![vec!["run".into(), "state".into()]];
    for r in runs {
        rows.push(vec![r.name.clone(), r.state.describe()]);
    }
    print_columns(&rows);
    let counts = Counts::of(runs);
    println!("{counts}");
    if counts.started > 0 {
        println!("started: running now, or stopped without recording an outcome (killed, out of time or memory); see its log.txt or slurm/*.out");
    }
    if counts.done == counts.total() {
        Ok(())
    } else {
        Err(Failure(
            1,
            format!(
                "{} of {} runs of {} are not done",
                counts.total() - counts.done,
                counts.total(),
                m.path.display()
            ),
        ))
    }
}

/// Plans the runs about to start, so that a bad manifest is reported once, before anything
/// runs. A data error concerns one run only: it is shown here as a warning, and the run
/// records it in its `FAILED` marker when it starts, without stopping the others.
fn validate(m: &Manifest, pending: &[&RunStatus]) -> Result<(), Failure> {
    let registry = registry()?;
    for r in pending {
        match plan(m, &m.runs[r.index], registry) {
            Ok(_) => {}
            Err(PlanError::Data(e)) => eprintln!("warning: run {} ({}): {e}", r.index, r.name),
            Err(e) => return Err(plan_error(e)),
        }
    }
    Ok(())
}

/// The comparison table of every run (runs that are not done show their state only).
fn table(runs: &[RunStatus]) -> String {
    let rows: Vec<Value> = runs
        .iter()
        .map(|r| {
            let summary = match r.state {
                RunState::Done => record::read_summary(&r.dir).ok(),
                _ => None,
            };
            summary.unwrap_or_else(|| json!({"run": r.name, "status": r.state.label()}))
        })
        .collect();
    report::comparison_table(&rows)
}

fn local(args: &SweepArgs, m: &Manifest, runs: &[RunStatus], jobs: usize) -> Result<(), Failure> {
    let pending: Vec<&RunStatus> = runs.iter().filter(|r| r.state != RunState::Done).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / jobs).max(1);
    if pending.is_empty() {
        println!("all {} runs are done", runs.len());
    } else {
        validate(m, &pending)?;
        let exe = std::env::current_exe().map_err(|e| io_failure(Path::new("coherent"), e))?;
        println!(
            "running {} of {} runs, {jobs} at a time with {threads} thread{} each; each run's output is in its stdout.txt and stderr.txt",
            pending.len(),
            runs.len(),
            if threads == 1 { "" } else { "s" }
        );
        let todo: Vec<LocalRun> = pending
            .iter()
            .map(|r| LocalRun {
                index: r.index,
                name: r.name.clone(),
                dir: r.dir.clone(),
            })
            .collect();
        let mut finished = 0;
        run_local(
            &todo,
            jobs,
            |run| {
                let mut c = Command::new(&exe);
                c.arg("run")
                    .arg(&args.manifest)
                    .arg("--index")
                    .arg(run.index.to_string())
                    .arg("--out")
                    .arg(&args.out)
                    .arg("--resume")
                    .env("RAYON_NUM_THREADS", threads.to_string());
                c
            },
            |o| {
                finished += 1;
                let mut line = format!(
                    "[{finished}/{}] {} ({:.1} s): {}",
                    todo.len(),
                    o.run.name,
                    o.elapsed.as_secs_f64(),
                    o.state.describe()
                );
                if let RunState::Failed(_) = o.state {
                    line.push_str(&format!(
                        " (see {})",
                        o.run.dir.join(record::FAILED).display()
                    ));
                }
                println!("{line}");
            },
        );
    }
    let runs = sweep_status(&args.out.join(&m.name), &m.runs);
    let table = table(&runs);
    println!("\n{table}");
    let path = args.out.join(&m.name).join("comparison.txt");
    record::write_atomic(&path, table.as_bytes()).map_err(|e| Failure(1, format!("error: {e}")))?;
    let done: Vec<PathBuf> = runs
        .iter()
        .filter(|r| r.state == RunState::Done)
        .map(|r| match r.dir.join("probe") {
            probe if probe.is_dir() => probe,
            _ => r.dir.clone(),
        })
        .collect();
    if done.len() > 1 {
        crate::write_report(&done, &args.out.join(&m.name).join("report"));
    }
    let counts = Counts::of(&runs);
    println!("{counts}");
    if counts.failed > 0 {
        return Err(Failure(
            1,
            format!("error: {} of {} runs failed", counts.failed, counts.total()),
        ));
    }
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::fs::canonicalize(path).map_err(|e| io_failure(path, e))
}

fn submit(args: &SweepArgs, m: &Manifest, runs: &[RunStatus]) -> Result<(), Failure> {
    let mut pending: Vec<&RunStatus> = runs.iter().filter(|r| r.state != RunState::Done).collect();
    let name = m.name.clone();
    let mut busy = 0;
    if let Some(queued) = slurm::queued_indices(&name) {
        let (queued, rest): (Vec<&RunStatus>, Vec<&RunStatus>) =
            pending.into_iter().partition(|r| queued.contains(&r.index));
        if !queued.is_empty() {
            let indices: Vec<usize> = queued.iter().map(|r| r.index).collect();
            println!(
                "{} runs ({}) are still queued or running in Slurm jobs named `{name}`; they are left out",
                queued.len(),
                slurm::array_spec(&indices)
            );
        }
        (busy, pending) = (queued.len(), rest);
    }
    if pending.is_empty() {
        let why = if busy > 0 {
            "every run not done is queued or running"
        } else {
            "no run is missing"
        };
        println!("nothing to submit: {why} ({})", Counts::of(runs));
        return Ok(());
    }
    validate(m, &pending)?;
    let log_dir = args.out.join(&m.name).join("slurm");
    std::fs::create_dir_all(&log_dir).map_err(|e| io_failure(&log_dir, e))?;
    let exe = std::env::current_exe().map_err(|e| io_failure(Path::new("coherent"), e))?;
    let workdir = std::env::current_dir().map_err(|e| io_failure(Path::new("."), e))?;
    let job = ArrayJob {
        name,
        indices: pending.iter().map(|r| r.index).collect(),
        total_runs: runs.len(),
        binary: absolute(&exe)?,
        manifest: absolute(&args.manifest)?,
        out: absolute(&args.out)?,
        workdir,
        log_dir: absolute(&log_dir)?,
        options: SlurmOptions {
            partition: args.partition.clone(),
            time: args.time.clone(),
            cpus_per_task: args.cpus_per_task.map(usize::from),
            mem: args.mem.clone(),
            max_parallel: args.max_parallel.map(|l| l as usize),
            account: args.account.clone(),
            extra: args.sbatch_arg.clone(),
        },
    };
    let text = slurm::script(&job).map_err(|e| Failure(2, format!("error: {e}")))?;
    let path = job.log_dir.join("sweep.sbatch");
    record::write_atomic(&path, text.as_bytes()).map_err(|e| Failure(1, format!("error: {e}")))?;
    let spec = slurm::array_spec(&job.indices);
    if args.dry_run {
        println!("{}\n", path.display());
        print!("{text}");
        return Ok(());
    }
    let id = slurm::submit(&path)
        .map_err(|e| Failure(1, format!("error: {e} (script: {})", path.display())))?;
    println!(
        "submitted job {id}: {} of {} runs ({spec}); logs in {}/{id}_<index>.out",
        job.indices.len(),
        runs.len(),
        job.log_dir.display()
    );
    println!(
        "check with: coherent sweep {} --status --out {}",
        job.manifest.display(),
        job.out.display()
    );
    Ok(())
}
