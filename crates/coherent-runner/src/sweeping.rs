//! `coherent sweep`: a manifest's runs listed, checked, run on this machine as child
//! processes, or submitted as a Slurm job array. Every mode reads the run directories, so each
//! command picks up where the last one left off; at the end of a local sweep the comparison
//! table and the overlaid report of the done runs are written, as after `coherent run`.

use crate::experiment::{draw_report, Failure};
use crate::local::{run_local, LocalRun};
use crate::plan::{protocol_for, PlanError, Planner};
use crate::slurm::{self, ArrayJob, SlurmOptions};
use crate::status::{sweep_status, Counts, RunState, RunStatus};
use crate::Manifest;
use coherent_core::Registry;
use coherent_record::comparison::{comparison, Row};
use coherent_record::{files, read_json, write_atomic, Summary, Table};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The program that runs each run of a sweep: `binary run MANIFEST --index i --out OUT
/// --resume`, as a child process or a Slurm task.
#[derive(Clone, Debug)]
pub struct Relaunch {
    /// The program (this one).
    pub binary: PathBuf,
    /// The manifest, as given.
    pub manifest: PathBuf,
    /// The output directory, as given.
    pub out: PathBuf,
}

/// Prints aligned columns, the last one unpadded.
fn print_columns(rows: &[Vec<String>]) {
    let table = Table {
        header: rows[0].clone(),
        rows: rows[1..].to_vec(),
    };
    let text = table.to_text();
    // the rule under the header is for comparison tables only
    for (k, line) in text.lines().enumerate() {
        if k != 1 {
            println!("{line}");
        }
    }
}

/// `--list`: every run with its index, directory, sweep values and state.
pub fn list(manifest: &Manifest, out: &Path) {
    let runs = sweep_status(&out.join(&manifest.name), &manifest.runs);
    let mut rows = vec![["index", "run", "parameters", "state"]
        .map(String::from)
        .to_vec()];
    for r in &runs {
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

/// `--status`: the state of every run and the counts; an error unless every run is done.
pub fn status(manifest: &Manifest, out: &Path) -> Result<(), Failure> {
    let runs = sweep_status(&out.join(&manifest.name), &manifest.runs);
    let mut rows = vec![vec!["run".to_string(), "state".to_string()]];
    for r in &runs {
        rows.push(vec![r.name.clone(), r.state.describe()]);
    }
    print_columns(&rows);
    let counts = Counts::of(&runs);
    println!("{counts}");
    if counts.started > 0 {
        println!("started: stopped without recording an outcome (killed, out of time or memory); see its log.txt or slurm/*.out");
    }
    if counts.done == counts.total() {
        return Ok(());
    }
    Err(Failure::Run(format!(
        "{} of {} runs of {} are not done",
        counts.total() - counts.done,
        counts.total(),
        manifest.path.display()
    )))
}

/// Plans the runs about to start, so that a bad manifest is reported once, before anything
/// runs. A data error concerns one run only: it is shown here as a warning, and the run
/// records it in its `FAILED` marker when it starts, without stopping the others.
fn validate(
    manifest: &Manifest,
    registry: &Registry,
    pending: &[&RunStatus],
) -> Result<(), Failure> {
    let mut planner = Planner::new(manifest, registry);
    for r in pending {
        match planner.plan(&manifest.runs[r.index]) {
            Ok(_) => {}
            Err(PlanError::Data(e)) => eprintln!("warning: run {} ({}): {e}", r.index, r.name),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The comparison table of every run (runs that are not done show their state), saved as
/// `comparison.txt`, and the overlaid report of the done runs (when there are two or more).
pub fn conclude(manifest: &Manifest, out: &Path, runs: &[RunStatus]) -> Result<Table, Failure> {
    let summaries: Vec<Option<Summary>> = runs
        .iter()
        .map(|r| match r.state {
            RunState::Done => read_json::<Summary>(&r.dir.join(files::SUMMARY))
                .ok()
                .map(Summary::upgrade),
            _ => None,
        })
        .collect();
    let rows: Vec<Row<'_>> = runs
        .iter()
        .zip(&summaries)
        .map(|(r, s)| match s {
            Some(s) => Row::of(s),
            None => Row {
                run: r.name.clone(),
                status: r.state.label().into(),
                summary: None,
            },
        })
        .collect();
    let table = comparison(&rows);
    let experiment_dir = out.join(&manifest.name);
    let path = experiment_dir.join(files::COMPARISON);
    if let Err(e) = write_atomic(&path, table.to_text().as_bytes()) {
        log::warn!("the comparison table could not be saved: {e}");
    }
    let done: Vec<PathBuf> = runs
        .iter()
        .filter(|r| r.state == RunState::Done)
        .map(|r| representative(manifest, r))
        .collect();
    if done.len() > 1 {
        draw_report(&done, &experiment_dir.join(files::REPORT));
    }
    Ok(table)
}

/// The directory that stands for run `r` in the experiment's report (a protocol's first part).
fn representative(manifest: &Manifest, r: &RunStatus) -> PathBuf {
    match protocol_for(&manifest.runs[r.index]) {
        Some(p) => p.run_dirs(&r.dir).swap_remove(0),
        None => r.dir.clone(),
    }
}

/// Runs the runs that are not done on this machine, `jobs` at a time, each as a child process
/// with its output in its directory; then the comparison table, the report and the counts. An
/// error if a run failed.
pub fn local(
    manifest: &Manifest,
    registry: &Registry,
    jobs: usize,
    relaunch: &Relaunch,
) -> Result<(), Failure> {
    let out = &relaunch.out;
    let runs = sweep_status(&out.join(&manifest.name), &manifest.runs);
    let pending: Vec<&RunStatus> = runs.iter().filter(|r| r.state.startable()).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / jobs).max(1);
    if pending.is_empty() {
        println!("all {} runs are done", runs.len());
    } else {
        validate(manifest, registry, &pending)?;
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
        let command = |run: &LocalRun| {
            let mut c = Command::new(&relaunch.binary);
            c.arg("run")
                .arg(&relaunch.manifest)
                .arg("--index")
                .arg(run.index.to_string())
                .arg("--out")
                .arg(out)
                .arg("--resume")
                .env("RAYON_NUM_THREADS", threads.to_string());
            c
        };
        run_local(&todo, jobs, command, |o| {
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
                    o.run.dir.join(files::FAILED).display()
                ));
            }
            println!("{line}");
        });
    }
    let runs = sweep_status(&out.join(&manifest.name), &manifest.runs);
    let table = conclude(manifest, out, &runs)?;
    println!("\n{}", table.to_text());
    let counts = Counts::of(&runs);
    println!("{counts}");
    if counts.failed > 0 {
        return Err(Failure::run(format!(
            "{} of {} runs failed",
            counts.failed,
            counts.total()
        )));
    }
    not_done_elsewhere(&counts)
}

/// An error when runs are left that this sweep could not finish: written by other processes,
/// interrupted, or holding another manifest's record.
fn not_done_elsewhere(c: &Counts) -> Result<(), Failure> {
    let mut left = Vec::new();
    if c.running > 0 {
        left.push(format!("{} still written by other processes (a sweep stopped earlier?); run the sweep again once they end", c.running));
    }
    if c.interrupted > 0 {
        left.push(format!(
            "{} interrupted; run the sweep again to continue them",
            c.interrupted
        ));
    }
    if c.conflict > 0 {
        left.push(format!("{} hold a complete run of another manifest; --force with `coherent run --index N` replaces one, or use another --out", c.conflict));
    }
    match left.is_empty() {
        true => Ok(()),
        false => Err(Failure::run(format!(
            "not every run is done: {}",
            left.join("; ")
        ))),
    }
}

fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::fs::canonicalize(path).map_err(|e| Failure::run(format!("{}: {e}", path.display())))
}

/// Writes the Slurm job array of the runs that are not done (and not queued) and submits it
/// (or, with `dry_run`, prints it).
pub fn submit(
    manifest: &Manifest,
    registry: &Registry,
    options: SlurmOptions,
    dry_run: bool,
    relaunch: &Relaunch,
) -> Result<(), Failure> {
    let out = &relaunch.out;
    let runs = sweep_status(&out.join(&manifest.name), &manifest.runs);
    let mut pending: Vec<&RunStatus> = runs.iter().filter(|r| r.state.startable()).collect();
    let name = manifest.name.clone();
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
        println!("nothing to submit: {why} ({})", Counts::of(&runs));
        return Ok(());
    }
    validate(manifest, registry, &pending)?;
    let log_dir = out.join(&manifest.name).join(files::SLURM);
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| Failure::run(format!("{}: {e}", log_dir.display())))?;
    let workdir = std::env::current_dir().map_err(|e| Failure::run(format!(".: {e}")))?;
    let job = ArrayJob {
        name,
        indices: pending.iter().map(|r| r.index).collect(),
        total_runs: runs.len(),
        binary: absolute(&relaunch.binary)?,
        manifest: absolute(&relaunch.manifest)?,
        out: absolute(out)?,
        workdir,
        log_dir: absolute(&log_dir)?,
        options,
    };
    let text = slurm::script(&job).map_err(|e| Failure::Usage(format!("error: {e}")))?;
    let path = job.log_dir.join("sweep.sbatch");
    write_atomic(&path, text.as_bytes()).map_err(Failure::run)?;
    if dry_run {
        println!("{}\n", path.display());
        print!("{text}");
        return Ok(());
    }
    let id = slurm::submit(&path)
        .map_err(|e| Failure::run(format!("{e} (script: {})", path.display())))?;
    println!(
        "submitted job {id}: {} of {} runs ({}); logs in {}/{id}_<index>.out",
        job.indices.len(),
        runs.len(),
        slurm::array_spec(&job.indices),
        job.log_dir.display()
    );
    println!(
        "check with: coherent sweep {} --status --out {}",
        job.manifest.display(),
        job.out.display()
    );
    Ok(())
}
