//! The plugin registry: static entries submitted with `inventory`, collected into sorted maps.
//!
//! Each plugin crate submits one entry (`inventory::submit!`) whose `name` is the value of
//! `plugin = "..."` in a manifest. Entries are plain static data: a name, a one-line
//! description, parameter docs and a `fn` that builds the object from its manifest table.
//!
//! Linking pitfall: a plugin crate that nothing references is not linked and its entries
//! silently vanish. The `coherent-plugins` crate references every plugin; binaries and tests
//! reference it, and a test asserts the exact set of registered names.

use crate::{
    CoherenceMetric, ConfigError, CrateId, DataError, Dataset, GradientAggregator, Model,
    ModelSpec, ParamDoc, PluginArgs, RunObserver,
};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Error from building a dataset: bad parameters or bad files.
#[derive(Debug, thiserror::Error)]
pub enum DatasetBuildError {
    /// A parameter is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A data file is missing or malformed.
    #[error(transparent)]
    Data(#[from] DataError),
}

macro_rules! entry {
    (
        $(#[$doc:meta])* $entry:ident, $built:ty, $err:ty, ($($arg:ty),*)
        $(, $(#[$fdoc:meta])* $field:ident: $fty:ty)*
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $entry {
            /// Registry name: the manifest's `plugin` value, in snake_case.
            pub name: &'static str,
            /// One-line description.
            pub description: &'static str,
            /// The docs of the parameters the plugin accepts (from its config type:
            /// `MyConfig::params`, see [`crate::PluginConfig`]).
            pub params: fn() -> Vec<ParamDoc>,
            /// Builds the plugin from its manifest table.
            pub build: fn(&PluginArgs $(, $arg)*) -> Result<$built, $err>,
            $($(#[$fdoc])* pub $field: $fty,)*
            /// The crate that provides it (set by [`crate::register!`]).
            pub krate: CrateId,
        }
        inventory::collect!($entry);
        impl std::fmt::Debug for $entry {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($entry)).field("name", &self.name).finish()
            }
        }
        impl Listed for $entry {
            fn listing(&self) -> Listing {
                Listing {
                    name: self.name,
                    description: self.description,
                    params: (self.params)(),
                    krate: self.krate,
                }
            }
        }
    };
}

entry!(
    /// A network plugin (`[model]` section).
    NetworkEntry, Box<dyn Model>, ConfigError, (&ModelSpec)
);
entry!(
    /// A dataset plugin (`[dataset]` section).
    DatasetEntry, Box<dyn Dataset>, DatasetBuildError, ()
);
entry!(
    /// A metric plugin (`[[metrics]]` entries).
    MetricEntry, Box<dyn CoherenceMetric>, ConfigError, (),
    /// What the metric needs of its fixed sample, and the runner's defaults for it.
    sampling: Sampling,
    /// The quantities shown in the log line and the comparison table (peak and final value),
    /// e.g. `&["coherence"]`; most metrics show none.
    headline: &'static [&'static str]
);
entry!(
    /// A gradient aggregator plugin (`[aggregator]` section).
    AggregatorEntry, Box<dyn GradientAggregator>, ConfigError, ()
);
entry!(
    /// An observer plugin (`[[observers]]` entries): a research protocol watching the run.
    ObserverEntry, Box<dyn RunObserver>, ConfigError, (),
    /// Whether every run has it (with its defaults) unless the manifest switches it off with
    /// `enabled = false`.
    default_on: bool
);

/// What a metric needs of its fixed sample (declared in its [`MetricEntry`]); the runner reads
/// `sample` and `chunk` from the manifest with these as defaults and checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sampling {
    /// Default size `m` of the sample.
    pub sample: usize,
    /// The smallest `m` the metric is defined for (2 for pairwise quantities).
    pub min_sample: usize,
    /// Default examples per backward pass; `None`: the whole sample in one pass, always
    /// (metrics of pairwise inner products across the sample, which read the `m x m` Gram
    /// matrix).
    pub chunk: Option<usize>,
}

impl Sampling {
    /// How often a metric is measured unless its table says `every_steps`.
    pub const EVERY_STEPS: usize = 50;

    /// The docs of the keys the runner reads from every `[[metrics]]` table, with this
    /// metric's defaults.
    pub fn params(&self) -> Vec<ParamDoc> {
        let doc = |name, ty: &str, default: String, doc: &str| ParamDoc {
            name,
            ty: ty.into(),
            default,
            doc: doc.into(),
        };
        let chunk = match self.chunk {
            Some(c) => doc(
                "chunk",
                "integer",
                c.to_string(),
                "Examples per backward pass (read by the runner).",
            ),
            None => doc(
                "chunk",
                "-",
                "the whole sample".into(),
                "Measured in one pass, the m x m Gram of the whole sample (chunk cannot be set).",
            ),
        };
        vec![
            doc("every_steps", "integer", Sampling::EVERY_STEPS.to_string(), "Measure every N optimisation steps, and at the start and the end (read by the runner)."),
            doc("sample", "integer", self.sample.to_string(), &format!("Size m >= {} of the fixed sample of training examples (read by the runner).", self.min_sample)),
            chunk,
            doc("per_layer", "boolean", "true".into(), "Also report <quantity>/<layer> for every layer (read by the runner)."),
        ]
    }

    /// A metric streamed over 1000 examples in chunks of 500, defined from one example on.
    pub const STREAMED: Sampling = Sampling {
        sample: 1000,
        min_sample: 1,
        chunk: Some(500),
    };
}

/// One plugin as `coherent plugins` lists it.
#[derive(Clone, Debug)]
pub struct Listing {
    /// Registry name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Its parameters.
    pub params: Vec<ParamDoc>,
    /// The crate that provides it.
    pub krate: CrateId,
}

/// Registry entries that can be listed.
trait Listed {
    fn listing(&self) -> Listing;
}

/// Plugins renamed to the one naming case (snake_case): `(old name, new name)`. A manifest
/// may still use an old name; the runner warns and uses the new one.
pub const RENAMED: &[(&str, &str)] = &[
    ("toy-linear", "toy_linear"),
    ("fashion-mnist", "fashion_mnist"),
];

/// The current name of a plugin that was renamed, if `name` is an old one.
pub fn renamed(name: &str) -> Option<&'static str> {
    RENAMED
        .iter()
        .find(|(old, _)| *old == name)
        .map(|(_, new)| *new)
}

/// The kinds of plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PluginKind {
    /// Networks (`[model]`).
    Network,
    /// Datasets (`[dataset]`).
    Dataset,
    /// Metrics (`[[metrics]]`).
    Metric,
    /// Gradient aggregators (`[aggregator]`).
    Aggregator,
    /// Observers (`[[observers]]`).
    Observer,
}

impl PluginKind {
    /// Every kind, in display order.
    pub const ALL: [PluginKind; 5] = [
        PluginKind::Network,
        PluginKind::Dataset,
        PluginKind::Metric,
        PluginKind::Aggregator,
        PluginKind::Observer,
    ];

    /// Plural name used in listings.
    pub fn plural(self) -> &'static str {
        match self {
            PluginKind::Network => "networks",
            PluginKind::Dataset => "datasets",
            PluginKind::Metric => "metrics",
            PluginKind::Aggregator => "aggregators",
            PluginKind::Observer => "observers",
        }
    }
}

/// Two plugins registered the same name.
#[derive(Clone, Debug, thiserror::Error)]
#[error("two {kind} plugins are registered as `{name}`; plugin names must be unique")]
pub struct RegistryError {
    /// Kind of plugin.
    pub kind: &'static str,
    /// The duplicated name.
    pub name: &'static str,
}

/// Every registered plugin, by kind and name.
#[derive(Debug)]
pub struct Registry {
    /// Networks by name.
    pub networks: BTreeMap<&'static str, &'static NetworkEntry>,
    /// Datasets by name.
    pub datasets: BTreeMap<&'static str, &'static DatasetEntry>,
    /// Metrics by name.
    pub metrics: BTreeMap<&'static str, &'static MetricEntry>,
    /// Aggregators by name.
    pub aggregators: BTreeMap<&'static str, &'static AggregatorEntry>,
    /// Observers by name.
    pub observers: BTreeMap<&'static str, &'static ObserverEntry>,
}

fn collect<T>(
    kind: &'static str,
    items: impl Iterator<Item = &'static T>,
    name: impl Fn(&T) -> &'static str,
) -> Result<BTreeMap<&'static str, &'static T>, RegistryError> {
    let mut map = BTreeMap::new();
    for item in items {
        if map.insert(name(item), item).is_some() {
            return Err(RegistryError {
                kind,
                name: name(item),
            });
        }
    }
    Ok(map)
}

impl Registry {
    /// The registry of the plugins linked into this program, built once.
    pub fn global() -> Result<&'static Registry, RegistryError> {
        static REGISTRY: OnceLock<Result<Registry, RegistryError>> = OnceLock::new();
        REGISTRY
            .get_or_init(Registry::build)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build() -> Result<Registry, RegistryError> {
        Ok(Registry {
            networks: collect("network", inventory::iter::<NetworkEntry>(), |e| e.name)?,
            datasets: collect("dataset", inventory::iter::<DatasetEntry>(), |e| e.name)?,
            metrics: collect("metric", inventory::iter::<MetricEntry>(), |e| e.name)?,
            aggregators: collect("aggregator", inventory::iter::<AggregatorEntry>(), |e| {
                e.name
            })?,
            observers: collect("observer", inventory::iter::<ObserverEntry>(), |e| e.name)?,
        })
    }

    /// Names, descriptions and parameters of the plugins of one kind, sorted by name.
    pub fn list(&self, kind: PluginKind) -> Vec<Listing> {
        fn all<E: Listed>(map: &BTreeMap<&'static str, &'static E>) -> Vec<Listing> {
            map.values().map(|e| e.listing()).collect()
        }
        match kind {
            PluginKind::Network => all(&self.networks),
            PluginKind::Dataset => all(&self.datasets),
            PluginKind::Metric => self
                .metrics
                .values()
                .map(|e| {
                    let mut l = e.listing();
                    l.params.splice(0..0, e.sampling.params());
                    l
                })
                .collect(),
            PluginKind::Aggregator => all(&self.aggregators),
            PluginKind::Observer => all(&self.observers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_and_names_sorted() {
        static A: (&str, u8) = ("b", 1);
        static B: (&str, u8) = ("a", 2);
        static C: (&str, u8) = ("b", 3);
        let ok = collect("network", [&A, &B].into_iter(), |e| e.0).unwrap();
        assert_eq!(ok.keys().copied().collect::<Vec<_>>(), vec!["a", "b"]);
        let err = collect("network", [&A, &B, &C].into_iter(), |e| e.0).unwrap_err();
        assert_eq!(err.name, "b");
        assert!(err.to_string().contains("two network plugins"));
    }
}
