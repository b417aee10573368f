//! `coherent`: measure gradient coherence and train with suppression strategies, from TOML
//! manifests. See the README for the commands; this file only parses arguments, renders
//! errors and sets exit codes (0 success, 1 a run failed, 2 bad usage or a bad manifest).

use clap::{Parser, Subcommand};
use coherent_core::{PluginKind, Registry};
use coherent_runner::record::RunDir;
use coherent_runner::{logging, plan, report, train, Manifest, PlanError};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod sweep;

#[derive(Parser)]
#[command(
    name = "coherent",
    version,
    about = "Coherent Gradients research framework"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    Sweep(sweep::SweepArgs),
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
        /// Which networks: the MLP, the CNN, or both.
        #[arg(long, value_enum, default_value = "all")]
        network: BenchChoice,
    },
}

/// The networks `coherent bench` measures.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum BenchChoice {
    /// MLP 784-256-10.
    Mlp,
    /// The CNN conv16-pool-conv32-pool-fc10.
    Cnn,
    /// The aggregators (suppression strategies) on FC 784-256-256-256-10.
    Aggregators,
    /// All of them.
    All,
}

/// A failure with its exit code.
struct Failure(u8, String);

fn registry() -> Result<&'static Registry, Failure> {
    coherent_plugins::registry().map_err(|e| Failure(1, format!("error: {e}")))
}

fn load(path: &Path) -> Result<Manifest, Failure> {
    Manifest::load(path).map_err(|d| Failure(2, d.to_string()))
}

fn plan_error(e: PlanError) -> Failure {
    match e {
        PlanError::Manifest(d) => Failure(2, d.to_string()),
        PlanError::Data(e) => Failure(1, format!("error: {e}")),
    }
}

/// Records a failed run (exit code 1: bad data, a training error) as the outcome of the attempt
/// at the run in `dir` (its `FAILED` marker, unless the run is already complete) and passes it
/// on. A bad manifest (exit code 2) writes nothing.
fn failed(dir: &Path, failure: Failure) -> Failure {
    if failure.0 == 1 && !RunDir::is_done(dir) {
        if let Err(e) = coherent_runner::record::mark_failed(dir, &failure.1) {
            log::warn!("cannot record the failure: {e}");
        }
    }
    failure
}

/// The message of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    format!("error: the run panicked: {}", text.unwrap_or_default())
}

fn check(manifests: &[PathBuf]) -> Result<(), Failure> {
    let registry = registry()?;
    let mut worst: Option<Failure> = None;
    for path in manifests {
        let result = load(path).and_then(|m| {
            for spec in &m.runs {
                plan(&m, spec, registry).map_err(plan_error)?;
            }
            Ok(m.runs.len())
        });
        match result {
            Ok(n) => println!(
                "ok: {} ({n} run{})",
                path.display(),
                if n == 1 { "" } else { "s" }
            ),
            Err(f) => {
                eprintln!("{}", f.1);
                if worst.as_ref().is_none_or(|w| f.0 > w.0) {
                    worst = Some(Failure(f.0, format!("{} is not valid", path.display())));
                }
            }
        }
    }
    worst.map_or(Ok(()), Err)
}

fn run(
    manifest: &Path,
    out: &Path,
    index: Option<usize>,
    force: bool,
    resume: bool,
) -> Result<(), Failure> {
    let registry = registry()?;
    let m = load(manifest)?;
    let specs: Vec<_> = match index {
        None => m.runs.iter().collect(),
        Some(i) => match m.runs.get(i) {
            Some(s) => vec![s],
            None => {
                return Err(Failure(
                    2,
                    format!(
                        "error: --index {i} is out of range: {} has {} runs",
                        manifest.display(),
                        m.runs.len()
                    ),
                ))
            }
        },
    };
    let experiment_dir = out.join(&m.name);
    // Validate every run before training any.
    for spec in &specs {
        plan(&m, spec, registry)
            .map_err(|e| failed(&experiment_dir.join(spec.dir_name()), plan_error(e)))?;
    }
    let mut summaries = Vec::new();
    let mut plots = false;
    for (k, spec) in specs.iter().enumerate() {
        let dir = experiment_dir.join(spec.dir_name());
        if RunDir::is_done(&dir) && !force {
            log::info!(
                "{}: already complete, skipped (use --force to run it again)",
                dir.display()
            );
            if let Ok(s) = coherent_runner::record::read_summary(&dir) {
                summaries.push(s);
            }
            continue;
        }
        let p = plan(&m, spec, registry).map_err(|e| failed(&dir, plan_error(e)))?;
        plots |= p.evaluation.plots;
        let parts: Vec<PathBuf> = match p.easy_hard {
            Some(_) => ["probe", "easy", "hard"]
                .iter()
                .map(|s| dir.join(s))
                .collect(),
            None => vec![dir.clone()],
        };
        let run_plots = p.evaluation.plots;
        let bar = ProgressBar::new(0).with_prefix(format!("run {}/{}", k + 1, specs.len()));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} steps {elapsed_precise} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        logging::set_progress_bar(Some(bar.clone()));
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match p.easy_hard {
                Some(_) => {
                    // `--force` reruns every part; `--resume` skips the parts already done.
                    let resume = resume && !force;
                    coherent_runner::easy_hard::run(&m, spec, registry, p, &dir, &bar, resume)
                }
                None => train(p, &m.name, &dir, &bar, resume),
            }
            .map_err(|e| format!("error: {e}"))
        }));
        let summary = attempt
            .unwrap_or_else(|payload| Err(panic_message(payload.as_ref())))
            .map_err(|message| failed(&dir, Failure(1, message)));
        logging::set_progress_bar(None);
        bar.finish_and_clear();
        summaries.push(summary?);
        println!("{}", dir.display());
        if run_plots {
            write_report(&parts, &dir.join("report"));
        }
    }
    let table = report::comparison_table(&summaries);
    println!("\n{table}");
    if index.is_none() {
        let path = experiment_dir.join("comparison.txt");
        coherent_runner::record::write_atomic(&path, table.as_bytes())
            .map_err(|e| Failure(1, format!("error: {e}")))?;
        if plots && specs.len() > 1 {
            let runs: Vec<PathBuf> = specs
                .iter()
                .map(|s| experiment_dir.join(s.dir_name()))
                .map(|d| {
                    if d.join("probe").is_dir() {
                        d.join("probe")
                    } else {
                        d
                    }
                })
                .collect();
            write_report(&runs, &experiment_dir.join("report"));
        }
    }
    Ok(())
}

/// Draws the report of `runs` into `out` at the end of a run; a failure to draw is a warning,
/// not a failed run.
fn write_report(runs: &[PathBuf], out: &Path) {
    let options = coherent_report::ReportOptions::default();
    match coherent_report::render(runs, out, &options) {
        Ok(files) => log::info!("report: {}", files.html.display()),
        Err(e) => log::warn!("the report of {} could not be drawn: {e}", out.display()),
    }
}

fn report(dirs: &[PathBuf], out: Option<&Path>, log_scale: bool) -> Result<(), Failure> {
    let fail = |e: coherent_report::ReportError| Failure(1, format!("error: {e}"));
    let runs = coherent_report::expand_dirs(dirs).map_err(fail)?;
    let out = match (out, dirs) {
        (Some(out), _) => out.to_path_buf(),
        (None, [dir]) => dir.join("report"),
        (None, _) => PathBuf::from("report"),
    };
    let options = coherent_report::ReportOptions { log_scale };
    let files = coherent_report::render(&runs, &out, &options).map_err(fail)?;
    for svg in &files.svgs {
        println!("{}", svg.display());
    }
    println!("{}", files.markdown.display());
    println!("{}", files.html.display());
    Ok(())
}

fn plugins() -> Result<(), Failure> {
    let registry = registry()?;
    for kind in PluginKind::ALL {
        println!("{}:", kind.plural());
        for (name, description, params) in registry.list(kind) {
            println!("  {name}  {description}");
            for p in params {
                println!(
                    "      {:<14} {:<28} default {:<16} {}",
                    p.name, p.ty, p.default, p.doc
                );
            }
        }
        println!();
    }
    Ok(())
}

fn bench(
    json: bool,
    reps: usize,
    min_ms: u64,
    batch: usize,
    network: BenchChoice,
) -> Result<(), Failure> {
    if reps == 0 || batch == 0 {
        return Err(Failure(
            2,
            "error: --reps and --batch must be at least 1".into(),
        ));
    }
    let (networks, aggregators) = match network {
        BenchChoice::Mlp => (vec![coherent_bench::BenchNetwork::mlp(&[256])], false),
        BenchChoice::Cnn => (vec![coherent_bench::BenchNetwork::cnn()], false),
        BenchChoice::Aggregators => (vec![], true),
        BenchChoice::All => (
            vec![
                coherent_bench::BenchNetwork::mlp(&[256]),
                coherent_bench::BenchNetwork::cnn(),
            ],
            true,
        ),
    };
    let config = coherent_bench::BenchConfig {
        networks,
        aggregators,
        reps,
        batch,
        min_time: std::time::Duration::from_millis(min_ms),
        ..Default::default()
    };
    let report = coherent_bench::run(&config);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        print!("{}", coherent_bench::render(&report));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let result = match &cli.command {
        Command::Run {
            manifest,
            out,
            index,
            force,
            resume,
        } => run(manifest, out, *index, *force, *resume),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Check { manifests } => check(manifests),
        Command::Report {
            dirs,
            out,
            log_scale,
        } => report(dirs, out.as_deref(), *log_scale),
        Command::Plugins => plugins(),
        Command::Bench {
            json,
            reps,
            min_ms,
            batch,
            network,
        } => bench(*json, *reps, *min_ms, *batch, *network),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}
