//! The commands but `sweep`: run, check, report, plugins, bench.

use crate::args::BenchChoice;
use coherent_core::{Listing, ParamDoc, PluginKind, Registry};
use coherent_runner::{Failure, Manifest, Planner, RunRequest};
use std::path::{Path, PathBuf};

pub(crate) fn registry() -> Result<&'static Registry, Failure> {
    coherent_plugins::registry().map_err(Failure::run)
}

pub(crate) fn load(path: &Path) -> Result<Manifest, Failure> {
    Manifest::load(path).map_err(|d| Failure::Usage(d.to_string()))
}

/// Checks every run of every manifest: a bad run does not stop the check of the others, and
/// each problem is printed once.
pub(crate) fn check(manifests: &[PathBuf]) -> Result<(), Failure> {
    let registry = registry()?;
    let mut worst: Option<Failure> = None;
    for path in manifests {
        let failures = match load(path) {
            Ok(m) => {
                let failures = check_runs(&m, registry);
                if failures.is_empty() {
                    let n = m.runs.len();
                    let s = if n == 1 { "" } else { "s" };
                    println!("ok: {} ({n} run{s})", path.display());
                }
                failures
            }
            Err(f) => vec![f],
        };
        let mut printed = std::collections::HashSet::new();
        for f in failures {
            if printed.insert(f.to_string()) {
                eprintln!("{f}");
            }
            let invalid = format!("{} is not valid", path.display());
            let f = match f {
                Failure::Usage(_) => Failure::Usage(invalid),
                _ => Failure::Run(invalid),
            };
            if worst.as_ref().is_none_or(|w| f.code() > w.code()) {
                worst = Some(f);
            }
        }
    }
    worst.map_or(Ok(()), Err)
}

/// The failures of the runs of `m`, each planned (and not run).
fn check_runs(m: &Manifest, registry: &Registry) -> Vec<Failure> {
    let mut planner = Planner::new(m, registry).checking();
    m.runs
        .iter()
        .filter_map(|spec| planner.plan(spec).err().map(Failure::from))
        .collect()
}

pub(crate) fn run(manifest: &Path, request: &RunRequest) -> Result<(), Failure> {
    let registry = registry()?;
    // SIGTERM and SIGINT stop the run at the next step with a checkpoint.
    if let Err(e) = coherent_runner::interrupt::install() {
        log::warn!("signals cannot be caught ({e}); a signal ends a run without a checkpoint");
    }
    let m = load(manifest)?;
    let table = coherent_runner::run_experiment(&m, registry, request)?;
    println!("\n{}", table.to_text());
    Ok(())
}

pub(crate) fn report(dirs: &[PathBuf], out: Option<&Path>, log_scale: bool) -> Result<(), Failure> {
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

pub(crate) fn plugins() -> Result<(), Failure> {
    let registry = registry()?;
    let mut kinds: Vec<(&str, Vec<Listing>)> = PluginKind::ALL
        .iter()
        .map(|k| (k.plural(), registry.list(*k)))
        .collect();
    kinds.push(("protocols", coherent_runner::protocol::listing()));
    kinds.push(("runner sections", coherent_runner::settings::listing()));
    for (kind, listing) in kinds {
        println!("{kind}:");
        for plugin in listing {
            let krate = plugin.krate;
            println!(
                "  {}  {}  [{} {}]",
                plugin.name, plugin.description, krate.name, krate.version
            );
            let width = |f: fn(&ParamDoc) -> usize| plugin.params.iter().map(f).max().unwrap_or(0);
            let (name, ty) = (width(|p| p.name.len()), width(|p| p.ty.len()));
            let default = width(|p| p.default.len());
            for p in &plugin.params {
                println!(
                    "      {:<name$}  {:<ty$}  default {:<default$}  {}",
                    p.name, p.ty, p.default, p.doc
                );
            }
        }
        println!();
    }
    Ok(())
}

/// The network of `choice`, where it names one.
fn one_network(choice: BenchChoice) -> Option<coherent_bench::BenchNetwork> {
    match choice {
        BenchChoice::Mlp => Some(coherent_bench::BenchNetwork::mlp(&[256])),
        BenchChoice::Cnn => Some(coherent_bench::BenchNetwork::cnn()),
        BenchChoice::Resnet => Some(coherent_bench::BenchNetwork::resnet(20)),
        BenchChoice::Vgg => Some(coherent_bench::BenchNetwork::vgg()),
        BenchChoice::Aggregators | BenchChoice::Metrics | BenchChoice::All => None,
    }
}

/// `coherent bench --serve`: one network's plain step on the requests of standard input.
pub(crate) fn serve_bench_steps(batch: usize, network: BenchChoice) -> Result<(), Failure> {
    let Some(network) = one_network(network) else {
        return Err(Failure::Usage(format!(
            "error: --serve takes one network (--network mlp, cnn, resnet or vgg), not {}",
            format!("{network:?}").to_lowercase()
        )));
    };
    if batch == 0 {
        return Err(Failure::Usage("error: --batch must be at least 1".into()));
    }
    let (input, output) = (std::io::stdin().lock(), std::io::stdout().lock());
    coherent_bench::serve_plain_steps(&network, batch, input, output)
        .map_err(|e| Failure::Run(format!("error: coherent bench --serve: {e}")))
}

pub(crate) fn bench(
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
        BenchChoice::Mlp | BenchChoice::Cnn | BenchChoice::Resnet | BenchChoice::Vgg => {
            (one_network(network).into_iter().collect(), false, false)
        }
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
