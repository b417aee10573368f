//! `coherent`: measure gradient coherence and train with suppression strategies, from TOML
//! manifests. See the README for the commands; this file only parses arguments, renders
//! errors and sets exit codes (0 success, 1 a run failed, 2 bad usage or a bad manifest).

use clap::{Parser, Subcommand};
use coherent_core::{Listing, PluginKind, Registry};
use coherent_runner::{logging, Failure, Manifest, Planner, RunRequest};
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
    /// Several metrics on one sample against one metric (MLP 784-256-10).
    Metrics,
    /// All of them.
    All,
}

fn registry() -> Result<&'static Registry, Failure> {
    coherent_plugins::registry().map_err(Failure::run)
}

fn load(path: &Path) -> Result<Manifest, Failure> {
    Manifest::load(path).map_err(|d| Failure::Usage(d.to_string()))
}

fn check(manifests: &[PathBuf]) -> Result<(), Failure> {
    let registry = registry()?;
    let mut worst: Option<Failure> = None;
    for path in manifests {
        let result = load(path).and_then(|m| {
            let mut planner = Planner::new(&m, registry);
            for spec in &m.runs {
                planner.plan(spec)?;
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
                eprintln!("{f}");
                let invalid = format!("{} is not valid", path.display());
                let f = match f {
                    Failure::Usage(_) => Failure::Usage(invalid),
                    Failure::Run(_) => Failure::Run(invalid),
                };
                if worst.as_ref().is_none_or(|w| f.code() > w.code()) {
                    worst = Some(f);
                }
            }
        }
    }
    worst.map_or(Ok(()), Err)
}

fn run(manifest: &Path, request: &RunRequest) -> Result<(), Failure> {
    let registry = registry()?;
    let m = load(manifest)?;
    let table = coherent_runner::run_experiment(&m, registry, request)?;
    println!("\n{}", table.to_text());
    Ok(())
}

fn report(dirs: &[PathBuf], out: Option<&Path>, log_scale: bool) -> Result<(), Failure> {
    let runs = coherent_report::expand_dirs(dirs).map_err(Failure::run)?;
    let out = match (out, dirs) {
        (Some(out), _) => out.to_path_buf(),
        (None, [dir]) => dir.join("report"),
        (None, _) => PathBuf::from("report"),
    };
    let options = coherent_report::ReportOptions { log_scale };
    let files = coherent_report::render(&runs, &out, &options).map_err(Failure::run)?;
    for svg in &files.svgs {
        println!("{}", svg.display());
    }
    println!("{}", files.markdown.display());
    println!("{}", files.html.display());
    Ok(())
}

fn plugins() -> Result<(), Failure> {
    let registry = registry()?;
    let mut kinds: Vec<(&str, Vec<Listing>)> = PluginKind::ALL
        .iter()
        .map(|k| (k.plural(), registry.list(*k)))
        .collect();
    kinds.push(("protocols", coherent_runner::protocol::listing()));
    for (kind, listing) in kinds {
        println!("{kind}:");
        for plugin in listing {
            println!("  {}  {}", plugin.name, plugin.description);
            for p in plugin.params {
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
        return Err(Failure::Usage(
            "error: --reps and --batch must be at least 1".into(),
        ));
    }
    let (networks, aggregators, metrics) = match network {
        BenchChoice::Mlp => (
            vec![coherent_bench::BenchNetwork::mlp(&[256])],
            false,
            false,
        ),
        BenchChoice::Cnn => (vec![coherent_bench::BenchNetwork::cnn()], false, false),
        BenchChoice::Aggregators => (vec![], true, false),
        BenchChoice::Metrics => (vec![], false, true),
        BenchChoice::All => (
            vec![
                coherent_bench::BenchNetwork::mlp(&[256]),
                coherent_bench::BenchNetwork::cnn(),
            ],
            true,
            true,
        ),
    };
    let config = coherent_bench::BenchConfig {
        networks,
        aggregators,
        metrics,
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
        } => run(
            manifest,
            &RunRequest {
                out: out.clone(),
                index: *index,
                force: *force,
                resume: *resume,
            },
        ),
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
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.code())
        }
    }
}
