//! `coherent new plugin KIND NAME`: a new plugin from a template — a small, working plugin of
//! the kind with a test against a brute-force reference, for a researcher to edit.
//!
//! Two places for it:
//! * in this repository ([`repo`]): a plugin crate `plugins/<kind>s/<name>/` and the edits that
//!   link it into the `coherent` program (workspace members and dependencies, the bundle crate
//!   `coherent-plugins`, the registry test);
//! * with `--out DIR` ([`project`]): a module of a crate of plugins of one's own outside the
//!   repository, with its own command line (`coherent_cli::App`) and a manifest that uses it.
//!
//! The templates are `templates/plugins/*.rs.txt` of this crate ([`templates`]).

mod project;
mod repo;
mod templates;

use crate::Failure;
use clap::{Args, Subcommand, ValueEnum};
use coherent_core::{PluginKind, Registry};
use std::path::{Path, PathBuf};

/// The arguments of `coherent new`.
#[derive(Args, Debug)]
pub struct NewArgs {
    /// What to create.
    #[command(subcommand)]
    pub what: NewCommand,
}

/// What `coherent new` creates.
#[derive(Subcommand, Debug)]
pub enum NewCommand {
    /// A plugin from a template: in this repository (run from its root), or with --out in a
    /// crate of plugins of your own.
    Plugin {
        /// The kind of plugin.
        #[arg(value_enum)]
        kind: Kind,
        /// Its name in manifests (`plugin = "NAME"`), in snake_case: `[a-z][a-z0-9_]*`.
        name: String,
        /// A directory for a crate of plugins of your own: created with a command line of its
        /// own if it does not exist, else a crate made by this command, which gets the plugin.
        #[arg(long)]
        out: Option<PathBuf>,
        /// coherent's source tree, which a new crate of plugins depends on (default: the tree
        /// this program was built from).
        #[arg(long, requires = "out")]
        framework: Option<PathBuf>,
    },
}

/// The kinds of plugin a template exists for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A network (`[model]`).
    Network,
    /// A dataset (`[dataset]`).
    Dataset,
    /// A metric (`[[metrics]]`).
    Metric,
    /// A gradient aggregator (`[aggregator]`).
    Aggregator,
    /// An observer (`[[observers]]`).
    Observer,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::Network,
        Kind::Dataset,
        Kind::Metric,
        Kind::Aggregator,
        Kind::Observer,
    ];

    /// The kind as the command line writes it (`network`).
    pub fn word(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Dataset => "dataset",
            Kind::Metric => "metric",
            Kind::Aggregator => "aggregator",
            Kind::Observer => "observer",
        }
    }

    /// The kind with a capital (`Network`).
    fn title(self) -> &'static str {
        match self {
            Kind::Network => "Network",
            Kind::Dataset => "Dataset",
            Kind::Metric => "Metric",
            Kind::Aggregator => "Aggregator",
            Kind::Observer => "Observer",
        }
    }

    /// The registry's kind.
    pub fn plugin_kind(self) -> PluginKind {
        match self {
            Kind::Network => PluginKind::Network,
            Kind::Dataset => PluginKind::Dataset,
            Kind::Metric => PluginKind::Metric,
            Kind::Aggregator => PluginKind::Aggregator,
            Kind::Observer => PluginKind::Observer,
        }
    }

    /// What the template's plugin does, for its crate's description.
    fn description(self) -> &'static str {
        match self {
            Kind::Network => "a residual MLP (from `coherent new plugin`).",
            Kind::Dataset => "Gaussian blobs drawn from a seed (from `coherent new plugin`).",
            Kind::Metric => "mean squared per-example gradient norm (from `coherent new plugin`).",
            Kind::Aggregator => {
                "inverse-norm weighted mean of the per-example gradients (from `coherent new plugin`)."
            }
            Kind::Observer => "forgetting events (from `coherent new plugin`).",
        }
    }
}

/// The names of a new plugin, derived from its manifest name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The manifest name, snake_case (`grad_norm`).
    pub name: String,
    /// CamelCase, the prefix of the plugin's types (`GradNorm`).
    pub camel: String,
    /// With dashes, for folders and packages (`grad-norm`).
    pub dashed: String,
}

impl Names {
    /// The names of the plugin `name` (assumed valid, see [`check_name`]).
    pub fn new(name: &str) -> Names {
        let camel = name
            .split('_')
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or(String::new(), |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        Names {
            name: name.to_string(),
            camel,
            dashed: name.replace('_', "-"),
        }
    }

    /// The package of its crate in the repository (`coherent-grad-norm`).
    pub fn package(&self) -> String {
        format!("coherent-{}", self.dashed)
    }

    /// The Rust name of that crate (`coherent_grad_norm`).
    pub fn crate_ident(&self) -> String {
        format!("coherent_{}", self.name)
    }
}

/// Rust's keywords (strict, reserved and weak): not a module's name.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "union", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Names a plugin module cannot take next to the crates its code uses.
const RESERVED: &[&str] = &[
    "alloc",
    "coherent_cli",
    "coherent_core",
    "coherent_nn",
    "core",
    "proc_macro",
    "serde",
    "std",
    "test",
];

/// Checks that `name` can be a new plugin of `kind`: snake_case (`[a-z][a-z0-9_]*`, words
/// separated by single underscores), not a Rust keyword, no type of the template would clash
/// with one it uses, and no plugin of the kind is registered under it in `registry`.
pub fn check_name(name: &str, kind: Kind, registry: &Registry) -> Result<(), String> {
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.word()).collect();
    let usage = format!(
        "usage: coherent new plugin KIND NAME [--out DIR]  (KIND: {})",
        kinds.join(", ")
    );
    let snake = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !snake || name.ends_with('_') || name.contains("__") {
        return Err(format!(
            "error: `{name}` is not a plugin name: names are snake_case, [a-z][a-z0-9_]* with words separated by single underscores (e.g. `grad_norm`)\n{usage}"
        ));
    }
    if KEYWORDS.contains(&name) || RESERVED.contains(&name) {
        return Err(format!(
            "error: `{name}` cannot be a plugin name: it is a Rust keyword or the name of a crate the plugin uses; choose another\n{usage}"
        ));
    }
    let names = Names::new(name);
    let used = templates::used_type_names(kind);
    for ty in [names.camel.clone(), format!("{}Config", names.camel)] {
        if used.contains(&ty) {
            return Err(format!(
                "error: the plugin `{name}` would define the type `{ty}`, which the {} template also uses; choose another name",
                kind.word()
            ));
        }
    }
    let listing = registry.list(kind.plugin_kind());
    if let Some(existing) = listing.iter().find(|l| l.name == name) {
        return Err(format!(
            "error: a {} plugin named `{name}` is already registered (by the crate {}); choose another name",
            kind.word(),
            existing.krate.name
        ));
    }
    Ok(())
}

/// One file the command writes or edits, relative to where it reports from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileChange {
    /// The file.
    pub path: PathBuf,
    /// Its new contents.
    pub contents: String,
    /// Whether it exists already (an edit) or is new.
    pub edit: bool,
}

/// Writes the files (creating their directories), after checking that every new file is new.
fn write_all(base: &Path, changes: &[FileChange]) -> Result<(), Failure> {
    for change in changes.iter().filter(|c| !c.edit) {
        let path = base.join(&change.path);
        if path.exists() {
            return Err(Failure::Usage(format!(
                "error: {} exists already; nothing was written",
                path.display()
            )));
        }
    }
    for change in changes {
        let path = base.join(&change.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Failure::run(format!(
                    "cannot create the directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        std::fs::write(&path, &change.contents)
            .map_err(|e| Failure::run(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// `coherent new ...`.
pub(crate) fn new(args: &NewArgs, registry: &Registry) -> Result<(), Failure> {
    let NewCommand::Plugin {
        kind,
        name,
        out,
        framework,
    } = &args.what;
    check_name(name, *kind, registry).map_err(Failure::Usage)?;
    let names = Names::new(name);
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::run(format!("cannot read the working directory: {e}")))?;
    match out {
        None => repo::new_plugin(&cwd, *kind, &names),
        Some(out) => project::new_plugin(out, framework.as_deref(), *kind, &names),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> &'static Registry {
        coherent_plugins::registry().unwrap()
    }

    #[test]
    fn names_are_derived() {
        let n = Names::new("grad_norm2_x");
        assert_eq!(n.camel, "GradNorm2X");
        assert_eq!(n.dashed, "grad-norm2-x");
        assert_eq!(n.package(), "coherent-grad-norm2-x");
        assert_eq!(n.crate_ident(), "coherent_grad_norm2_x");
        assert_eq!(Names::new("blobs").camel, "Blobs");
    }

    #[test]
    fn valid_names_pass() {
        for name in ["blobs", "grad_norm", "m3", "a_b_c", "x2y"] {
            for kind in Kind::ALL {
                assert_eq!(
                    check_name(name, kind, registry()),
                    Ok(()),
                    "{name} {kind:?}"
                );
            }
        }
        // a name taken by another kind is free for this one
        assert!(check_name("mlp", Kind::Metric, registry()).is_ok());
    }

    #[test]
    fn invalid_names_are_refused_with_the_reason() {
        let refused = |name: &str, kind: Kind, reason: &str| {
            let e = check_name(name, kind, registry()).unwrap_err();
            assert!(e.contains(reason), "{name}: {e}");
            assert!(e.starts_with("error: "), "{e}");
        };
        for name in [
            "",
            "Blobs",
            "grad-norm",
            "2net",
            "_x",
            "x_",
            "a__b",
            "gräd",
            "a b",
            "x.y",
        ] {
            refused(name, Kind::Metric, "is not a plugin name");
        }
        for (name, kind, reason) in [
            (
                "mlp",
                Kind::Network,
                "already registered (by the crate coherent-mlp)",
            ),
            ("coherence", Kind::Metric, "already registered"),
            ("type", Kind::Observer, "Rust keyword"),
            (
                "serde",
                Kind::Observer,
                "Rust keyword or the name of a crate",
            ),
            ("split", Kind::Dataset, "the type `Split`"),
            ("data_options", Kind::Dataset, "the type `DataOptions`"),
            ("sums_metric", Kind::Metric, "the type `SumsMetric`"),
            ("result", Kind::Aggregator, "the type `Result`"),
        ] {
            refused(name, kind, reason);
        }
        // the usage line lists the kinds
        let e = check_name("Bad", Kind::Metric, registry()).unwrap_err();
        assert!(
            e.contains("KIND: network, dataset, metric, aggregator, observer"),
            "{e}"
        );
    }
}
