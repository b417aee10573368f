//! The `coherent` command line as a library.
//!
//! Every command — `run`, `check`, `sweep` (locally or on Slurm), `report`, `plugins`, `bench`,
//! `new` — is [`App`]: a researcher's own program is a few lines over it, with their plugin
//! crates linked in:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     coherent_cli::App::new("my-coherent")
//!         .with(&coherent_plugins::PLUGINS) // or the `PLUGINS` of the researcher's crate
//!         .main()
//! }
//! ```
//!
//! `App::new` links every bundled plugin; [`App::with`] takes the `PLUGINS` static a plugin
//! crate declares with `coherent_core::plugin_crate!()`, so the crate is referenced — and thus
//! linked, its plugins registered — and the program checks at start that each crate it was given
//! registered plugins (a crate whose registrations did not make it into the program is an error,
//! not a silent `unknown plugin` later). Runs record the program's name, the plugin crates it
//! links and which crate provided each plugin a run used. `sweep --jobs` and Slurm job arrays
//! relaunch this same program for every run.

mod args;
mod commands;
mod scaffold;
mod sweep;

pub use args::{BenchChoice, Cli, Command};
pub use coherent_runner::Failure;
pub use scaffold::{check_name, Kind, Names, NewArgs, NewCommand};

use clap::{CommandFactory, FromArgMatches};
use coherent_core::{PluginCrate, PluginKind, Registry};
use coherent_runner::{logging, RunRequest};
use std::process::ExitCode;

/// A `coherent` program: its name and the plugin crates it links.
#[derive(Debug)]
pub struct App {
    program: &'static str,
    crates: Vec<&'static PluginCrate>,
}

impl App {
    /// The program `program` (its name in `--help` and in every run's `run.json`) with every
    /// bundled plugin.
    pub fn new(program: &'static str) -> App {
        App::without_bundled(program).with(&coherent_plugins::PLUGINS)
    }

    /// The program `program` with only the plugin crates given to [`App::with`].
    pub fn without_bundled(program: &'static str) -> App {
        App {
            program,
            crates: Vec::new(),
        }
    }

    /// The same program with the plugins of `plugins` (a plugin crate's `PLUGINS`).
    pub fn with(mut self, plugins: &'static PluginCrate) -> App {
        self.crates.push(plugins);
        self
    }

    /// Runs the command line of the process and returns its exit code: 0 success, 1 a run
    /// failed, 2 bad usage or a bad manifest.
    pub fn main(self) -> ExitCode {
        logging::init();
        match self.run(std::env::args_os()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(failure) => {
                eprintln!("{failure}");
                ExitCode::from(failure.code())
            }
        }
    }

    /// Runs the command line `args` (the program's name first, as in `std::env::args`).
    pub fn run<I, T>(&self, args: I) -> Result<(), Failure>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Cli::command()
            .name(self.program)
            .try_get_matches_from(args)
            .map_err(|e| match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    Failure::Usage(String::new())
                }
                _ => Failure::Usage(e.render().to_string().trim_end().to_string()),
            });
        let matches = match matches {
            Err(Failure::Usage(text)) if text.is_empty() => return Ok(()),
            other => other?,
        };
        let cli = Cli::from_arg_matches(&matches).map_err(|e| Failure::Usage(e.to_string()))?;
        coherent_runner::provenance::set_program(self.program);
        self.check_linked()?;
        dispatch(&cli.command)
    }

    /// Every plugin crate given to the program registered plugins: a crate whose registrations
    /// did not make it into the program is an error here, not an `unknown plugin` later.
    fn check_linked(&self) -> Result<(), Failure> {
        let registry = commands::registry()?;
        let registered = registered_crates(registry);
        for krate in self.crates.iter().flat_map(|c| c.all()) {
            let leaf = krate.includes.is_empty();
            if leaf && !registered.contains(&krate.id) {
                return Err(Failure::run(format!(
                    "the plugin crate `{}` {} was linked but registered no plugins: register them with `coherent_core::register!` in the crate that declares `coherent_core::plugin_crate!()`",
                    krate.id.name, krate.id.version
                )));
            }
        }
        Ok(())
    }
}

/// The crates that registered at least one plugin.
fn registered_crates(registry: &Registry) -> Vec<coherent_core::CrateId> {
    let protocols = coherent_runner::ProtocolEntry::all();
    PluginKind::ALL
        .iter()
        .flat_map(|k| registry.list(*k))
        .map(|l| l.krate)
        .chain(protocols.iter().map(|e| e.krate))
        .collect()
}

/// Runs one command.
fn dispatch(command: &Command) -> Result<(), Failure> {
    match command {
        Command::Run {
            manifest,
            out,
            index,
            force,
            resume,
        } => commands::run(
            manifest,
            &RunRequest {
                out: out.clone(),
                index: *index,
                force: *force,
                resume: *resume,
            },
        ),
        Command::Sweep(args) => sweep::sweep(args),
        Command::Check { manifests } => commands::check(manifests),
        Command::Report {
            dirs,
            out,
            log_scale,
        } => commands::report(dirs, out.as_deref(), *log_scale),
        Command::Plugins => commands::plugins(),
        Command::New(args) => scaffold::new(args, commands::registry()?),
        Command::Bench {
            json,
            reps,
            min_ms,
            batch,
            network,
            serve: false,
        } => commands::bench(*json, *reps, *min_ms, *batch, *network),
        Command::Bench {
            batch,
            network,
            serve: true,
            ..
        } => commands::serve_bench_steps(*batch, *network),
    }
}
